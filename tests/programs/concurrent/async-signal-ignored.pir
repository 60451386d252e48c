; Seed bug 13: foreign code installs SIG_IGN for the preemption signal
; process-wide; the kernel discards every signal the monitor sends, and at
; one P the spinner keeps the P forever. The diagnosis names the
; replaced handler. @main makes the foreign call before it starts the
; spinner, as the seed's program does: were the spinner to make it, a
; call that outlasted @main's sleep (seen under qemu on a loaded host)
; would let the monitor retake the P for @main, which woke and ended.
; flags: --timeout 1
; expect-status: 3
; expect-stderr: @spin in block loop
; expect-stderr: reason: the runtime's handler for SIGURG was replaced by SIG_IGN
; jit-only: the interpreter has no signals to ignore
; async-only: an ignored signal is what it shows; back-edge mechanisms stop the loop without one
set procs = 1

func @spin() {
    %i = const 0
loop:
    %i = add %i, 1
    jmp loop
}

func @main() {
    ccall ignore_preempt_signal
    spawn @spin()
    sleep 1000
    print "main woke"
    ret
}
