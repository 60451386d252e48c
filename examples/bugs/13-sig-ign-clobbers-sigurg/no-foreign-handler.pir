; Bug 13 — Foreign code clobbering the SIGURG handler: the C call left out
;
; Go:  go func() { for {} }(); time.Sleep(...); fmt.Println("hi")   // no C.install_handler()
;
; The seed's first fix: "Do not install handlers for SIGURG from C". The
; seed's program without the C call: the monitor's signal stops the
; spinner after its time slice and @main wakes.
;
; Run:
;   preempt bugs 13
;   preempt run examples/bugs/13-sig-ign-clobbers-sigurg/no-foreign-handler.pir --stats

set procs = 1

func @spin() {
loop:
    jmp loop
}

func @main() {
    spawn @spin()
    sleep 1000
    print "hi"
    ret
}
