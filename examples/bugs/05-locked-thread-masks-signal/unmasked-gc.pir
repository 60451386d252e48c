; Bug 5 — Locked OS thread holding a signal: the seed's fix, the mask undone
;
; Go:  runtime.LockOSThread(); pthread_sigmask(SIG_BLOCK, {SIGURG}); pthread_sigmask(SIG_UNBLOCK, {SIGURG})
;      go func() { ...; fmt.Println("other ran"); ... }(); go func() { ...; runtime.GC(); ... }()
;      for i := 0; i < 1_000_000_000; i++ {}; fmt.Println("done")
;
; The seed's fix: "If you must call into a third-party library that masks
; signals, undo the mask afterwards". masked-gc.pir with
; `ccall unblock_preempt_signal` right after the block: the same figures
; (other_us, gc_start_us, gc_us, loop_us, in microseconds).
;
; Run:
;   preempt bugs 5
;   preempt run examples/bugs/05-locked-thread-masks-signal/unmasked-gc.pir --stats
;   preempt run examples/bugs/05-locked-thread-masks-signal/unmasked-gc.pir --procs 2 --stats

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
    ccall unblock_preempt_signal ; the fix: undo the mask
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
