; Bug 16 — select with only a default is not a yield: work() a real call
;
; Go:  for { select { default: }; work() }   // work() a small function, not inlined
;
; The seed's loop alone behind @main on the only P, work() a real call:
; @work is a small leaf (no call, no runtime operation, a small frame). Its
; entry has a stack-bound check, the cooperative preemption point of every
; function entry, unless --nosplit-leaves leaves it out as Go's compiler
; does for such a function. @main prints "main woke" and how late its 1 ms
; sleep ended (`measure late_us`).
;
; What to look at: in coop mode (Go's asyncpreemptoff=1), with and without
; --nosplit-leaves.
;
; Run:
;   preempt bugs 16
;   preempt run --preempt coop examples/bugs/16-select-only-default/call.pir
;   preempt run --preempt coop --nosplit-leaves --timeout 2 examples/bugs/16-select-only-default/call.pir

set procs = 1

func @work(%n: i64) -> i64 {
    %m = add %n, 1
    ret %m
}

func @spin() {
    %n = const 0
loop:
    select default -> body      ; select { default: }
body:
    %n = call @work(%n)         ; work()
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
