; Seed bug 5: the spinner's thread blocks the preemption signal (as a C
; library calling pthread_sigmask would), so asynchronous preemption never
; reaches it; at one P main never runs again. The watchdog's diagnosis
; says why. The spinner locks itself to its thread first, as the seed's
; program does: otherwise a monitor that retakes the P during the foreign
; call (seen under qemu) sends the goroutine on to another thread, whose
; mask is clear, and the signal stops it there. @main sleeps only once
; the spinner is past the foreign call, just before its loop: anything
; that held the spinner up longer than the sleep (the call, or a stop at
; its function entry under --quantum 20us; seen under qemu on a loaded
; host) let @main wake and end the program.
; flags: --timeout 1
; expect-status: 3
; expect-stderr: @spin in block loop
; expect-stderr: reason: SIGURG is blocked on this thread (ccall block_preempt_signal?)
; jit-only: the interpreter has no signals to block
; async-only: a blocked signal is what it shows; back-edge mechanisms stop the loop without one
set procs = 1

global @blocked: i64

func @spin() {
    lockthread
    ccall block_preempt_signal
    store.atomic @blocked, 1
    %i = const 0
loop:
    %i = add %i, 1
    jmp loop
}

func @main() {
    spawn @spin()
wait:
    %b = load.atomic @blocked
    br %b, blocked, again
again:
    yield
    jmp wait
blocked:
    sleep 1000
    print "main woke"
    ret
}
