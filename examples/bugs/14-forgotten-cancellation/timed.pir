; Bug 14 — Forgotten cancellation, with the times of its two lines
;
; Go:  ctx, _ := context.WithTimeout(context.Background(), 100*time.Millisecond)
;      go func() { sum := 0; for i := 0; i < 1_000_000_000; i++ { sum += i }; fmt.Println("sum:", sum) }()
;      <-ctx.Done(); fmt.Println("ctx done:", ctx.Err()); time.Sleep(time.Second)
;
; forgotten-cancellation.pir at the seed's scale (1,000,000,000
; iterations: the scaled-down loop can end before the 100 ms deadline),
; with the time of each line printed, in microseconds since @main started,
; as main.go's `waiting` scenario prints them: `measure ctx_us` after "ctx
; done", `measure sum_us` after "sum:" (the end of the worker's loop). The
; clock reads are runtime operations, but none is inside the loop. The
; seed's last `time.Sleep(time.Second)` is only there to let the worker
; print; here @main waits until the worker is done instead, so the lines
; are the same whether the loop takes more or less than 1 s.
;
; What to look at: whether "ctx done" comes at the 100 ms deadline while
; the worker is still in its loop, at 2 Ps and at 1 P, in async and coop
; mode; and that the worker still prints its whole sum.
;
; Run:
;   preempt bugs 14
;   preempt run examples/bugs/14-forgotten-cancellation/timed.pir --procs 1
;   preempt run examples/bugs/14-forgotten-cancellation/timed.pir --procs 1 --sched go
;   preempt run examples/bugs/14-forgotten-cancellation/timed.pir --procs 1 --preempt coop

global @t0: i64 = 0

; Microseconds since @main started.
func @us() -> i64 {
    %t = now
    %t0 = load @t0
    %ns = sub %t, %t0
    %us = div %ns, 1000
    ret %us
}

func @worker(%wdone: chan) {
    %sum = const 0
    %i = const 0
loop:
    %more = lt %i, 1000000000
    br %more, body, done
body:
    %sum = add %sum, %i       ; sum += i
    %i = add %i, 1
    jmp loop
done:
    print "sum: {}", %sum
    %us = call @us()
    print "measure sum_us {}", %us
    send %wdone, 1
    ret
}

func @main() {
    %t0 = now
    store @t0, %t0
    %ctx = after 100000       ; context.WithTimeout(..., 100*time.Millisecond)
    %wdone = chan 1
    spawn @worker(%wdone)
    %t = recv %ctx            ; <-ctx.Done()
    print "ctx done: context deadline exceeded"
    %us = call @us()
    print "measure ctx_us {}", %us
    %w = recv %wdone          ; time.Sleep(time.Second): until the worker is done
    ret
}
