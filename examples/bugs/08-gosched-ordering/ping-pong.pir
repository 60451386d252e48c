; Bug 8 — Misbelief about runtime.Gosched ordering: a fix for the whole order
;
; Go:  toB, toA := make(chan struct{}), make(chan struct{})
;      A: A1; toB <- x; <-toA; A2; toB <- x     B: <-toB; B1; toA <- x; <-toB; B2
;
; The order A1 B1 A2 B2 needs a hand-off each time the turn passes from
; one goroutine to the other: three, over two unbuffered channels. No
; yield is needed.
;
; What to look at: the same order at every number of Ps.
;
; Run:
;   preempt bugs 8
;   preempt run examples/bugs/08-gosched-ordering/ping-pong.pir --procs 1
;   preempt run examples/bugs/08-gosched-ordering/ping-pong.pir --procs 4

func @a(%wg: chan, %to_b: chan, %to_a: chan) {
    print "A1"
    send %to_b, 1        ; B's turn
    %x = recv %to_a      ; wait for ours
    print "A2"
    send %to_b, 1
    send %wg, 1          ; wg.Done()
    ret
}

func @b(%wg: chan, %to_b: chan, %to_a: chan) {
    %x = recv %to_b
    print "B1"
    send %to_a, 1
    %y = recv %to_b
    print "B2"
    send %wg, 1
    ret
}

func @main() {
    %wg = chan 2
    %to_b = chan 0
    %to_a = chan 0
    spawn @a(%wg, %to_b, %to_a)
    spawn @b(%wg, %to_b, %to_a)
    %x = recv %wg        ; wg.Wait()
    %y = recv %wg
    ret
}
