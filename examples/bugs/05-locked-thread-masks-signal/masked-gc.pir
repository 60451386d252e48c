; Bug 5 — Locked OS thread holding a signal, with a collection requested
; while the loop runs
;
; Go:  runtime.LockOSThread(); pthread_sigmask(SIG_BLOCK, {SIGURG})
;      go func() { t := time.Now(); fmt.Println("other ran"); other <- t }()
;      go func() { t0 := time.Now(); runtime.GC(); collected <- [2]time.Time{t0, time.Now()} }()
;      for i := 0; i < 1_000_000_000; i++ {}; fmt.Println("done")
;
; The seed: "With GOMAXPROCS=1, the program may hang STW for the duration
; of the loop". Here a goroutine asks for a collection (`gc`, two stops of
; the world) and another only wants to run, both spawned before the loop.
;
; What to look at, at 1 P and at 2 Ps: when @other runs and when the
; collection starts, from the start of the loop (other_us, gc_start_us),
; how long the collection takes (gc_us), against the loop's own time
; (loop_us); all in microseconds. unmasked-gc.pir is the seed's fix.
;
; Run:
;   preempt bugs 5
;   preempt run examples/bugs/05-locked-thread-masks-signal/masked-gc.pir --stats
;   preempt run examples/bugs/05-locked-thread-masks-signal/masked-gc.pir --procs 2 --stats

set procs = 1

global @n: i64 = 1000000000

func @other(%c: chan) {
    %t = now
    print "other ran"
    send %c, %t
    ret
}

func @collector(%g: chan) {
    %t0 = now
    gc                           ; runtime.GC()
    %t1 = now
    send %g, %t0
    send %g, %t1
    ret
}

func @main() {
    lockthread
    ccall block_preempt_signal   ; pthread_sigmask(SIG_BLOCK, {SIGURG})
    %c = chan 1
    %g = chan 2
    spawn @other(%c)
    spawn @collector(%g)
    %n = load @n
    %start = now
    %i = const 0
loop:
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, out
out:
    %end = now
    print "done"
    %to = recv %c
    %g0 = recv %g
    %g1 = recv %g
    %d = sub %end, %start
    %d = div %d, 1000
    print "measure loop_us {}", %d
    %d = sub %to, %start
    %d = div %d, 1000
    print "measure other_us {}", %d
    %d = sub %g0, %start
    %d = div %d, 1000
    print "measure gc_start_us {}", %d
    %d = sub %g1, %g0
    %d = div %d, 1000
    print "measure gc_us {}", %d
    ret
}
