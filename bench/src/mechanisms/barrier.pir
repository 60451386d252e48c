; barrier: s += i, and on every iteration a ref store into a heap object,
; alternating between two targets. Each `setref` goes through the write
; barrier's fast path (the marking flag loaded through the goroutine
; context, a branch over the slow path), a `[wb]` unsafe region in which
; asynchronous preemption must retry.
func @kernel(%n: i64) -> i64 {
    %o = new 1
    %a = new 1
    %b = new 1
    %s = const 0
    %i = const 0
    br 1, loop, done
loop:
    setref %o, 0, %a
    %t = copy %a
    %a = copy %b
    %b = copy %t
    %s = add %s, %i
    %i = add %i, 1
    %c = lt %i, %n
    br %c, loop, done
done:
    ret %s
}
