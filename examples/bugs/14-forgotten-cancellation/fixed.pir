; Bug 14 — Forgotten cancellation: the seed's fix
;
; Go:  for i := 0; i < 1_000_000_000; i++ {
;          if i%1024 == 0 { select { case <-ctx.Done(): return; default: } }
;          sum += i
;      }
;
; timed.pir with the worker polling the context every 1024 iterations and
; returning when it is done. ctx.Done() is a channel that every receiver
; sees closed, so the context is modelled as Go's: a timer (`after`) and a
; goroutine that closes @done when it fires (context.WithTimeout's
; cancel); @main and the worker both receive from the closed channel. The
; select has a channel arm, so it is a runtime operation: a cooperative
; preemption point too. Before returning, the worker prints `measure
; stop_us`, microseconds since @main started, as main.go does; @main
; waits until the worker is done, as in timed.pir.
;
; What to look at: no "sum:" line, and how soon after the 100 ms deadline
; the worker returns, with and without asynchronous preemption.
;
; Run:
;   preempt bugs 14
;   preempt run examples/bugs/14-forgotten-cancellation/fixed.pir
;   preempt run examples/bugs/14-forgotten-cancellation/fixed.pir --procs 1 --preempt coop

global @t0: i64 = 0

; Microseconds since @main started.
func @us() -> i64 {
    %t = now
    %t0 = load @t0
    %ns = sub %t, %t0
    %us = div %ns, 1000
    ret %us
}

; The context's timer: closes ctx.Done() at the deadline.
func @deadline(%timer: chan, %done: chan) {
    %t = recv %timer
    close %done
    ret
}

func @worker(%done: chan, %wdone: chan) {
    %sum = const 0
    %i = const 0
loop:
    %more = lt %i, 1000000000
    br %more, check, finished
check:
    %m = and %i, 1023         ; if i%1024 == 0
    %poll = eq %m, 0
    br %poll, poll, body
poll:
    select recv %done -> cancelled, default -> body
body:
    %sum = add %sum, %i       ; sum += i
    %i = add %i, 1
    jmp loop
cancelled:
    %us = call @us()
    print "measure stop_us {}", %us
    send %wdone, 1
    ret                       ; case <-ctx.Done(): return
finished:
    print "sum: {}", %sum
    %us = call @us()
    print "measure sum_us {}", %us
    send %wdone, 1
    ret
}

func @main() {
    %t0 = now
    store @t0, %t0
    %timer = after 100000     ; context.WithTimeout(..., 100*time.Millisecond)
    %done = chan 0            ; ctx.Done()
    spawn @deadline(%timer, %done)
    %wdone = chan 1
    spawn @worker(%done, %wdone)
    %t = recv %done           ; <-ctx.Done()
    print "ctx done: context deadline exceeded"
    %us = call @us()
    print "measure ctx_us {}", %us
    %w = recv %wdone          ; time.Sleep(time.Second): until the worker is done
    ret
}
