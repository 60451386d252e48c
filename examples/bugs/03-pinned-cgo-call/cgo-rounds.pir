; Bug 3 — Pinned cgo call starving Go goroutines, in three rounds, with
; figures
;
; Go:  runtime.GOMAXPROCS(1); go func() { C.sleep(3) }()
;      start := time.Now(); go func() { fmt.Println("hi from goroutine 2 at", time.Since(start)) }(); wg.Wait()
;
; The seed: goroutine 1's cgo call holds the only P; sysmon notices the
; long call and hands the P to a fresh M, so goroutine 2 prints quickly,
; "but if sysmon is sleeping when the cgo call starts, it can take up to
; 10 ms before it notices and reassigns".
;
; As in pinned-cgo-call.pir, `ccall sleep` stands for C.sleep, scaled from
; 3 s to 200 ms, and sync.WaitGroup is a buffered channel. Three rounds,
; one after the other:
;   round 1: the seed's program as written;
;   round 2: goroutine 1 is already in C when goroutine 2 is created
;            (@main yields once between the two spawns), right after
;            round 1's 200 ms with nothing to run;
;   round 3: the same after @main has kept the P busy for 50 ms.
; Each prints, as "measure KEY VALUE" lines, when goroutine 2 ran, in
; microseconds from `start` (roundN_us, the seed's time.Since(start)),
; and whether it ran before goroutine 1 had entered C (roundN_g2_first,
; 1 or 0).
;
; What to look at: the three rounds' figures at one P, under the precise
; monitor and under --sched go (Go's sysmon: a backed-off tick, and only a
; deep sleep is woken by a foreign call), and at two Ps (the seed's fix);
; --stats (P hand-offs, threads created); --trace (the hand-off instants
; inside the "ccall sleep" spans).
;
; Run:
;   preempt bugs 3
;   preempt run examples/bugs/03-pinned-cgo-call/cgo-rounds.pir --stats
;   preempt run examples/bugs/03-pinned-cgo-call/cgo-rounds.pir --sched go --stats
;   preempt run examples/bugs/03-pinned-cgo-call/cgo-rounds.pir --procs 2
;   preempt run examples/bugs/03-pinned-cgo-call/cgo-rounds.pir --trace /tmp/bug3.json

set procs = 1

; Set by goroutine 1 just before it enters C; cleared before each round.
global @in_c: i64 = 0

; goroutine 1: C.sleep
func @cgo(%wg: chan) {
    store.atomic @in_c, 1
    ccall sleep, 200000  ; 200 ms in foreign code, the M blocked
    send %wg, 1          ; wg.Done()
    ret
}

; goroutine 2
func @hi(%wg: chan, %round: i64, %start: i64) {
    %t = now
    %first = load.atomic @in_c
    %first = xor %first, 1
    %ns = sub %t, %start
    %us = div %ns, 1000
    print "round {}: hi from goroutine 2 at {} us", %round, %us
    print "measure round{}_us {}", %round, %us
    print "measure round{}_g2_first {}", %round, %first
    send %wg, 1          ; wg.Done()
    ret
}

; The seed's main.
func @round1() {
    store.atomic @in_c, 0
    %wg = chan 2
    spawn @cgo(%wg)
    %start = now
    spawn @hi(%wg, 1, %start)
    %a = recv %wg        ; wg.Wait()
    %b = recv %wg
    ret
}

; Goroutine 1 is in C before goroutine 2 exists.
func @round2(%round: i64) {
    store.atomic @in_c, 0
    %wg = chan 2
    %start = now
    spawn @cgo(%wg)
    yield                ; runtime.Gosched(): goroutine 1 runs and enters C
    spawn @hi(%wg, %round, %start)
    %a = recv %wg
    %b = recv %wg
    ret
}

; Keeps the P busy for 50 ms.
func @busy() {
    %t0 = now
loop:
    %t = now
    %d = sub %t, %t0
    %more = lt %d, 50000000
    br %more, loop, out
out:
    ret
}

func @main() {
    call @round1()
    call @round2(2)
    call @busy()
    call @round2(3)
    ret
}
