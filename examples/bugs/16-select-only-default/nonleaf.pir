; Bug 16 — select with only a default is not a yield: work() a call that calls
;
; Go:  for { select { default: }; work() }   // work() calls another function
;
; The seed's loop alone behind @main on the only P, with work() a call
; that itself calls a function: not a leaf, so it keeps the stack-bound
; check at its entry even with --nosplit-leaves. @main prints "main woke"
; and how late its 1 ms sleep ended (`measure late_us`).
;
; What to look at: in coop mode with --nosplit-leaves, against call.pir.
;
; Run:
;   preempt bugs 16
;   preempt run --preempt coop --nosplit-leaves examples/bugs/16-select-only-default/nonleaf.pir

set procs = 1

func @leaf(%n: i64) -> i64 {
    %m = add %n, 1
    ret %m
}

func @work(%n: i64) -> i64 {
    %m = call @leaf(%n)
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
