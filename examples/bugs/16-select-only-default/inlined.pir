; Bug 16 — select with only a default is not a yield: work() inlined
;
; Go:  for { select { default: }; work() }   // work() inlined: the loop is the select and the work
;
; The seed's loop alone behind @main on the only P, with work() inlined
; (what Go's inliner does to a small work()): the loop body is the select
; and an add. @main prints "main woke" and how late its 1 ms sleep ended
; (`measure late_us`).
;
; What to look at: whether anything stops the loop in coop mode (Go's
; asyncpreemptoff=1).
;
; Run:
;   preempt bugs 16
;   preempt run --preempt coop --timeout 2 examples/bugs/16-select-only-default/inlined.pir
;   preempt run examples/bugs/16-select-only-default/inlined.pir

set procs = 1

func @spin() {
    %n = const 0
loop:
    select default -> body      ; select { default: }
body:
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
