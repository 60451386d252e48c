; Bug 8 — Misbelief about runtime.Gosched ordering
;
; Go:  go func() { fmt.Println("A1"); runtime.Gosched(); fmt.Println("A2") }()
;      go func() { fmt.Println("B1"); runtime.Gosched(); fmt.Println("B2") }(); wg.Wait()
;
; The seed asks whether the output is exactly A1 B1 A2 B2 and answers no:
; Gosched is a hint, not a barrier; A1 A2 B1 B2, B1 A1 B2 A2 and others
; are possible, and with several Ps the prints may interleave arbitrarily;
; Gosched does not promise that other goroutines have made progress. Fix:
; if you need ordering, use channels (one buffered channel, A sends, B
; receives).
;
; `yield` is runtime.Gosched; the WaitGroup is a buffered channel. Like the
; seed, the file does not set procs: the default is the number of CPUs.
;
; What to look at: the orders the program prints at one P, where the
; scheduler's rules decide them (`spawn` puts the new goroutine in the P's
; runnext slot, as Go's `go` does, so B runs first; `yield` sends the
; goroutine to the back of the global queue), and at several Ps, where
; another P may take A first. What is guaranteed, and all a program may
; rely on: each goroutine prints its "1" line before its "2" line, and
; each line appears once and whole (print is line-atomic). seed-fix.pir is
; the seed's fix; ping-pong.pir a fix for the whole order.
;
; Run:
;   preempt bugs 8                      every scenario, on preempt and on Go, with verdicts
;   preempt run examples/bugs/08-gosched-ordering/gosched-ordering.pir               (one P per CPU)
;   preempt run examples/bugs/08-gosched-ordering/gosched-ordering.pir --procs 1
;   preempt run examples/bugs/08-gosched-ordering/gosched-ordering.pir --procs 4

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
