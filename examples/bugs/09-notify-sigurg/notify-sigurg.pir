; Bug 9 — signal.Notify on SIGURG (the seed's program, 100 ms instead of 5 s)
;
; Go:  c := make(chan os.Signal, 1); signal.Notify(c, syscall.SIGURG)
;      go func() { for range c { fmt.Println("got SIGURG!") } }()
;
; The seed says: the runtime handles its preemption signal and forwards it
; to the channel too, so the program prints every time the scheduler
; preempts something, and nothing breaks (the channel may fill up). `notify
; %c` is signal.Notify; @spin gives the monitor something to preempt.
;
; Run:
;   preempt run examples/bugs/09-notify-sigurg/notify-sigurg.pir --stats
;
; What really happens (release build, 2-vCPU x86-64 VM): exit 0 after
; about 100 ms; "got SIGURG! (23)" about ten times (one per 10 ms quantum
; of the spinner: "signals sent 13" and 9 asynchronous preemptions in one
; run), then "main woke; the printer had received 10 SIGURG". Every signal
; that reaches the handler is offered to the channel, including those the
; handler declined (the monitor re-sends them); with a buffer of one, an
; arrival that finds it full is dropped, as Go drops it.

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
    sleep 100000                ; 100 ms (the seed sleeps 5 s)
    %n = load.atomic @got
    print "main woke; the printer had received {} SIGURG", %n
    ret
}
