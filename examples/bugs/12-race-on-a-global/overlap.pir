; Bug 12 — Race between preemption and a global: the seed's program, counted
;
; Go:  runtime.GOMAXPROCS(4); 10 goroutines each run `for j := 0; j < 1_000_000; j++ { counter++ }`;
;      wg.Wait(); fmt.Println("counter:", counter)
;
; race-on-a-global.pir with two figures added (main.go prints the same):
; `measure lost` (10,000,000 less the final counter) and `measure overlap`,
; the most goroutines that were at once between their first and their last
; increment. Each worker adds itself to @running with an atomic add right
; before its loop and takes itself out right after it (atomics are not
; preemption points, so nothing can stop it between the count and the
; loop); at its end it records how many it saw. 1 means every goroutine
; ran its loop alone, start to finish: no other increments could fall
; between its load and its store.
;
; What to look at: `lost` at 4 Ps and at 1 P, in async and in coop mode;
; `overlap` says whether the loops ran interleaved at all.
;
; Run:
;   preempt bugs 12
;   preempt run examples/bugs/12-race-on-a-global/overlap.pir
;   preempt run examples/bugs/12-race-on-a-global/overlap.pir --preempt coop
;   preempt run examples/bugs/12-race-on-a-global/overlap.pir --procs 1

set procs = 4

global @counter: i64 = 0
global @running: i64 = 0
global @overlap: i64 = 0

func @worker(%wg: chan) {
    %r = add.atomic @running, 1
    %j = const 0
loop:
    %c = load @counter       ; counter++: load ...
    %c = add %c, 1
    store @counter, %c       ; ... and store, not atomic
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
    %c = load @counter
    print "counter: {}", %c
    %lost = sub 10000000, %c
    print "measure lost {}", %lost
    %o = load.atomic @overlap
    print "measure overlap {}", %o
    ret
}
