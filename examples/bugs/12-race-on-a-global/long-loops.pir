; Bug 12 — Race between preemption and a global: loops longer than a slice, one P
;
; Go:  runtime.GOMAXPROCS(1); 10 goroutines each run `for j := 0; j < 30_000_000; j++ { counter++ }`;
;      wg.Wait(); fmt.Println("counter:", counter)
;
; The seed: "Preemption merely increases the likelihood that two
; goroutines observe each other's incomplete updates"; "Preemption is
; unrelated to the correctness of unsynchronised shared state". At one P
; no two goroutines ever run at once, so an increment can be lost only if
; a goroutine is stopped between its load of @counter and its store, and
; the others' increments land in between. This is overlap.pir with thirty
; times the increments per goroutine, so that each loop outlasts a time
; slice and asynchronous preemption stops it in the middle (`overlap`
; above 1 says it did); in coop mode nothing can stop the loop.
;
; What to look at: `lost` and `overlap`, async against coop.
;
; Run:
;   preempt bugs 12
;   preempt run examples/bugs/12-race-on-a-global/long-loops.pir --stats
;   preempt run examples/bugs/12-race-on-a-global/long-loops.pir --preempt coop --stats

set procs = 1

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
    %more = lt %j, 30000000
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
    %lost = sub 300000000, %c
    print "measure lost {}", %lost
    %o = load.atomic @overlap
    print "measure overlap {}", %o
    ret
}
