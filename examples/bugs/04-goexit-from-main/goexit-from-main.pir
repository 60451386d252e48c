; Bug 4 — runtime.Goexit from main
;
; Go:  func main() { fmt.Println("about to Goexit"); runtime.Goexit(); fmt.Println("after Goexit") }
;
; The seed: Goexit ends the main goroutine (running its deferred calls);
; the runtime then finds no goroutines left and dies with
; "fatal error: no goroutines (main called runtime.Goexit) - deadlock!".
;
; Run:
;   preempt run examples/bugs/04-goexit-from-main/goexit-from-main.pir
;   preempt run examples/bugs/04-goexit-from-main/goexit-from-main.pir --engine interp
;
; What really happens (measured, release build, on the JIT and on the
; interpreter): stdout "about to Goexit"; stderr exactly
; "fatal error: no goroutines (main called runtime.Goexit) - deadlock!";
; exit status 1; "after Goexit" is never printed. The seed is right. Two
; differences from Go 1.27, which prints the same two lines: Go exits with
; status 2 (its status for every fatal error), preempt with 1 (IR.md: 1 for
; a panic or fatal error); and PIR has no `defer`, so there are no
; deferred calls to run. As in Go, the error comes only once no goroutine
; can ever run again: a goroutine still running or sleeping keeps the
; program alive after @main's goexit.

func @main() {
    print "about to Goexit"
    goexit
    print "after Goexit" ; unreachable, as in the Go program
    ret
}
