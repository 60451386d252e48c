; Bug 14 — Forgotten cancellation in a long-running goroutine
;
; Go:  ctx, _ := context.WithTimeout(context.Background(), 100*time.Millisecond)
;      go func() { sum := 0; for i := 0; i < 1_000_000_000; i++ { sum += i }; fmt.Println("sum:", sum) }()
;      <-ctx.Done(); fmt.Println("ctx done:", ctx.Err()); time.Sleep(time.Second)
;
; The seed: the goroutine never checks ctx, so it runs to completion;
; ctx.Done() fires for main but the worker keeps spinning. "Preemption
; gives main fair CPU, but it cannot magically inject cancellation logic
; into the worker." The fix: poll ctx.Done() with a select (a receive arm
; and a default) every 1024 iterations.
;
; The context is `after 100000` (a channel that fires at 100 ms, as
; ctx.Done() does). Scaled down: the loop runs 300,000,000 iterations
; instead of 1,000,000,000 and @main sleeps 500 ms instead of 1 s; whether
; the scaled loop still outlasts the 100 ms deadline depends on the
; machine, so timed.pir runs the seed's scale, with the time of each line
; printed, and fixed.pir is the seed's fix. No `set procs`: the default,
; the number of CPUs, as in the seed.
;
; What to look at: the order of "ctx done" and "sum:", at the default
; number of Ps and at 1 P, in async and in coop mode (at 1 P in coop the
; loop has no preemption point: @main's wake-up at 100 ms waits for the
; worker's print, the first runtime operation after the loop); --stats
; time-to-preempt says how long the worker kept the P after the request.
;
; Run:
;   preempt bugs 14
;   preempt run examples/bugs/14-forgotten-cancellation/forgotten-cancellation.pir --stats
;   preempt run --preempt coop examples/bugs/14-forgotten-cancellation/forgotten-cancellation.pir --stats
;   preempt run --preempt coop examples/bugs/14-forgotten-cancellation/forgotten-cancellation.pir --procs 1 --stats
;   preempt run examples/bugs/14-forgotten-cancellation/forgotten-cancellation.pir --procs 1 --stats

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
