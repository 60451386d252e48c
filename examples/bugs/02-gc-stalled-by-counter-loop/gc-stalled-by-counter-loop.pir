; Bug 2 — GC stalled by a counter loop (the seed's program)
;
; Go:  runtime.GOMAXPROCS(2); debug.SetGCPercent(1); var x uint64
;      go func() { for { x++ } }()
;      for i := 0; i < 100; i++ { _ = make([]byte, 1<<20); time.Sleep(time.Millisecond) }
;
; The seed asks whether `x++` is preemptible. Its answer: a plain load, add
; and store, no write barrier (x is not a pointer), no call, so no
; cooperative preemption point; asynchronous preemption (Go 1.14+) stops
; it, so the GC sees only short stop-the-world delays; with
; GODEBUG=asyncpreemptoff=1 "the spinner runs forever and STW waits
; indefinitely".
;
; Run:
;   preempt run examples/bugs/02-gc-stalled-by-counter-loop/gc-stalled-by-counter-loop.pir --preempt coop --timeout 2
;   preempt run examples/bugs/02-gc-stalled-by-counter-loop/gc-stalled-by-counter-loop.pir --preempt coop --timeout 2 --stats
;   preempt run examples/bugs/02-gc-stalled-by-counter-loop/gc-stalled-by-counter-loop.pir --preempt coop --procs 1 --timeout 2
;   preempt run examples/bugs/02-gc-stalled-by-counter-loop/gc-stalled-by-counter-loop.pir --stats     (async, the default)
;
; What really happens (release build, 2-vCPU x86-64 VM shared with other
; work):
;   - coop (asyncpreemptoff=1): @counter takes the second P and never calls
;     anything. @main allocates 1 MiB objects; at 4 MiB (the collector's
;     minimum trigger, as Go's minimum heap goal) the collector starts a
;     cycle, and its mark start stops the world: it gets a P of its own
;     (@main's, when @main sleeps or allocates), asks @counter to stop, and
;     waits. @counter never reaches a preemption point. Nothing runs
;     again: @main, woken by its timer, sits in the run queue with no P to
;     run it (or waits for the cycle, if its next allocation came first).
;   - It is not a silent deadlock. After the hang threshold (100 ms) the
;     stop says on stderr which goroutine it waits for and why:
;       preempt: stop-the-world for GC mark start has waited 100.1ms for
;       goroutine 2 on P 0 (coop mode); the collector and every other
;       goroutine wait with it:
;       @counter in block loop (pc ... = @counter+0x...)
;       reason: loop @counter:loop has no preemption point in coop mode
;     and at --timeout the watchdog ends the program (exit 3) with the same
;     diagnosis, a line naming the stop that is waiting, and @main's stack
;     ("goroutine 1 [runnable]", or "[garbage collection]").
;   - --stats in coop shows one stop-the-world preemption request (for
;     @counter; @main was asleep), no preemption, and no stop-the-world
;     latency at all: no stop ever completed. (The monitor's own report,
;     "goroutine 2 has not stopped 100.3ms after a preemption request",
;     follows the stop's: the request it made for the quantum found one
;     pending.)
;   - With --procs 1 the program hangs before any collection: @counter
;     takes the only P when @main first sleeps, and never gives it back
;     (the seed's Bug 1 again); the watchdog names the same loop.
;   - async (the default): "done", exit 0, as the seed says. About 52
;     cycles (GOGC=1 over a live heap of at most one 1 MiB object: a cycle
;     every few MiB), each with two stops; stop-the-world latency p50 44-48
;     us, p99 119-139 us, max 120-222 us over 3 runs of 104-108 stops, of
;     the order of Go 1.27's 35-65 us p50 on this machine. @counter is
;     stopped by the signal (about 55 asynchronous preemptions per run,
;     1.1-1.3 signals each); @main stops at its runtime calls.

set procs = 2

global @x: i64

func @counter() {
loop:
    %v = load @x
    %v = add %v, 1          ; x++: a load, an add and a store; no call
    store @x, %v
    jmp loop
}

func @main() {
    setgcpercent 1
    spawn @counter()
    %i = const 0
loop:
    %b = new 65535          ; 16 + 16 * 65535 bytes: 1 MiB
    sleep 1000
    %i = add %i, 1
    %more = lt %i, 100
    br %more, loop, out
out:
    print "done"
    ret
}
