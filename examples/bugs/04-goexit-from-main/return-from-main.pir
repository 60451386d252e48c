; Bug 4 — runtime.Goexit from main: the seed's fix, return from main
;
; Go:  func main() { fmt.Println("about to Goexit"); return }
;
; The seed's fix: "Use os.Exit(0) or just return from main". PIR has no
; os.Exit; returning from @main ends the program, other goroutines
; abandoned, as in Go.
;
; Run:
;   preempt bugs 4
;   preempt run examples/bugs/04-goexit-from-main/return-from-main.pir

func @main() {
    print "about to Goexit"
    ret
}
