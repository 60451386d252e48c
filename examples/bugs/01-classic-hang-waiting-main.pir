; Bug 1 — The classic hang, in the program the seed's diagnosis describes
;
; Go:  runtime.GOMAXPROCS(1); go func() { for !done {}; fmt.Println("done!"); finished <- true }()
;      time.Sleep(time.Millisecond); done = true; fmt.Println("flag set"); <-finished
;
; The seed's own program (01-classic-hang.pir) never hangs: @main returns
; before the spinner runs. Its diagnosis needs @main to give the spinner
; the P first and then wait for "done!", as here: with asyncpreemptoff=1
; "the spinner never yields, the main goroutine never runs"; with async
; preemption the spinner is preempted and sees the flag, "but only if the
; compiler does not optimise the load out".
;
; Run:
;   preempt run examples/bugs/01-classic-hang-waiting-main.pir -O0          (async)
;   preempt run examples/bugs/01-classic-hang-waiting-main.pir --timeout 2  (async, -O1)
;   preempt run examples/bugs/01-classic-hang-waiting-main.pir --preempt coop --timeout 2 --stats
;   preempt run examples/bugs/01-classic-hang-waiting-main.pir --preempt coop -O0 --timeout 2
;   preempt run examples/bugs/01-classic-hang-waiting-main.pir --preempt coop --procs 2 -O0
;   preempt run examples/bugs/01-classic-hang-waiting-main.pir --preempt coop --procs 2 --timeout 2
;   preempt disasm examples/bugs/01-classic-hang-waiting-main.pir -O1
; (-O1 and 1 P unless the flags say otherwise; the disassembly shows the
; load of @done before the loop, marked HOISTED.)
;
; What really happens (measured with the release build on a 2-vCPU x86-64
; VM). Asynchronous preemption, the default:
;   - 1 P, -O0: "flag set", "done!", exit 0. The spinner takes the P while
;     @main sleeps; at the end of its 10 ms quantum the monitor's SIGURG
;     redirects it into the preemption stub, @main runs and stores, and the
;     spinner, resumed, loads the flag again and ends.
;   - 1 P, -O1: "flag set", then the hang: the spinner is preempted every
;     quantum (@main runs, stores, prints, waits) but its loop tests the
;     register loaded before it. The watchdog ends the program at 2 s (exit
;     3) with "reason: the value of @done was hoisted into a register at
;     -O1 (plain load): this loop cannot see other goroutines' stores", and
;     no "no preemption point" reason: preemption is not the problem.
;   - 01-classic-hang-atomic.pir, the same with load.atomic/store.atomic:
;     exit 0 at -O0 and -O1.
; Cooperative preemption (--preempt coop, what asyncpreemptoff=1 gives Go):
;   - 1 P, -O0 or -O1: nothing is printed. @main's 1 ms sleep ends but
;     @main stays runnable forever: the spinner holds the only P and its
;     loop has no preemption point. The monitor asks it to stop when its
;     10 ms quantum ends (--stats: "preemption requests 1", "preemptions
;     0"), reports it about 106 ms later ("goroutine 2 has not stopped"),
;     and the watchdog ends the program at 2 s with exit 3, naming
;     "@spinner in block loop" and the reason "loop @spinner:loop has no
;     preemption point in coop mode"; at -O1 also "the value of @done was
;     hoisted into a register at -O1". The dump shows "goroutine 1
;     [runnable]": @main is ready and never gets the P. Go 1.27 with
;     GODEBUG=asyncpreemptoff=1 hangs the same way.
;   - 2 Ps, -O0: "flag set" and "done!", exit 0: the spinner sees the store.
;     The two lines come in either order ("flag set" first in 30 runs of
;     40): the spinner may print before @main gets from its store to its
;     print.
;   - 2 Ps, -O1: "flag set", then the same hang, exit 3 (5 runs of 5):
;     @main runs on the other P, but the spinner tests a register loaded
;     once before the loop. Preemption has nothing to do with this one.
;   - Go with asynchronous preemption, for comparison: the Go version of this program, run by Go
;     1.27 with default settings and timing @main's sleep: main woke 6.9 to
;     18.2 ms after it went to sleep (6 runs), then "flag set", "done!",
;     exit 0; Go reloads `done` on every iteration (`CMPB (R8), $0; JEQ`
;     in `go build -gcflags=-S`).
;     At -O1 a preempted spinner still tests its stale register: async
;     preemption cannot fix a hoisted load, only an atomic load can
;     (examples/hoist-atomic.pir).

set procs = 1

global @done: i64 = 0

func @spinner(%finished: chan) {
loop:
    %v = load @done      ; plain load: at -O1 LICM hoists it out of the loop
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
    store @done, 1
    print "flag set"
    %ok = recv %finished ; wait for "done!"
    ret
}
