; Bug 13 — Foreign code clobbering the SIGURG handler (the seed's program)
;
; Go:  runtime.GOMAXPROCS(1); C.install_handler() /* signal(SIGURG, SIG_IGN) */
;      go func() { for {} }(); time.Sleep(2 * time.Second); fmt.Println("hi")
;
; The seed says: the C code overrides the runtime's SIGURG handler with
; SIG_IGN; when sysmon sends SIGURG the kernel ignores it, asynchronous
; preemption fails, the loop runs forever and the main goroutine never
; resumes ("hi" never prints). Its fix: do not install handlers for SIGURG
; from C; if a library does, reinstall the runtime's handler afterwards
; (os/signal.Reset(syscall.SIGURG)), or load the library before the runtime
; initialises.
;
; `ccall ignore_preempt_signal` is the C call: it sets SIGURG to SIG_IGN.
; The monitor asks the spinner to stop after its time slice and sends the
; signal (--stats counts the signals sent); the monitor's hang report and
; the watchdog's name the replaced handler as the reason. reinstalled.pir puts the handler back right after
; the C call (`ccall restore_preempt_signal`); --reinstall-preempt-handler
; has the monitor put it back once it reports the hang;
; no-foreign-handler.pir is the program without the C call.
;
; What to look at: whether "hi" prints, the signals sent and the
; preemptions in --stats, the diagnosis on stderr; with --sched go, the
; signals sent when the monitor times slices as Go's sysmon does.
;
; Run:
;   preempt bugs 13
;   preempt run examples/bugs/13-sig-ign-clobbers-sigurg/sig-ign-clobbers-sigurg.pir --timeout 2 --stats
;   preempt run examples/bugs/13-sig-ign-clobbers-sigurg/sig-ign-clobbers-sigurg.pir --timeout 2 --stats --sched go
;   preempt run examples/bugs/13-sig-ign-clobbers-sigurg/sig-ign-clobbers-sigurg.pir --reinstall-preempt-handler --stats

set procs = 1

func @spin() {
loop:
    jmp loop
}

func @main() {
    ccall ignore_preempt_signal  ; C.install_handler(): signal(SIGURG, SIG_IGN)
    spawn @spin()
    sleep 1000                   ; time.Sleep (1 ms here; the seed's 2 s hangs the same)
    print "hi"
    ret
}
