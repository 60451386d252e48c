; One P, asynchronous preemption (the default): a loop with no call and no
; runtime operation is stopped by the signal at the end of its quantum, so
; main runs again, sets the flag (an atomic: the loop reloads it) and the
; spinner sees it, with SIGUSR1 as the preemption signal (--preempt-signal).
; flags: --preempt-signal USR1
; expect-status: 0
; expect-stdout: main woke
; expect-stdout: spinner saw the flag
; jit-only: interpreted goroutines are stopped by the interpreter's budget check, not by signals
; coop-hangs: at one P its call-free spinner is never stopped (coop-spinner-hangs.pir)
set procs = 1

global @done: i64 = 0
global @seen: i64 = 0

func @spin() {
    %i = const 0
loop:
    %i = add %i, 1
    %d = load.atomic @done
    br %d, out, loop
out:
    store.atomic @seen, 1
    ret
}

func @main() {
    spawn @spin()
    sleep 1000
    print "main woke"
    store.atomic @done, 1
wait:
    yield
    %s = load.atomic @seen
    br %s, ok, wait
ok:
    print "spinner saw the flag"
    ret
}
