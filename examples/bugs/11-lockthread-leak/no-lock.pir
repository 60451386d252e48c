; Bug 11 — runtime.LockOSThread and goroutine leak: the seed's fix
;
; Go:  func worker() { time.Sleep(10 * time.Millisecond) }   (no LockOSThread)
;
; The seed's fix: use LockOSThread only for the few goroutines that truly
; need it; these 1000 workers do not. lockthread-leak.pir without the
; lock: a sleeping worker parks and its M runs the next one.
;
; What to look at: --stats "threads created (Ms)" and the maximum RSS
; against lockthread-leak.pir's.
;
; Run:
;   preempt bugs 11
;   preempt run examples/bugs/11-lockthread-leak/no-lock.pir --stats
;   /usr/bin/time -f '%M KB max RSS' preempt run examples/bugs/11-lockthread-leak/no-lock.pir

func @worker(%wg: chan) {
    sleep 10000               ; time.Sleep(10 * time.Millisecond)
    send %wg, 1
    ret
}

func @main() {
    %wg = chan 1000
    %i = const 0
spawn:
    spawn @worker(%wg)        ; go worker()
    %i = add %i, 1
    %more = lt %i, 1000
    br %more, spawn, wait
wait:
    %i = const 0
next:
    %x = recv %wg
    %i = add %i, 1
    %more2 = lt %i, 1000
    br %more2, next, done
done:
    print "1000 workers done"
    ret
}
