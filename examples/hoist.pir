; The register-hoisted load (the seed's Bug 1, "the classic hang").
;
; A goroutine spins until @main sets @done. The load of @done is a plain
; load: at opt 1 (the default) LICM hoists it out of the loop, because the
; loop has no call, no store to @done, no atomic and no runtime operation.
; The spinner then tests a register that nothing will ever change.
;
;   preempt disasm examples/hoist.pir -O0   the load is inside the loop
;   preempt disasm examples/hoist.pir -O1   the load is before the loop
;   preempt run examples/hoist.pir -O0      "flag set", "done!", exit 0
;   preempt run examples/hoist.pir -O1      "flag set", then the watchdog
;                                           ends the hang (exit 3) and names
;                                           the loop and the hoisted load
;
; Two Ps, so the spinner and @main run at once whatever the preemption mode:
; this is about what the compiler did to the loop, not about the scheduler.
; The atomic fix is examples/hoist-atomic.pir.

set procs = 2

global @done: i64 = 0

func @spinner(%finished: chan) {
loop:
    %v = load @done      ; plain load: at opt 1 it is hoisted out of the loop
    br %v, out, loop
out:
    print "done!"
    send %finished, 1
    ret
}

func @main() {
    %finished = chan 0
    spawn @spinner(%finished)
    sleep 2000           ; let the spinner start spinning first
    store @done, 1
    print "flag set"
    %ok = recv %finished
    ret
}
