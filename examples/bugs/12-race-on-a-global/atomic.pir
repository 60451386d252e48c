; Bug 12 — Race between preemption and a global: the fix with an atomic add
;
; Go:  var counter atomic.Int64; ... for j := 0; j < 1_000_000; j++ { counter.Add(1) } ...
;
; The seed's first fix, atomic.Int64.Add: overlap.pir with `counter++`
; made one `add.atomic` (a locked add: no other increment can fall between
; its read and its write, on any core, and a signal cannot split one
; instruction).
;
; Run:
;   preempt bugs 12
;   preempt run examples/bugs/12-race-on-a-global/atomic.pir

set procs = 4

global @counter: i64 = 0
global @running: i64 = 0
global @overlap: i64 = 0

func @worker(%wg: chan) {
    %r = add.atomic @running, 1
    %j = const 0
loop:
    %c = add.atomic @counter, 1   ; counter.Add(1)
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
    %i = const 0
spawn:
    spawn @worker(%wg)
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
    %c = load.atomic @counter
    print "counter: {}", %c
    %lost = sub 10000000, %c
    print "measure lost {}", %lost
    %o = load.atomic @overlap
    print "measure overlap {}", %o
    ret
}
