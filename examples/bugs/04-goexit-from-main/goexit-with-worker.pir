; Bug 4 — runtime.Goexit from main, with a goroutine still alive
;
; Go:  go func() { time.Sleep(50 * time.Millisecond); fmt.Println("worker done") }()
;      fmt.Println("about to Goexit"); runtime.Goexit(); fmt.Println("after Goexit")
;
; The seed: after main's Goexit "the runtime then notices there are no
; goroutines left" and dies. Here one is left: a worker that sleeps 50 ms
; and then prints.
;
; What to look at: whether the program stays alive while the worker
; sleeps (stdout gets "worker done") and dies with the same fatal error
; only once the worker has returned and no goroutine is left.
;
; Run:
;   preempt bugs 4
;   preempt run examples/bugs/04-goexit-from-main/goexit-with-worker.pir

func @worker() {
    sleep 50000          ; time.Sleep(50 * time.Millisecond)
    print "worker done"
    ret
}

func @main() {
    spawn @worker()
    print "about to Goexit"
    goexit
    print "after Goexit" ; unreachable, as in the Go program
    ret
}
