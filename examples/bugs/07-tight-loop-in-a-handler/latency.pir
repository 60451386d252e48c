; Bug 7 — Tight loop in a request handler: the latency of 500 requests
;
; Go:  func slow(w, r) { for i := 0; i < 1e9; i++ { sum += i } ... }
;      500 other requests, one a millisecond, while /slow is always running
;
; tight-loop-in-a-handler.pir measures 50 requests and prints their mean
; and worst; the seed's claims are about percentiles. Here the /slow
; handler is requested again as soon as it answers, so that one is always
; running, and @main sends 500 requests to @fast, one a millisecond, each
; measured from its arrival to its answer. At the end, from the sorted
; latencies:
;
;   measure requests N      500
;   measure mean_us N
;   measure p50_us N        the 250th of 500
;   measure p99_us N        the 495th
;   measure worst_us N      the 500th (p99.8: 500 requests have no p99.9)
;   measure held_us N       the median time the loop kept the P between two
;                           answers, counting the gaps over 2 ms (requests
;                           come every millisecond): its slice
;   measure slices N        how many such gaps
;
; What to look at: the figures at one P (the file's) and at two
; (--procs 2: @slow keeps one P, the requests the other), with the
; precise monitor and with --sched go (Go's sysmon timing: slices seen on
; a backed-off tick). chunks-select.pir and chunks-yield.pir are the
; seed's fixes.
;
; Run:
;   preempt bugs 7
;   preempt run examples/bugs/07-tight-loop-in-a-handler/latency.pir
;   preempt run examples/bugs/07-tight-loop-in-a-handler/latency.pir --sched go
;   preempt run examples/bugs/07-tight-loop-in-a-handler/latency.pir --procs 2

set procs = 1

global @n: i64 = 1000000000
global @requests: i64 = 500
global @stop: i64 = 0

; slow(): sum += i for i < 1e9, no call; requested again as soon as it
; answers, until @main is done.
func @slow() {
again:
    %n = load @n
    %sum = const 0
    %i = const 0
loop:
    %sum = add %sum, %i
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, out
out:
    %s = load.atomic @stop
    br %s, end, again
end:
    ret
}

; A fast handler: answers each request at once.
func @fast(%req: chan, %resp: chan) {
loop:
    %t = recv %req
    send %resp, %t
    jmp loop
}

; Sorts the first %n slots of %a (insertion sort).
func @sort(%a: ref, %n: i64) {
    %i = const 1
outer:
    %go = lt %i, %n
    br %go, pick, done
pick:
    %x = get %a, %i
    %j = sub %i, 1
inner:
    %ok = ge %j, 0
    br %ok, cmp, place
cmp:
    %y = get %a, %j
    %gt = gt %y, %x
    br %gt, shift, place
shift:
    %k = add %j, 1
    set %a, %k, %y
    %j = sub %j, 1
    jmp inner
place:
    %k = add %j, 1
    set %a, %k, %x
    %i = add %i, 1
    jmp outer
done:
    ret
}

func @main() {
    %req = chan 0
    %resp = chan 0
    %k = load @requests
    %lat = new %k
    %gaps = new %k
    spawn @fast(%req, %resp)
    spawn @slow()
    %i = const 0
    %g = const 0
    %total = const 0
    %due = now
    %last = copy %due
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
    %l = sub %t1, %due              ; from its arrival to its answer
    set %lat, %i, %l
    %total = add %total, %l
    %gap = sub %t1, %last
    %last = copy %t1
    %held = gt %gap, 2000000
    br %held, slice, next
slice:
    set %gaps, %g, %gap
    %g = add %g, 1
next:
    %i = add %i, 1
    %more = lt %i, %k
    br %more, loop, report
report:
    store.atomic @stop, 1
    call @sort(%lat, %k)
    call @sort(%gaps, %g)
    %mean = div %total, %k
    %mean = div %mean, 1000
    %x = get %lat, 249
    %p50 = div %x, 1000
    %x = get %lat, 494
    %p99 = div %x, 1000
    %x = get %lat, 499
    %worst = div %x, 1000
    %held_us = const 0
    %any = gt %g, 0
    br %any, median, print
median:
    %m = div %g, 2
    %x = get %gaps, %m
    %held_us = div %x, 1000
print:
    print "{} requests while /slow runs: mean {} us, p50 {} us, p99 {} us, worst {} us", %k, %mean, %p50, %p99, %worst
    print "measure requests {}", %k
    print "measure mean_us {}", %mean
    print "measure p50_us {}", %p50
    print "measure p99_us {}", %p99
    print "measure worst_us {}", %worst
    print "measure held_us {}", %held_us
    print "measure slices {}", %g
    ret
}
