; Bug 16 — select with only a default is not a yield: the fix with a real channel arm
;
; Go:  for { select { case <-never: default: }; work() }   // a channel nobody sends on
;
; The seed's other fix, "add a real channel arm": the select receives from
; a channel nobody sends on, or takes its default; work() inlined; alone
; behind @main on the only P. A select with a channel arm is a runtime
; operation, so a preemption point in every mode. @main prints "main woke"
; and how late its 1 ms sleep ended (`measure late_us`).
;
; What to look at: whether @main wakes in coop mode, and how late: at the
; end of the spinner's time slice (the select a preemption point, taken
; when the monitor asks) or at once (the select a yield).
;
; Run:
;   preempt bugs 16
;   preempt run --preempt coop examples/bugs/16-select-only-default/channel-arm.pir

set procs = 1

func @spin() {
    %never = chan 0
    %n = const 0
loop:
    select recv %never -> body, default -> body   ; select { case <-never: default: }
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
