; Bug 5 — Locked OS thread holding a signal (the seed's program)
;
; Go:  runtime.LockOSThread(); pthread_sigmask(SIG_BLOCK, {SIGURG});
;      for i := 0; i < 1_000_000_000; i++ {}; fmt.Println("done")
;
; The seed says: async preemption does not fire; the signal stays pending
; on the masked thread and the handler never runs; "with GOMAXPROCS=1 the
; program may hang STW for the duration of the loop". Here, at one P, a
; second goroutine (@other) stands for everything else that wants to run;
; it is spawned before the loop and can only run once @main blocks.
;
; Run:
;   preempt run examples/bugs/05-locked-thread-masks-signal/locked-thread-masks-signal.pir --stats
;
; What really happens (release build, 2-vCPU x86-64 VM):
;   - "done" then "other ran", exit 0, in about 0.3 s. The loop is never
;     preempted: the monitor asks @main to stop at the end of its quantum
;     and signals its thread, the kernel keeps SIGURG pending (masked), and
;     the handler never runs ("signals sent 27", no asynchronous
;     preemption; the one request is honoured when @main blocks in `recv`,
;     285 ms after it was made).
;   - The monitor says so within a few quanta: after 100 ms (the hang
;     threshold) stderr reads
;       preempt: goroutine 1 has not stopped 100.0ms after a preemption
;       request (async mode): @main in block loop ...
;       reason: SIGURG is blocked on this thread (ccall
;       block_preempt_signal?): 10 sent, the handler ran for 0; the signal
;       stays pending until it is unblocked
;   - Unblock it (`ccall unblock_preempt_signal` right after the block)
;     and the order flips: "other ran" comes first, once the monitor's
;     first signal stops @main at the end of its quantum (--stats: 60
;     asynchronous preemptions in one run).

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
