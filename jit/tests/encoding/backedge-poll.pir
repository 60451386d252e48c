; What --preempt poll puts on loop back-edges: a loop whose back-edge is
; the whole body, a loop with a call in it (patch stores the function's
; number after the call returns), and a select back-edge.
set opt = 0
set preempt = poll

func @step(%x: i64) -> i64 {
    %y = add %x, 1
    ret %y
}

func @main() {
    %i = const 0
tight:
    %i = add %i, 1
    %c = lt %i, 1000
    br %c, tight, calls
calls:
    %i = call @step(%i)
    %d = lt %i, 2000
    br %d, calls, done
done:
    print "{}", %i
    ret
}
