; Bug 16 — select with only a default is not a yield: the fix with runtime.Gosched()
;
; Go:  for { runtime.Gosched(); work() }
;
; The seed's fix, "Use runtime.Gosched() directly if you mean to yield":
; the loop with `yield` instead of the select, work() inlined, alone
; behind @main on the only P. @main prints "main woke" and how late its
; 1 ms sleep ended (`measure late_us`).
;
; What to look at: how late @main woke in coop mode, with a yield on every
; iteration of the loop.
;
; Run:
;   preempt bugs 16
;   preempt run --preempt coop examples/bugs/16-select-only-default/gosched.pir

set procs = 1

func @spin() {
    %n = const 0
loop:
    yield                       ; runtime.Gosched()
    %n = add %n, 1              ; work(), inlined
    jmp loop
}

; Sleeps 1 ms behind the spinner; prints how late the sleep ended.
func @main() {
    spawn @spin()
    %t0 = now
    sleep 1000
    %t1 = now
    %ns = sub %t1, %t0
    %us = div %ns, 1000
    %late = sub %us, 1000
    print "main woke"
    print "measure late_us {}", %late
    ret
}
