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
; Run:
;   preempt disasm examples/bugs/16-select-only-default/select-only-default.pir
;   preempt run --preempt coop examples/bugs/16-select-only-default/select-only-default.pir --timeout 2 --stats
;
; What really happens (measured with the release build on a 2-vCPU x86-64
; VM; in coop, --preempt coop, unless said otherwise; 10 runs):
;   - The seed is right about the select: `select default -> body` emits no
;     instruction at all. In the disassembly (both architectures) the block
;     `loop` has vanished, the back-edge jumps straight into `body`, and no
;     runtime call appears in either spinner's loop.
;   - @spin_call is preempted all the same, at the stack-bound check in
;     @work's prologue (`cmp rsp, [r15]` / `cmp sp, x1`), the cooperative
;     preemption point of every function entry, 1.4..11 us after the
;     request: @main's 1 ms sleep ended 9.13..9.24 ms late, the rest of the
;     spinner's 10 ms quantum. So the seed's loop, with work() a real call,
;     is preemptible; the select contributes nothing to that.
;   - @spin_inline never stops: @main stays runnable, nothing more is
;     printed, the monitor reports "goroutine 3 has not stopped" about
;     106 ms after its request, and the watchdog ends the program at 2 s
;     with exit 3: "goroutine 3 [running]: @spin_inline in block body",
;     "reason: loop @spin_inline:loop has no preemption point in coop
;     mode", then "goroutine 1 [runnable]" and @spin_call runnable in @work.
;   - Asynchronous preemption (the default) stops @spin_inline too: "work()
;     inlined: main woke", exit 0 (3 runs); @main's sleep behind
;     @spin_call ended 10.1..14.6 ms late, a quantum, since the signal now
;     stops it before its next call would. In coop only an instruction the
;     runtime sees (a call, `yield`, a select with a channel arm) can.

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
