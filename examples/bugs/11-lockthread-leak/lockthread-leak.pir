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
; Run:
;   preempt run examples/bugs/11-lockthread-leak/lockthread-leak.pir --stats
;   /usr/bin/time -f '%M KB max RSS' preempt run examples/bugs/11-lockthread-leak/lockthread-leak.pir
;
; What really happens (measured with the release build on a 2-vCPU x86-64
; VM, 10 runs on a quiet machine):
;   - A locked goroutine does cost a thread: its M runs nothing else, and
;     when it sleeps the M hands its P to another M and waits. --stats:
;     "threads created (Ms)" 446..964, "P hand-offs" 997..1000 (one per
;     worker that slept while locked), and the thread count is never below
;     the printed peak of workers locked at once (guaranteed: each of them
;     holds its own M); here it was the peak plus 1 to 3.
;   - Not 1000 threads, though: handing a P to a new thread for every
;     worker takes longer than a worker's 10 ms, so the first workers have
;     unlocked and ended, and their Ms are reused, before the last ones
;     start. The peak of workers locked at once was 444..962 (313..924 on a
;     busy machine). Go 1.27 behaves the same: peak 517..549 locked at
;     once, 521..553 threads (pprof "threadcreate"), 3 runs.
;   - The footprint does not balloon: 13.5..18.7 MB maximum RSS for the
;     whole process (4.4 MB for a program that starts no goroutine), about
;     15 KB per thread, not 1-8 MB. A thread's stack is reserved address
;     space; only the pages it touches count. Go 1.27: 13.3..14.0 MB
;     maximum RSS (VmHWM) with ~530 threads. The run takes 0.06..0.15 s.
;   - Preemption plays no part: each worker is a runtime call after
;     another (lockthread, sleep, unlockthread) and never runs a quantum.

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
    ret
}
