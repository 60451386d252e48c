; Seed bug 13: foreign code installs SIG_IGN for the preemption signal
; process-wide; the kernel discards every signal the monitor sends, and at
; one P the spinner keeps the P forever. The diagnosis names the
; replaced handler.
; flags: --timeout 1
; expect-status: 3
; expect-stderr: @spin in block loop
; expect-stderr: reason: the runtime's handler for SIGURG was replaced by SIG_IGN
; jit-only: the interpreter has no signals to ignore
; async-only: an ignored signal is what it shows; back-edge mechanisms stop the loop without one
set procs = 1

func @spin() {
    ccall ignore_preempt_signal
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
