; Bug 4 — runtime.Goexit from main
;
; Go:  func main() { fmt.Println("about to Goexit"); runtime.Goexit(); fmt.Println("after Goexit") }
;
; The seed: Goexit ends the main goroutine (running its deferred calls);
; the runtime then finds no goroutines left and dies with
; "fatal error: no goroutines (main called runtime.Goexit) - deadlock!".
;
; What to look at: stdout (is "after Goexit" ever printed?), the exact
; text on stderr, and the exit status: preempt exits with 1 for every
; panic or fatal error (IR.md), Go with 2 for a fatal error, so the
; statuses differ by design and the message text is what is compared.
; PIR has no `defer`: the deferred calls are checked on Go only.
; goexit-with-worker.pir keeps a goroutine alive after @main's goexit;
; return-from-main.pir is the seed's fix.
;
; Run:
;   preempt bugs 4
;   preempt run examples/bugs/04-goexit-from-main/goexit-from-main.pir
;   preempt run examples/bugs/04-goexit-from-main/goexit-from-main.pir --engine interp

func @main() {
    print "about to Goexit"
    goexit
    print "after Goexit" ; unreachable, as in the Go program
    ret
}
