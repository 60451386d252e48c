; A call-free loop at one P, stopped by asynchronous preemption: @spin
; never calls anything and never reaches a runtime operation, so only the
; monitor's signal can take the P from it. @main sleeps 1 ms a hundred
; times; each time it wakes, it waits for the spinner's quantum (10 ms) to
; end and the signal to stop it.
;
;   preempt run --stats examples/spin-preempted.pir               (async: ends)
;   preempt run --preempt coop --timeout 2 examples/spin-preempted.pir   (hangs)
;
; What it prints, for the tests and `preempt soak`:
; expect-status: 0
; expect-stdout: main woke 100 times behind a call-free spinner
; coop-hangs: the spinner has no call, and one P
set procs = 1

global @stop: i64 = 0

func @spin() {
    %x = const 1
loop:
    %x = mul %x, 6364136223846793005
    %x = add %x, 1442695040888963407
    %s = load.atomic @stop
    br %s, out, loop
out:
    ret
}

func @main() {
    spawn @spin()
    %i = const 0
again:
    sleep 1000
    %i = add %i, 1
    %more = lt %i, 100
    br %more, again, done
done:
    store.atomic @stop, 1
    print "main woke 100 times behind a call-free spinner"
    ret
}
