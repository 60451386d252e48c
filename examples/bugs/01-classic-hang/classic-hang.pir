; Bug 1 — The classic hang (the seed's program, exactly)
;
; Go:  runtime.GOMAXPROCS(1); done := false
;      go func() { for !done {}; fmt.Println("done!") }(); done = true; fmt.Println("flag set")
;
; The seed asks whether "done!" is printed and diagnoses a hang: a data race
; on `done`; a compiler may hoist the load into a register so the loop spins
; on a stale value forever; and with asyncpreemptoff=1 "the spinner never
; yields, the main goroutine never runs".
;
; What to look at: whether this program, as written, hangs at all (`spawn`
; queues the spinner in the P's runnext slot, as Go's `go` does, and @main
; keeps the only P until it returns); --stats counts the context switches.
; waiting-main.pir is the program the diagnosis describes; atomic.pir its
; fix.
;
; Run:
;   preempt bugs 1                      every scenario, on preempt and on Go, with verdicts
;   preempt run examples/bugs/01-classic-hang/classic-hang.pir --stats
;   preempt run examples/bugs/01-classic-hang/classic-hang.pir --procs 2 -O0

set procs = 1

global @done: i64 = 0

func @spinner() {
loop:
    %v = load @done      ; plain load: at -O1 LICM hoists it out of the loop
    br %v, out, loop
out:
    print "done!"
    ret
}

func @main() {
    spawn @spinner()
    store @done, 1
    print "flag set"
    ret
}
