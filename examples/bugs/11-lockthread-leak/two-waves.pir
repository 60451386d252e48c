; Bug 11 — runtime.LockOSThread and goroutine leak: two waves of workers
;
; Go:  wave(): for i := 0; i < 1000; i++ { go worker() }; wg.Wait()
;      wave(); wave()
;
; The seed says that after a worker sleeps and exits, UnlockOSThread runs
; and its M becomes reusable. lockthread-leak.pir's 1000 workers, waited
; for, then 1000 more: if the first wave's threads are reused, the second
; wave creates few, and the run's threads are far fewer than twice one
; wave's.
;
; What to look at: --stats "threads created (Ms)" here against
; lockthread-leak.pir's; `measure peak_locked`, the most workers locked at
; once over both waves.
;
; Run:
;   preempt bugs 11
;   preempt run examples/bugs/11-lockthread-leak/two-waves.pir --stats
;   preempt run examples/bugs/11-lockthread-leak/lockthread-leak.pir --stats

global @alive: i64 = 0   ; workers holding a locked thread now
global @peak: i64 = 0    ; the most there ever were at once

func @worker(%wg: chan) {
    lockthread                ; runtime.LockOSThread()
    %n = add.atomic @alive, 1
peak:
    %p = load.atomic @peak
    %higher = gt %n, %p
    br %higher, raise, work
raise:
    %ok = cas.atomic @peak, %p, %n
    br %ok, work, peak
work:
    sleep 10000               ; time.Sleep(10 * time.Millisecond)
    %left = add.atomic @alive, -1
    unlockthread              ; defer runtime.UnlockOSThread()
    send %wg, 1
    ret
}

; 1000 workers, waited for.
func @wave() {
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
    ret
}

func @main() {
    call @wave()
    call @wave()
    %peak = load.atomic @peak
    print "2000 workers done, in two waves; peak workers locked at once: {}", %peak
    print "measure peak_locked {}", %peak
    ret
}
