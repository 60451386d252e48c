; Bug 11 — runtime.LockOSThread and goroutine leak
;
; Go:  func worker() { runtime.LockOSThread(); defer runtime.UnlockOSThread(); time.Sleep(10 * time.Millisecond) }
;      func main() { for i := 0; i < 1000; i++ { go worker() }; time.Sleep(2 * time.Second) }
;
; The seed: each worker locks an OS thread, so while the 1000 workers are
; alive there are 1000 OS threads, "each 1-8 MB of RSS", and the footprint
; balloons; LockOSThread makes each worker its own M, defeating the M pool.
;
; Same workers; @main's 2 s sleep becomes waiting for the 1000 workers (a
; buffered channel as the WaitGroup the Go program leaves implicit), so the
; run takes a few hundred ms. Each worker also counts, with atomics, how
; many workers hold a locked thread at once, and the program prints the
; peak. No `set procs`: like the seed, the default (the number of CPUs).
;
; What to look at: --stats, "threads created (Ms)" against the printed peak
; of workers locked at once (a locked goroutine's M runs nothing else, and
; when it sleeps the M hands its P to another M and waits, so the thread
; count is never below that peak), "P hand-offs" (one per worker that
; slept while locked), and "preemptions": each worker is a runtime call
; after another (lockthread, sleep, unlockthread) and never runs a
; quantum. Whether the peak reaches 1000 depends on how fast threads
; start: handing a P to a new thread for every worker may take longer
; than a worker's 10 ms, and the first workers may have unlocked and
; ended, their Ms free for reuse, before the last ones start. The maximum
; RSS of the process, over that of no-lock.pir, divided by the threads,
; is what a thread costs. two-waves.pir runs a second wave after the
; first; no-lock.pir is the seed's fix.
;
; Run:
;   preempt bugs 11
;   preempt run examples/bugs/11-lockthread-leak/lockthread-leak.pir --stats
;   /usr/bin/time -f '%M KB max RSS' preempt run examples/bugs/11-lockthread-leak/lockthread-leak.pir
;   /usr/bin/time -f '%M KB max RSS' preempt run examples/bugs/11-lockthread-leak/no-lock.pir

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
    %peak = load.atomic @peak
    print "1000 workers done; peak workers locked at once: {}", %peak
    print "measure peak_locked {}", %peak
    ret
}
