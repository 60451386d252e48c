; error: 5:5: register %sum may be used before it is defined
func @main() {
    %i = const 0
loop:
    %sum = add %sum, %i
    %i = add %i, 1
    %more = lt %i, 10
    br %more, loop, out
out:
    ret
}
