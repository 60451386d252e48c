; Bug 12 — Race between preemption and a global
;
; Go:  runtime.GOMAXPROCS(4); 10 goroutines each run `for j := 0; j < 1_000_000; j++ { counter++ }`;
;      wg.Wait(); fmt.Println("counter:", counter)
;
; The seed: counter++ is a data race; the 10,000,000 increments "will
; produce some number, but not 10,000,000". The race happens whether or not
; preemption fires: two goroutines on two cores race without any
; preemption, and blaming "preemption between the read and the write" is
; wrong. Preemption "merely increases the likelihood that two goroutines
; observe each other's incomplete updates"; it is "unrelated to the
; correctness of unsynchronised shared state". The fix: atomic.Int64.Add,
; a mutex, or a channel.
;
; `counter++` is a plain load, add and store of @counter. The loop stores
; to @counter, so LICM does not hoist the load: at -O0 and -O1 every
; iteration reads and writes memory (check with `preempt disasm`), and a
; goroutine stopped between its load and its store writes back a stale
; value when it resumes.
;
; What to look at: the count at 4 Ps and at 1 P, in async and in coop
; mode; overlap.pir prints the same program's lost increments and how many
; loops ran interleaved, long-loops.pir runs loops long enough to be
; preempted at one P, atomic.pir and chan-lock.pir are the fixes.
;
; Run:
;   preempt bugs 12
;   preempt run examples/bugs/12-race-on-a-global/race-on-a-global.pir               (4 Ps)
;   preempt run --preempt coop examples/bugs/12-race-on-a-global/race-on-a-global.pir
;   preempt run --preempt coop examples/bugs/12-race-on-a-global/race-on-a-global.pir -O0
;   preempt run examples/bugs/12-race-on-a-global/race-on-a-global.pir --procs 1
;   preempt disasm examples/bugs/12-race-on-a-global/race-on-a-global.pir

set procs = 4

global @counter: i64 = 0

func @worker(%wg: chan) {
    %j = const 0
loop:
    %c = load @counter       ; counter++: load ...
    %c = add %c, 1
    store @counter, %c       ; ... and store, not atomic
    %j = add %j, 1
    %more = lt %j, 1000000
    br %more, loop, done
done:
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
    ret
}
