; spawn: @n goroutines that each bump a counter and exit; @main yields
; until every one has run. Per goroutine: spawn, first run, exit.
; Go's twin: bench/peers/go (peers spawn).
set procs = 1

global @n: i64 = 10000
global @count: i64 = 0

func @child() {
    %c = add.atomic @count, 1
    ret
}

func @main() {
    %n = load @n
    %t0 = now
    %i = const 0
    br 1, spawn, wait
spawn:
    spawn @child()
    %i = add %i, 1
    %more = lt %i, %n
    br %more, spawn, wait
wait:
    %c = load.atomic @count
    %all = ge %c, %n
    br %all, done, again
again:
    yield
    jmp wait
done:
    %t1 = now
    %dt = sub %t1, %t0
    print "spawn n={} ops={} elapsed_ns={}", %n, %n, %dt
    ret
}
