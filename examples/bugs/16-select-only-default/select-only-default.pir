; Bug 16 — select with only a default is not a yield
;
; Go:  for { select { default: }; work() }
;
; The seed: a select with only a default arm compiles to essentially
; nothing, no scheduler dispatch: it is not a preemption point. Use
; runtime.Gosched() to yield, or add a real channel arm.
;
; Two spinners run that loop behind @main on the only P, one after the
; other, while @main sleeps 1 ms and reports how late it woke:
;   @spin_call:   work() is a call, as written;
;   @spin_inline: work() inlined into the loop (what Go's inliner does to a
;                 small work()), so the loop body is the select and the work.
;
; `select default -> body` is a plain jump: `preempt disasm` shows no
; instruction for it and no runtime call in either loop. What stops a loop
; in coop mode is an instruction the runtime sees: a call's stack-bound
; check at the callee's entry (`cmp rsp, [r15]` / `cmp sp, x1`), `yield`, a
; select with a channel arm. --nosplit-leaves leaves the check out of
; small leaf functions such as @work, as Go's compiler does. call.pir,
; inlined.pir and nonleaf.pir run each form of the loop alone;
; gosched.pir and channel-arm.pir are the seed's two fixes.
;
; What to look at: the disassembly; in coop mode, whether @main wakes
; behind each spinner, with and without --nosplit-leaves; the watchdog's
; diagnosis when it does not.
;
; Run:
;   preempt bugs 16
;   preempt disasm examples/bugs/16-select-only-default/select-only-default.pir
;   preempt run --preempt coop examples/bugs/16-select-only-default/select-only-default.pir --timeout 2 --stats
;   preempt run --preempt coop --nosplit-leaves examples/bugs/16-select-only-default/select-only-default.pir --timeout 2
;   preempt run examples/bugs/16-select-only-default/select-only-default.pir --stats

set procs = 1

func @work(%n: i64) -> i64 {
    %m = add %n, 1
    ret %m
}

func @spin_call() {
    %n = const 0
loop:
    select default -> body      ; select { default: }
body:
    %n = call @work(%n)         ; work()
    jmp loop
}

func @spin_inline() {
    %n = const 0
loop:
    select default -> body      ; select { default: }
body:
    %n = add %n, 1              ; work(), inlined
    jmp loop
}

; Starts a spinner; sleeps 1 ms behind it; prints how late the sleep ended.
func @main() {
    spawn @spin_call()
    %t0 = now
    sleep 1000
    %t1 = now
    %ns = sub %t1, %t0
    %us = div %ns, 1000
    %late = sub %us, 1000
    print "work() as a call: main's 1000 us sleep ended {} us late", %late
    spawn @spin_inline()
    sleep 1000
    print "work() inlined: main woke"   ; never printed in coop mode
    ret
}
