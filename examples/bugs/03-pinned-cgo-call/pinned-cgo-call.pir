; Bug 3 — Pinned cgo call starving Go goroutines
;
; Go:  runtime.GOMAXPROCS(1); go func() { C.sleep(3) }()
;      start := time.Now(); go func() { fmt.Println("hi from goroutine 2 at", time.Since(start)) }(); wg.Wait()
;
; The seed: goroutine 1's cgo call holds the only P; sysmon notices the long
; call and hands the P to a fresh M, so goroutine 2 prints quickly, "but if
; sysmon is sleeping when the cgo call starts, it can take up to 10 ms".
;
; Here `ccall sleep` stands for C.sleep, scaled from 3 s to 200 ms, and
; sync.WaitGroup is a buffered channel. The program runs two rounds:
;   round 1: the seed's program as written;
;   round 2: the situation the seed's diagnosis describes, where goroutine 1
;            is already in C when goroutine 2 is created (@main yields once
;            between the two spawns; `start` is taken before both).
;
; What to look at: when goroutine 2 prints in each round, and whether it
; needed the monitor at all (did goroutine 1 enter C before goroutine 2
; ran?); --stats (P hand-offs, threads created); --trace (the hand-off
; instant inside round 2's "ccall sleep" span); and the monitor's timing,
; precise or as Go's sysmon (--sched go). cgo-rounds.pir runs these
; rounds and a third (after a busy spell) with figures.
;
; Run:
;   preempt bugs 3
;   preempt run examples/bugs/03-pinned-cgo-call/pinned-cgo-call.pir --stats
;   preempt run examples/bugs/03-pinned-cgo-call/pinned-cgo-call.pir --sched go --stats
;   preempt run examples/bugs/03-pinned-cgo-call/pinned-cgo-call.pir --trace /tmp/bug3.json
;   preempt run examples/bugs/03-pinned-cgo-call/pinned-cgo-call.pir --sysmon-max-tick 20us

set procs = 1

; goroutine 1: C.sleep
func @cgo(%wg: chan) {
    ccall sleep, 200000  ; 200 ms in foreign code, the M blocked
    send %wg, 1          ; wg.Done()
    ret
}

; goroutine 2
func @hi(%wg: chan, %round: i64, %start: i64) {
    %t = now
    %ns = sub %t, %start
    %us = div %ns, 1000
    print "round {}: hi from goroutine 2 at {} us", %round, %us
    send %wg, 1          ; wg.Done()
    ret
}

; The seed's main.
func @round1() {
    %wg = chan 2
    spawn @cgo(%wg)
    %start = now
    spawn @hi(%wg, 1, %start)
    %a = recv %wg        ; wg.Wait()
    %b = recv %wg
    ret
}

; Goroutine 1 is in C before goroutine 2 exists.
func @round2() {
    %wg = chan 2
    %start = now
    spawn @cgo(%wg)
    yield                ; runtime.Gosched(): goroutine 1 runs and enters C
    spawn @hi(%wg, 2, %start)
    %a = recv %wg
    %b = recv %wg
    ret
}

func @main() {
    call @round1()
    call @round2()
    ret
}
