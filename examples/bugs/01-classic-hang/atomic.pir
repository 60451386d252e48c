; Bug 1 — The classic hang, with the flag accessed atomically (the fix)
;
; Go:  var done atomic.Bool; ... for !done.Load() {} ...; done.Store(true)
;
; The same program as waiting-main.pir with `load.atomic` and
; `store.atomic`: an atomic load is never hoisted out of the loop, and it
; is not a preemption point either (atomics are not runtime operations),
; so it needs asynchronous preemption to let @main run; under --preempt
; coop the loop still has no preemption point.
;
; Run:
;   preempt bugs 1
;   preempt run examples/bugs/01-classic-hang/atomic.pir
;   preempt run examples/bugs/01-classic-hang/atomic.pir --preempt coop --timeout 2

set procs = 1

global @done: i64 = 0

func @spinner(%finished: chan) {
loop:
    %v = load.atomic @done   ; never hoisted
    br %v, out, loop
out:
    print "done!"
    send %finished, 1
    ret
}

func @main() {
    %finished = chan 0
    spawn @spinner(%finished)
    sleep 1000           ; time.Sleep(time.Millisecond): the spinner gets the P
    store.atomic @done, 1
    print "flag set"
    %ok = recv %finished ; wait for "done!"
    ret
}
