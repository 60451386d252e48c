; Seed bug 13: foreign code installs SIG_IGN for the preemption signal
; process-wide; the kernel discards every signal the monitor sends, and at
; one P the spinner keeps the P forever. The diagnosis names the
; replaced handler. @main makes the foreign call before it starts the
; spinner, as the seed's program does, and sleeps only once the spinner
; is in its loop: under qemu on a loaded host the spinner's start (a
; stop at its own function entry, with --quantum 20us, or a foreign call
; of its own) could outlast @main's 1 ms sleep, and @main then woke and
; ended the program.
; flags: --timeout 1
; expect-status: 3
; expect-stderr: @spin in block loop
; expect-stderr: reason: the runtime's handler for SIGURG was replaced by SIG_IGN
; jit-only: the interpreter has no signals to ignore
; async-only: an ignored signal is what it shows; back-edge mechanisms stop the loop without one
set procs = 1

global @spinning: i64

func @spin() {
    store.atomic @spinning, 1
    %i = const 0
loop:
    %i = add %i, 1
    jmp loop
}

func @main() {
    ccall ignore_preempt_signal
    spawn @spin()
wait:
    %s = load.atomic @spinning
    br %s, spinning, again
again:
    yield
    jmp wait
spinning:
    sleep 1000
    print "main woke"
    ret
}
