; context switch: two goroutines each calling `yield`; at procs 1 every
; yield switches to the other one. @n yields in @main make 2 * @n switches.
; Go's twin: bench/peers/go (peers switch), runtime.Gosched at GOMAXPROCS=1.
set procs = 1

global @n: i64 = 500000
global @stop: i64 = 0
global @started: i64 = 0

func @other() {
    store.atomic @started, 1
loop:
    yield
    %s = load.atomic @stop
    br %s, out, loop
out:
    ret
}

func @main() {
    %n = load @n
    spawn @other()
wait:
    yield
    %s = load.atomic @started
    br %s, timed, wait
timed:
    %t0 = now
    %i = const 0
loop:
    yield
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, done
done:
    %t1 = now
    store.atomic @stop, 1
    %dt = sub %t1, %t0
    %ops = mul %n, 2
    print "switch n={} ops={} elapsed_ns={}", %n, %ops, %dt
    ret
}
