; Bug 7 — Tight loop in a request handler
;
; Go:  func slow(w, r) { for i := 0; i < 1e9; i++ { sum += i } ... }
;      (other requests served by the same process meanwhile)
;
; The seed says: the loop is preemptible (Go 1.14+), so other handlers get
; the CPU, but at the 10 ms granularity of the scheduler's quantum: with a
; small GOMAXPROCS their p99 latency spikes, and p999 may be worse. Fix:
; a background worker pool, or chunks that yield, with a select on
; ctx.Done() once per chunk. Here @slow is the handler with the loop;
; @main sends a request every millisecond to @fast, which answers at once,
; and measures each request from its arrival to its answer. One P.
;
; What to look at: whether the requests are answered while the loop runs
; ("slow: sum ..." printed last), and how long each waits: the loop has no
; call, so only the preemption signal stops it, at the end of its slice;
; under --preempt coop (Go's asyncpreemptoff=1) nothing does, and the
; requests wait for the loop to end. latency.pir measures percentiles over
; 500 requests; chunks-select.pir and chunks-yield.pir are the seed's
; fixes.
;
; Run:
;   preempt bugs 7
;   preempt run examples/bugs/07-tight-loop-in-a-handler/tight-loop-in-a-handler.pir
;   preempt run examples/bugs/07-tight-loop-in-a-handler/tight-loop-in-a-handler.pir --sched go
;   preempt run examples/bugs/07-tight-loop-in-a-handler/tight-loop-in-a-handler.pir --quantum 1ms
;   preempt run examples/bugs/07-tight-loop-in-a-handler/tight-loop-in-a-handler.pir --procs 2
;   preempt run examples/bugs/07-tight-loop-in-a-handler/tight-loop-in-a-handler.pir --preempt coop

set procs = 1

global @n: i64 = 1000000000
global @requests: i64 = 50

; slow(): sum += i for i < 1e9, no call.
func @slow(%done: chan) {
    %n = load @n
    %sum = const 0
    %i = const 0
loop:
    %sum = add %sum, %i
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, out
out:
    print "slow: sum {}", %sum
    send %done, 1
    ret
}

; A fast handler: answers each request at once.
func @fast(%req: chan, %resp: chan) {
loop:
    %t = recv %req
    send %resp, %t
    jmp loop
}

func @main() {
    %req = chan 0
    %resp = chan 0
    %done = chan 0
    spawn @fast(%req, %resp)
    spawn @slow(%done)
    %k = load @requests
    %i = const 0
    %worst = const 0
    %total = const 0
    %due = now
loop:
    %due = add %due, 1000000        ; a request arrives every millisecond
    %now = now
    %wait = sub %due, %now
    %early = gt %wait, 0
    br %early, pause, serve
pause:
    %us = div %wait, 1000
    sleep %us
serve:
    send %req, %due
    %t = recv %resp
    %t1 = now
    %lat = sub %t1, %due            ; from its arrival to its answer
    %total = add %total, %lat
    %w = gt %lat, %worst
    br %w, worse, next
worse:
    %worst = copy %lat
next:
    %i = add %i, 1
    %more = lt %i, %k
    br %more, loop, report
report:
    %worst = div %worst, 1000
    %mean = div %total, %k
    %mean = div %mean, 1000
    print "{} fast requests during the slow one: mean {} us, worst {} us", %k, %mean, %worst
    %d = recv %done
    ret
}
