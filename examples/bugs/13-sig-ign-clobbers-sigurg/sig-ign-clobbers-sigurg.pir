; Bug 13 — Foreign code clobbering the SIGURG handler (the seed's program)
;
; Go:  runtime.GOMAXPROCS(1); C.install_handler() /* signal(SIGURG, SIG_IGN) */
;      go func() { for {} }(); time.Sleep(2 * time.Second); fmt.Println("hi")
;
; The seed says: the kernel discards the ignored signal, asynchronous
; preemption fails, the loop runs forever and "hi" never prints. The fix it
; gives is to reinstall the runtime's handler.
;
; Run:
;   preempt run examples/bugs/13-sig-ign-clobbers-sigurg/sig-ign-clobbers-sigurg.pir --timeout 2
;   preempt run examples/bugs/13-sig-ign-clobbers-sigurg/sig-ign-clobbers-sigurg.pir --reinstall-preempt-handler
;
; What really happens (release build, 2-vCPU x86-64 VM):
;   - As the seed says: no output; the watchdog ends the program (exit 3).
;     The monitor sends SIGURG to the spinner's thread every millisecond
;     (444 in 5 s) and none arrives. After 100 ms stderr reads
;       preempt: goroutine 2 has not stopped 100.4ms after a preemption
;       request (async mode): @spin in block loop ...
;       reason: the runtime's handler for SIGURG was replaced by SIG_IGN
;       (ccall ignore_preempt_signal?): the kernel discards it; asynchronous
;       preemption cannot reach any goroutine
;     and the watchdog's report names the loop and @main, runnable.
;   - With --reinstall-preempt-handler the monitor puts the handler back
;     when it reports the hang ("preempt: reinstalled the runtime's handler
;     for SIGURG"); its next signal stops the spinner and "hi" prints, exit
;     0. (`ccall restore_preempt_signal` in the program does the same from
;     inside.)

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
