; Bug 1 — The classic hang, with the flag accessed atomically (the fix)
;
; Go:  var done atomic.Bool; ... for !done.Load() {} ...; done.Store(true)
;
; The same program as 01-classic-hang-waiting-main.pir with `load.atomic`
; and `store.atomic`: an atomic load is never hoisted out of the loop, and
; it is not a preemption point either (atomics are not runtime
; operations), so it needs asynchronous preemption to let @main run.
;
; Run:
;   preempt run examples/bugs/01-classic-hang-atomic.pir            (async, -O1)
;   preempt run examples/bugs/01-classic-hang-atomic.pir --preempt coop --timeout 2
;
; What really happens (release build, 2-vCPU x86-64 VM):
;   - async (the default): "flag set", "done!", exit 0, at -O0 and -O1.
;     The spinner takes the P while @main sleeps; at the end of its 10 ms
;     quantum the monitor's SIGURG redirects it into the preemption stub,
;     @main runs, stores the flag, and the spinner sees it on its next
;     load.
;   - coop (asyncpreemptoff=1): the loop has no preemption point; @main
;     never runs again and the watchdog ends the program (exit 3), naming
;     the loop ("has no preemption point in coop mode") but not a hoisted
;     load.

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
