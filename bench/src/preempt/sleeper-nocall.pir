; sleeper behind a call-free spinner: at procs 1 under asynchronous
; preemption with a 10 ms quantum, @main sleeps 1 ms @n times while @spin
; loops forever without a call or a runtime operation: only the signal can
; stop it. Each sleep's lateness (actual - 1 ms) is kept in a heap object
; and printed at the end; the harness computes the percentiles. Go's twin:
; bench/peers/go (peers sleeper -nocall), default GODEBUG.
set procs = 1
set preempt = async
set quantum_us = 10000

global @n: i64 = 200
global @sleep_us: i64 = 1000
; never set: only gives the spinner's loop an exit
global @stop: i64 = 0
global @started: i64 = 0

func @spin() {
    store.atomic @started, 1
    %x = const 1
loop:
    %x = mul %x, 6364136223846793005
    %x = add %x, 1442695040888963407
    %s = load @stop
    br %s, out, loop
out:
    print "{}", %x
    ret
}

func @main() {
    %n = load @n
    %us = load @sleep_us
    %want = mul %us, 1000
    %late = new %n
    spawn @spin()
wait:
    yield
    %s = load.atomic @started
    br %s, go, wait
go:
    %i = const 0
    %more = lt %i, %n
    br %more, loop, report
loop:
    %t0 = now
    sleep %us
    %t1 = now
    %d = sub %t1, %t0
    %l = sub %d, %want
    set %late, %i, %l
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, report
report:
    %j = const 0
    %more = lt %j, %n
    br %more, out, done
out:
    %v = get %late, %j
    print "late_ns {}", %v
    %j = add %j, 1
    %more = lt %j, %n
    br %more, out, done
done:
    print "sleeper n={} sleep_ns={}", %n, %want
    ret
}
