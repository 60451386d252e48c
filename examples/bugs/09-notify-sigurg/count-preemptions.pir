; Bug 9 — signal.Notify on SIGURG: signals received against preemptions
;
; Go:  c := make(chan os.Signal, 1); signal.Notify(c, syscall.SIGURG)   (the seed's)
;      all := make(chan os.Signal, 4096); signal.Notify(all, syscall.SIGURG)
;      go spin(1); go spin(2); time.Sleep(300 * time.Millisecond)
;
; The seed says the program prints every time the scheduler decides to
; preempt, "a way to observe the async preemption rate", and that the
; channel may fill up. This is notify-sigurg.pir with two call-free
; spinners instead of one: at one P they can only take the P from each
; other by being preempted, so each counts the times it finds that the
; other ran since its own last iteration (`measure switches`: the
; preemptions of a spinner). A second channel, of 4096, is notified too
; and drained by a counter (`measure arrived`: every arrival the seed's
; channel of one was offered); the seed's channel delivers `measure
; received` of them to the printer. After its sleep @main stops the
; spinners and gives the printer and the counter 5 ms to take what is
; queued, so that both counts cover the same signals.
;
; What to look at: arrived against switches (does every preemption reach
; the channels?) and received against arrived (did the channel of one
; fill up and drop some?); --stats counts the signals the monitor sent and
; the asynchronous preemptions.
;
; Run:
;   preempt bugs 9
;   preempt run examples/bugs/09-notify-sigurg/count-preemptions.pir --stats
;   preempt run examples/bugs/09-notify-sigurg/count-preemptions.pir --sched go --stats

set procs = 1

global @got: i64 = 0
global @arrived: i64 = 0
global @running: i64 = 0    ; which spinner ran last
global @switches: i64 = 0
global @stop: i64 = 0       ; the spinners' end

func @printer(%c: chan) {
loop:
    %s = recv %c
    print "got SIGURG! ({})", %s
    %n = add.atomic @got, 1
    jmp loop
}

func @counter(%all: chan) {
loop:
    %s = recv %all
    %n = add.atomic @arrived, 1
    jmp loop
}

; A call-free spinner: only an asynchronous preemption stops it. It
; counts the times it finds that the other ran since its own last
; iteration, until stopped.
func @spin(%me: i64) {
loop:
    %stop = load.atomic @stop
    br %stop, end, check
check:
    %r = load.atomic @running
    %same = eq %r, %me
    br %same, loop, switched
switched:
    store.atomic @running, %me
    %n = add.atomic @switches, 1
    jmp loop
end:
    ret
}

func @main() {
    %c = chan 1                 ; make(chan os.Signal, 1)
    notify %c                   ; signal.Notify(c, syscall.SIGURG)
    spawn @printer(%c)
    %all = chan 4096
    notify %all
    spawn @counter(%all)
    spawn @spin(1)
    spawn @spin(2)
    %t0 = now
    sleep 300000                ; 300 ms
    %t1 = now
    store.atomic @stop, 1       ; no more signals: let the printer and the
    sleep 5000                  ; counter take what is queued
    %n = load.atomic @got
    %a = load.atomic @arrived
    %s = load.atomic @switches
    %s = sub %s, 1              ; the first spinner's start is no switch
    %us = sub %t1, %t0
    %us = div %us, 1000
    %per_s = mul %n, 1000000
    %per_s = div %per_s, %us
    print "measure received {}", %n
    print "measure per_s {}", %per_s
    print "measure arrived {}", %a
    print "measure switches {}", %s
    ret
}
