; Bug 5 — Locked OS thread holding a signal (the seed's program)
;
; Go:  runtime.LockOSThread(); pthread_sigmask(SIG_BLOCK, {SIGURG});
;      for i := 0; i < 1_000_000_000; i++ {}; fmt.Println("done")
;
; The seed says: async preemption does not fire; the signal stays pending
; on the masked thread and the handler never runs; "with GOMAXPROCS=1 the
; program may hang STW for the duration of the loop". Here, at one P, a
; second goroutine (@other) stands for everything else that wants to run;
; it is spawned before the loop.
;
; What to look at: the order of "done" and "other ran" (at one P, @other
; can run before the loop ends only if @main is preempted), --stats (preemption
; requests, signals sent, asynchronous preemptions), and stderr: after the
; hang threshold the monitor says why @main does not stop. masked-gc.pir
; adds a collection requested while the loop runs, with figures;
; unmasked-gc.pir is the seed's fix.
;
; Run:
;   preempt bugs 5
;   preempt run examples/bugs/05-locked-thread-masks-signal/locked-thread-masks-signal.pir --stats

set procs = 1

global @n: i64 = 1000000000

func @other(%c: chan) {
    print "other ran"
    send %c, 1
    ret
}

func @main() {
    lockthread
    ccall block_preempt_signal   ; pthread_sigmask(SIG_BLOCK, {SIGURG})
    %c = chan 0
    spawn @other(%c)
    %n = load @n
    %i = const 0
loop:
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, out
out:
    print "done"
    %r = recv %c
    ret
}
