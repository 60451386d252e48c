; Bug 8 — Misbelief about runtime.Gosched ordering: the seed's fix as written
;
; Go:  ch := make(chan struct{}, 1)
;      // A side: ch <- struct{}{}
;      // B side: <-ch
;
; The seed's fix is a fragment: one buffered channel, A sends, B receives.
; It does not say where; here A sends right after printing A1 and B
; receives right before printing B1, the one order a single send and
; receive can impose (A1 before B1). The yields stay.
;
; What to look at: whether that is the order the question asks for (A1 B1
; A2 B2) at one P, where the scheduler's rules decide the rest, and at
; several Ps, where nothing orders A2 against B1.
;
; Run:
;   preempt bugs 8
;   preempt run examples/bugs/08-gosched-ordering/seed-fix.pir --procs 1
;   preempt run examples/bugs/08-gosched-ordering/seed-fix.pir --procs 2

func @a(%wg: chan, %ch: chan) {
    print "A1"
    send %ch, 1          ; A side: ch <- struct{}{}
    yield                ; runtime.Gosched()
    print "A2"
    send %wg, 1          ; wg.Done()
    ret
}

func @b(%wg: chan, %ch: chan) {
    %x = recv %ch        ; B side: <-ch
    print "B1"
    yield
    print "B2"
    send %wg, 1
    ret
}

func @main() {
    %wg = chan 2
    %ch = chan 1         ; make(chan struct{}, 1)
    spawn @a(%wg, %ch)
    spawn @b(%wg, %ch)
    %x = recv %wg        ; wg.Wait()
    %y = recv %wg
    ret
}
