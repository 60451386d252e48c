; Bug 7 — Tight loop in a request handler: chunks that yield
;
; Go:  for c := 0; c < 1000; c++ {
;          for i := c*1e6; i < (c+1)*1e6; i++ { sum += i }
;          runtime.Gosched()
;      }
;
; The seed's other fix: "break it into chunks that yield". latency.pir
; with the loop in chunks of 1,000,000 iterations and a `yield`
; (runtime.Gosched) after each. The figures are latency.pir's (read its
; header).
;
; What to look at: the latencies against latency.pir's and
; chunks-select.pir's.
;
; Run:
;   preempt bugs 7
;   preempt run examples/bugs/07-tight-loop-in-a-handler/chunks-yield.pir

set procs = 1

global @requests: i64 = 500
global @stop: i64 = 0

; slow() in chunks of 1,000,000 with a yield after each; the sum is the
; same; requested again as soon as it answers, until @main is done.
func @slow() {
again:
    %sum = const 0
    %c = const 0
chunk:
    %lo = mul %c, 1000000
    %hi = add %lo, 1000000
    %i = copy %lo
loop:
    %sum = add %sum, %i
    %i = add %i, 1
    %more = lt %i, %hi
    br %more, loop, check
check:
    yield                                            ; runtime.Gosched()
    %s = load.atomic @stop
    br %s, end, next
next:
    %c = add %c, 1
    %chunks = lt %c, 1000
    br %chunks, chunk, again
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
