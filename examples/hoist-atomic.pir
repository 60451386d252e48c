; examples/hoist.pir with the fix the seed gives for Bug 1: an atomic load.
; Atomics are never hoisted, so the spinner sees the store at every
; optimisation level.
;
;   preempt run examples/hoist-atomic.pir       "flag set", "done!", exit 0
;   preempt disasm examples/hoist-atomic.pir    the load stays in the loop
;
; What it prints, for the tests and `preempt soak`:
; expect-status: 0
; expect-stdout-unordered
; expect-stdout: flag set
; expect-stdout: done!

set procs = 2

global @done: i64 = 0

func @spinner(%finished: chan) {
loop:
    %v = load.atomic @done
    br %v, out, loop
out:
    print "done!"
    send %finished, 1
    ret
}

func @main() {
    %finished = chan 0
    spawn @spinner(%finished)
    sleep 2000
    store.atomic @done, 1
    print "flag set"
    %ok = recv %finished
    ret
}
