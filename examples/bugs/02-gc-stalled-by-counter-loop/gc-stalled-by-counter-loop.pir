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
; What to look at: --stats (collections, stops of the world, preemptions
; by kind, signals sent); in coop mode (asyncpreemptoff=1), whether the
; collector's mark start ever gets the counter to stop, and what the stop
; and the watchdog say on stderr; in async mode, with a low hang threshold
; (--hang-threshold 1ms), whether any stop waits that long for a goroutine
; (the stop reports it on stderr); and the machine code of @counter.
;
; Run:
;   preempt bugs 2
;   preempt run examples/bugs/02-gc-stalled-by-counter-loop/gc-stalled-by-counter-loop.pir --stats     (async, the default)
;   preempt run examples/bugs/02-gc-stalled-by-counter-loop/gc-stalled-by-counter-loop.pir --hang-threshold 1ms --stats
;   preempt run examples/bugs/02-gc-stalled-by-counter-loop/gc-stalled-by-counter-loop.pir --preempt coop --timeout 2 --stats
;   preempt run examples/bugs/02-gc-stalled-by-counter-loop/gc-stalled-by-counter-loop.pir --preempt coop --procs 1 --timeout 2
;   preempt disasm examples/bugs/02-gc-stalled-by-counter-loop/gc-stalled-by-counter-loop.pir

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
