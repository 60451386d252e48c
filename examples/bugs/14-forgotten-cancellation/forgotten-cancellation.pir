; Bug 14 — Forgotten cancellation in a long-running goroutine
;
; Go:  ctx, _ := context.WithTimeout(context.Background(), 100*time.Millisecond)
;      go func() { sum := 0; for i := 0; i < 1_000_000_000; i++ { sum += i }; fmt.Println("sum:", sum) }()
;      <-ctx.Done(); fmt.Println("ctx done:", ctx.Err()); time.Sleep(time.Second)
;
; The seed: the goroutine never checks ctx, so it runs to completion;
; ctx.Done() fires for main but the worker keeps spinning. "Preemption
; gives main fair CPU, but it cannot magically inject cancellation logic."
;
; The context is `after 100000` (a channel that fires at 100 ms, as
; ctx.Done() does). Scaled so a run stays short: the loop runs
; 300,000,000 iterations instead of 1,000,000,000 (0.2 to 0.3 s here, still
; longer than the 100 ms timeout) and @main sleeps 500 ms instead of 1 s
; (still long enough for the worker to finish). No `set procs`: the
; default, the number of CPUs, as in the seed.
;
; Run:
;   preempt run --preempt coop examples/bugs/14-forgotten-cancellation/forgotten-cancellation.pir --stats            (2 Ps here)
;   preempt run --preempt coop examples/bugs/14-forgotten-cancellation/forgotten-cancellation.pir --procs 1 --stats
;
; What really happens (measured with the release build on a 2-vCPU x86-64
; VM; the first three items in coop, --preempt coop; 10 runs each):
;   - 2 Ps: "ctx done: context deadline exceeded" at 100 ms, then "sum:
;     44999999850000000" when the loop ends: the worker ignores the
;     cancellation and finishes, as the seed says; exit 0 after 0.60 s.
;     The worker also gets a quantum preemption request at 10 ms that it
;     cannot honour (no preemption point in its loop) until its print:
;     --stats time-to-preempt 180..289 ms, i.e. the loop ran 190..300 ms.
;   - 1 P: "sum:" comes first and "ctx done" after it, every time. @main
;     cannot even see the deadline: the worker holds the only P and its
;     loop has no preemption point, so @main's wake-up at 100 ms waits for
;     the worker's print, the first runtime operation after the loop
;     (time-to-preempt 162..289 ms; exit 0 after 0.67..0.80 s). Go 1.27
;     with GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 (the seed's program with
;     times added to its prints, 3 runs): both lines at the end of the
;     loop, 313..394 ms,
;     but "ctx done" first: Go stops its worker at the first function call
;     after the loop, inside fmt.Println before it writes, while PIR's
;     `print` is one runtime operation that writes and then honours the
;     request.
;   - The seed's "preemption gives main fair CPU" needs asynchronous
;     preemption, the default: at 1 P "ctx done" now comes first and "sum:"
;     after it, exit 0 after 0.60 s (3 runs): the signal stops the worker
;     each quantum (16..18 asynchronous preemptions, time-to-preempt p50
;     32..38 us), @main sees its deadline at its wake-up and prints, and the
;     worker, still ignoring the cancellation, finishes. Go 1.27 with
;     GOMAXPROCS=1 and async preemption on: "ctx done" at 104..116 ms,
;     "sum:" at 322..355 ms (3 runs); at its default GOMAXPROCS (2 here)
;     "ctx done" at 100.4..100.7 ms.
;   - Under qemu-user emulation the loop takes longer than @main's
;     shortened sleep, so at 2 Ps the program ends before "sum:" is
;     printed: as in Go, @main returning abandons the worker.
;   - The fix is the seed's: poll ctx.Done() with a select (recv arm and
;     default) every 1024 iterations; that select is also a cooperative
;     preemption point.

func @worker() {
    %sum = const 0
    %i = const 0
loop:
    %more = lt %i, 300000000
    br %more, body, done
body:
    %sum = add %sum, %i       ; sum += i
    %i = add %i, 1
    jmp loop
done:
    print "sum: {}", %sum
    ret
}

func @main() {
    %ctx = after 100000       ; context.WithTimeout(..., 100*time.Millisecond)
    spawn @worker()
    %t = recv %ctx            ; <-ctx.Done()
    print "ctx done: context deadline exceeded"
    sleep 500000              ; time.Sleep(time.Second), scaled
    ret
}
