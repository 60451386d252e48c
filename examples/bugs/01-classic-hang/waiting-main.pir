; Bug 1 — The classic hang, in the program the seed's diagnosis describes
;
; Go:  runtime.GOMAXPROCS(1); go func() { for !done {}; fmt.Println("done!"); finished <- true }()
;      time.Sleep(time.Millisecond); done = true; fmt.Println("flag set"); <-finished
;
; The seed's own program (classic-hang.pir) has @main return before the
; spinner runs. The diagnosis needs @main to give the spinner the P first
; and then wait for "done!", as here: with asyncpreemptoff=1 "the spinner
; never yields, the main goroutine never runs"; with asynchronous
; preemption the spinner is preempted and sees the flag, "but only if the
; compiler does not optimise the load out".
;
; What to look at: -O0 against -O1 under asynchronous preemption (at -O1
; LICM hoists the plain load of @done out of the loop: `preempt disasm`
; marks it HOISTED, and the watchdog's diagnosis says so); --preempt coop,
; what asyncpreemptoff=1 gives Go, with its "no preemption point" reason;
; and, at 2 Ps, that the hoisted load hangs with no preemption involved.
;
; Run:
;   preempt bugs 1
;   preempt run examples/bugs/01-classic-hang/waiting-main.pir -O0
;   preempt run examples/bugs/01-classic-hang/waiting-main.pir --timeout 2
;   preempt run examples/bugs/01-classic-hang/waiting-main.pir --preempt coop --timeout 2 --stats
;   preempt run examples/bugs/01-classic-hang/waiting-main.pir --procs 2 --timeout 2
;   preempt disasm examples/bugs/01-classic-hang/waiting-main.pir -O1

set procs = 1

global @done: i64 = 0

func @spinner(%finished: chan) {
loop:
    %v = load @done      ; plain load: at -O1 LICM hoists it out of the loop
    br %v, out, loop
out:
    print "done!"
    send %finished, 1
    ret
}

func @main() {
    %finished = chan 0
    spawn @spinner(%finished)
    sleep 1000           ; time.Sleep(time.Millisecond): the spinner gets the P
    store @done, 1
    print "flag set"
    %ok = recv %finished ; wait for "done!"
    ret
}
