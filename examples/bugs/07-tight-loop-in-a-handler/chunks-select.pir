; Bug 7 — Tight loop in a request handler: the seed's fix, chunks with a
; select on ctx.Done()
;
; Go:  for c := 0; c < 1000; c++ {
;          for i := c*1e6; i < (c+1)*1e6; i++ { sum += i }
;          select { case <-ctx.Done(): return; default: }
;      }
;
; The seed's fix: break the work into chunks, "a select { case
; <-ctx.Done(): return; default: } once per chunk integrates cancellation
; and preemption". latency.pir with the loop in chunks of 1,000,000
; iterations and that select after each; @main cancels (closes ctx) after
; its 500 requests and waits for the handler to return:
;
;   measure cancel_us N     from the cancel to the handler's return
;
; and the figures of latency.pir (read its header).
;
; What to look at: the latencies against latency.pir's, under
; asynchronous preemption (the default) and with --preempt coop (Go's
; asyncpreemptoff=1), where the select is the only preemption point.
;
; Run:
;   preempt bugs 7
;   preempt run examples/bugs/07-tight-loop-in-a-handler/chunks-select.pir
;   preempt run examples/bugs/07-tight-loop-in-a-handler/chunks-select.pir --preempt coop

set procs = 1

global @requests: i64 = 500

; slow() in chunks of 1,000,000 with a select on ctx after each; the
; sum is the same; requested again as soon as it answers, until cancelled.
func @slow(%ctx: chan, %done: chan) {
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
    select recv %ctx -> cancelled, default -> next   ; case <-ctx.Done(): return; default:
next:
    %c = add %c, 1
    %chunks = lt %c, 1000
    br %chunks, chunk, again
cancelled:
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
    %ctx = chan 0
    %done = chan 0
    spawn @slow(%ctx, %done)
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
    %tc = now
    close %ctx                       ; cancel()
    %x = recv %done
    %tc1 = now
    %cancel_us = sub %tc1, %tc
    %cancel_us = div %cancel_us, 1000
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
    print "measure cancel_us {}", %cancel_us
    ret
}
