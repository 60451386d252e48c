; Bug 12 — Race between preemption and a global
;
; Go:  runtime.GOMAXPROCS(4); 10 goroutines each run `for j := 0; j < 1_000_000; j++ { counter++ }`;
;      wg.Wait(); fmt.Println("counter:", counter)
;
; The seed: counter++ is a data race; the 10,000,000 increments "will
; produce some number, but not 10,000,000". The race happens whether or not
; preemption fires: two goroutines on two cores race without any
; preemption, and blaming "preemption between the read and the write" is
; wrong.
;
; `counter++` is a plain load, add and store of @counter. The loop stores
; to @counter, so LICM does not hoist the load: at -O0 and -O1 every
; iteration reads and writes memory (check with `preempt disasm`).
;
; Run:
;   preempt run --preempt coop examples/bugs/12-race-on-a-global/race-on-a-global.pir               (4 Ps)
;   preempt run --preempt coop examples/bugs/12-race-on-a-global/race-on-a-global.pir -O0
;   preempt run --preempt coop examples/bugs/12-race-on-a-global/race-on-a-global.pir --procs 1
;   preempt disasm examples/bugs/12-race-on-a-global/race-on-a-global.pir
;
; What really happens (measured with the release build on a 2-vCPU x86-64
; VM, 10 runs each):
;   - 4 Ps: "counter: 4583245..7163893" at -O1 and 1871179..6135698 at -O0
;     on a quiet machine, never 10000000: increments are lost whenever two
;     goroutines run at once on the two cores. Go 1.27: 8402709..9457414
;     (5 runs).
;   - On a busy machine (another process using the cores) some runs lost
;     exactly whole millions ("counter: 7000000", "5000000", "4000000"):
;     a worker's thread was descheduled by the kernel between its load and
;     its store while another goroutine ran all its million increments, and
;     the late store wiped them out. So "preemption between the read and
;     the write" does happen, but it is the kernel preempting an OS thread,
;     which no Go-level setting turns off.
;   - 1 P: "counter: 10000000", always. The seed is right that preemption
;     is not the cause, and this shows the converse: in coop mode
;     (--preempt coop) the loop has no preemption point, so on one P each
;     goroutine runs its million increments without interruption and
;     nothing is lost. Go 1.27 at GOMAXPROCS=1 also printed 10000000 (5
;     runs of 5): the whole run takes 10 ms, about 1 ms per goroutine,
;     well under the 10 ms quantum, so async preemption rarely lands
;     inside a loop. Asynchronous preemption (the default) here: also
;     10000000 at 1 P (5 runs of 5), for the same reason: each goroutine's
;     million increments take well under a quantum, so no signal is sent
;     while a loop runs. A goroutine stopped between its load and its store
;     would lose updates even on one P: preemption changes how often the
;     race shows, never whether the program is correct.
;   - The fix is `add.atomic @counter, 1` (atomic.Int64.Add).

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
