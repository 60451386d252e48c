; Bug 1 — The classic hang (the seed's program, exactly)
;
; Go:  runtime.GOMAXPROCS(1); done := false
;      go func() { for !done {}; fmt.Println("done!") }(); done = true; fmt.Println("flag set")
;
; The seed asks whether "done!" is printed and diagnoses a hang: a data race
; on `done`; a compiler may hoist the load into a register so the loop spins
; on a stale value forever; and with asyncpreemptoff=1 "the spinner never
; yields, the main goroutine never runs".
;
; Run:
;   preempt run examples/bugs/01-classic-hang.pir            (-O1, 1 P, coop)
;   preempt run examples/bugs/01-classic-hang.pir -O0 --stats
;   preempt run examples/bugs/01-classic-hang.pir --procs 2 -O0
;   preempt run examples/bugs/01-classic-hang.pir --quantum 1s   (what the test runs)
;
; What really happens (measured with the release build on a 2-vCPU x86-64
; VM; coop, the only mode today):
;   - "flag set", exit 0, in under 10 ms, at -O0 and -O1 (20 runs of 20
;     each). Nothing hangs and "done!" is never printed. `spawn` only queues
;     the spinner (in the P's runnext slot, as Go does); @main keeps the only
;     P, stores the flag, prints and returns, and the program ends with the
;     spinner abandoned before it ever ran: --stats says "context switches
;     1" (only @main ran). Go 1.27 on this machine does the same (3 runs of
;     3: "flag set", exit 0).
;   - The seed's diagnosis is about a different program, one in which @main
;     lets the spinner run before it sets the flag and then waits for it:
;     01-classic-hang-waiting-main.pir. That one hangs.
;   - With --procs 2 the spinner can start on the second P before @main
;     returns; it printed "done!" in 2 runs of 20 at -O0 and 1 of 20 at -O1
;     (when it loaded @done after the store). Either way the process ends
;     when @main returns.
;   - The only way into the hang here is for @main to be preempted between
;     its `spawn` and its store, which needs @main to have run for a whole
;     10 ms quantum by then. On hardware it gets there in microseconds.
;     Under qemu-user emulation (the aarch64 lane) its first runtime calls
;     can take longer than that: in 1 run of 10 @main was preempted at its
;     print and the spinner printed "done!" after "flag set", and in 1 run
;     of 5 on a busy machine @main was preempted at `spawn`, before the
;     store, and the program hung at -O1 until the watchdog ended it (exit
;     3). So tests/tests/bugs.rs runs this file with --quantum 1s.
;   - Asynchronous preemption (the default) does not change this program
;     on hardware: @main never runs for a whole quantum, so nothing is
;     preempted; "flag set", exit 0, as in coop.

set procs = 1

global @done: i64 = 0

func @spinner() {
loop:
    %v = load @done      ; plain load: at -O1 LICM hoists it out of the loop
    br %v, out, loop
out:
    print "done!"
    ret
}

func @main() {
    spawn @spinner()
    store @done, 1
    print "flag set"
    ret
}
