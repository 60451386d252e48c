; fib: naive recursion; n is the argument of the outermost call.
func @fib(%n: i64) -> i64 {
    %small = lt %n, 2
    br %small, base, step
base:
    ret %n
step:
    %a = sub %n, 1
    %b = sub %n, 2
    %x = call @fib(%a)
    %y = call @fib(%b)
    %r = add %x, %y
    ret %r
}

func @kernel(%n: i64) -> i64 {
    %r = call @fib(%n)
    ret %r
}
