; Bug 9 — signal.Notify on SIGURG: the seed's program exactly (500 ms
; instead of 5 s)
;
; Go:  c := make(chan os.Signal, 1); signal.Notify(c, syscall.SIGURG)
;      go func() { for range c { fmt.Println("got SIGURG!") } }()
;      time.Sleep(5 * time.Second)
;
; The seed asks whether this prints frequently. Nothing else runs here:
; the printer waits on its channel and @main sleeps, so there is nothing
; for the monitor to preempt. notify-sigurg.pir adds a spinner.
;
; What to look at: how many values the channel delivers in the sleep
; (`measure received`), per second (`measure per_s`).
;
; Run:
;   preempt bugs 9
;   preempt run examples/bugs/09-notify-sigurg/seed-program.pir --stats
;   preempt run examples/bugs/09-notify-sigurg/seed-program.pir --sched go --stats

set procs = 1

global @got: i64 = 0

func @printer(%c: chan) {
loop:
    %s = recv %c
    print "got SIGURG! ({})", %s
    %n = add.atomic @got, 1
    jmp loop
}

func @main() {
    %c = chan 1                 ; make(chan os.Signal, 1)
    notify %c                   ; signal.Notify(c, syscall.SIGURG)
    spawn @printer(%c)
    %t0 = now
    sleep 500000                ; 500 ms (the seed sleeps 5 s)
    %t1 = now
    %n = load.atomic @got
    %us = sub %t1, %t0
    %us = div %us, 1000
    %per_s = mul %n, 1000000
    %per_s = div %per_s, %us
    print "measure received {}", %n
    print "measure per_s {}", %per_s
    ret
}
