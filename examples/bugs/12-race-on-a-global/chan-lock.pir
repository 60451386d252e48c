; Bug 12 — Race between preemption and a global: the fix with a lock
;
; Go:  lock := make(chan struct{}, 1); ... for j := 0; j < 1_000_000; j++ { lock <- struct{}{}; counter++; <-lock } ...
;      (or mu.Lock(); counter++; mu.Unlock())
;
; The seed's other fixes, a mutex or a channel: PIR has no mutex, so the
; lock is a channel of capacity 1, sent to before `counter++` and received
; from after it, as in main.go's `channel` scenario. Only the holder of the
; lock loads and stores @counter; the send and the receive are runtime
; operations that order the plain accesses around them.
;
; Run:
;   preempt bugs 12
;   preempt run examples/bugs/12-race-on-a-global/chan-lock.pir

set procs = 4

global @counter: i64 = 0
global @running: i64 = 0
global @overlap: i64 = 0

func @worker(%wg: chan, %lock: chan) {
    %r = add.atomic @running, 1
    %j = const 0
loop:
    send %lock, 1            ; lock <- struct{}{}
    %c = load @counter       ; counter++
    %c = add %c, 1
    store @counter, %c
    %v = recv %lock          ; <-lock
    %j = add %j, 1
    %more = lt %j, 1000000
    br %more, loop, done
done:
    %r = add.atomic @running, -1
    %r = add %r, 1           ; counted at the loop's end, itself included
max:
    %m = load.atomic @overlap
    %bigger = gt %r, %m
    br %bigger, record, out
record:
    %ok = cas.atomic @overlap, %m, %r
    br %ok, out, max
out:
    send %wg, 1              ; wg.Done()
    ret
}

func @main() {
    %wg = chan 10
    %lock = chan 1
    %i = const 0
spawn:
    spawn @worker(%wg, %lock)
    %i = add %i, 1
    %more = lt %i, 10
    br %more, spawn, wait
wait:
    %i = const 0
next:
    %x = recv %wg            ; wg.Wait()
    %i = add %i, 1
    %more2 = lt %i, 10
    br %more2, next, done
done:
    %c = load @counter
    print "counter: {}", %c
    %lost = sub 10000000, %c
    print "measure lost {}", %lost
    %o = load.atomic @overlap
    print "measure overlap {}", %o
    ret
}
