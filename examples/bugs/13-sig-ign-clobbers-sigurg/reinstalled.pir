; Bug 13 — Foreign code clobbering the SIGURG handler, reinstalled at once
;
; Go:  C.install_handler() /* signal(SIGURG, SIG_IGN) */; /* reinstall Go's handler */
;      go func() { for {} }(); time.Sleep(...); fmt.Println("hi")
;
; The seed's fix: "reinstall Go's handler afterwards" (it names
; os/signal.Reset(syscall.SIGURG), which main.go's `reset` scenario
; tries; its `ignore-notify` scenario reinstalls it another way). Here the
; runtime's handler is put back right after the C call, before the
; spinner runs: `ccall restore_preempt_signal`.
;
; Run:
;   preempt bugs 13
;   preempt run examples/bugs/13-sig-ign-clobbers-sigurg/reinstalled.pir --stats

set procs = 1

func @spin() {
loop:
    jmp loop
}

func @main() {
    ccall ignore_preempt_signal   ; C.install_handler(): signal(SIGURG, SIG_IGN)
    ccall restore_preempt_signal  ; the runtime's handler back
    spawn @spin()
    sleep 1000
    print "hi"
    ret
}
