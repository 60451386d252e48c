; Bug 9 — signal.Notify on SIGURG (the seed's program with a spinner, 100 ms instead of 5 s)
;
; Go:  c := make(chan os.Signal, 1); signal.Notify(c, syscall.SIGURG)
;      go func() { for range c { fmt.Println("got SIGURG!") } }()
;
; The seed says: the runtime handles its preemption signal and forwards it
; to the channel too, so the program prints every time the scheduler
; preempts something, and nothing breaks (the channel may fill up). `notify
; %c` is signal.Notify; @spin gives the monitor something to preempt.
;
; The seed's own program has no spinner: seed-program.pir.
; count-preemptions.pir sets the signals received against the preemptions.
;
; What to look at: how many values the channel delivers while @main
; sleeps (`measure received`, and `measure per_s`, per second), against
; the monitor's preemptions and signals (--stats), at one P and at two
; (where the spinner has a P of its own and nothing waits for it), and
; with --sched go (the monitor times slices as Go's sysmon does). Every
; signal that reaches the handler is offered to the channel, including
; those the handler declined (the monitor re-sends them); with a buffer of
; one, an arrival that finds it full is dropped, as Go drops it.
;
; Run:
;   preempt bugs 9
;   preempt run examples/bugs/09-notify-sigurg/notify-sigurg.pir --stats
;   preempt run examples/bugs/09-notify-sigurg/notify-sigurg.pir --sched go --stats
;   preempt run examples/bugs/09-notify-sigurg/notify-sigurg.pir --procs 2 --stats
;   preempt run examples/bugs/09-notify-sigurg/notify-sigurg.pir --procs 2 --preempt coop --stats

set procs = 1

global @got: i64 = 0

func @printer(%c: chan) {
loop:
    %s = recv %c
    print "got SIGURG! ({})", %s
    %n = add.atomic @got, 1
    jmp loop
}

; Something for the monitor to preempt: a call-free spinner.
func @spin() {
loop:
    jmp loop
}

func @main() {
    %c = chan 1                 ; make(chan os.Signal, 1)
    notify %c                   ; signal.Notify(c, syscall.SIGURG)
    spawn @printer(%c)
    spawn @spin()
    %t0 = now
    sleep 100000                ; 100 ms (the seed sleeps 5 s)
    %t1 = now
    %n = load.atomic @got
    %us = sub %t1, %t0
    %us = div %us, 1000
    %per_s = mul %n, 1000000
    %per_s = div %per_s, %us
    print "measure received {}", %n
    print "measure per_s {}", %per_s
    print "main woke; the printer had received {} SIGURG", %n
    ret
}
