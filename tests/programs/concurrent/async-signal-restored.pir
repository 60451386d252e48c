; Seed bug 13's fix: foreign code ignores the preemption signal, then puts
; the runtime's handler back (os/signal.Reset in Go's version); the
; call-free spinner that follows is preempted again and main finishes.
; expect-status: 0
; expect-stdout: main woke
; jit-only: the interpreter has no signals to ignore
; coop-hangs: at one P its call-free spinner is never stopped (coop-spinner-hangs.pir)
set procs = 1

func @spin() {
    ccall ignore_preempt_signal
    ccall restore_preempt_signal
    %i = const 0
loop:
    %i = add %i, 1
    jmp loop
}

func @main() {
    spawn @spin()
    sleep 1000
    print "main woke"
    ret
}
