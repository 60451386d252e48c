; idle goroutines: @n goroutines parked in a receive from a channel nobody
; sends on. @main waits until every one has started (and so is about to
; park, or parked), then returns. The harness runs this file in a fresh
; `preempt run` process twice, with @n = 0 and with @n = N, and takes the
; difference of the two processes' peak RSS (ru_maxrss): the memory the N
; parked goroutines cost. Go's twin: bench/peers/go (peers idle).
set procs = 1

global @n: i64 = 100000
global @started: i64 = 0

func @idle(%block: chan) {
    %s = add.atomic @started, 1
    %v = recv %block
    ret
}

func @main() {
    %n = load @n
    %block = chan 0
    %i = const 0
    %some = gt %n, 0
    br %some, spawn, wait
spawn:
    spawn @idle(%block)
    %i = add %i, 1
    %more = lt %i, %n
    br %more, spawn, wait
wait:
    %s = load.atomic @started
    %all = ge %s, %n
    br %all, parked, again
again:
    yield
    jmp wait
parked:
    ; let the last goroutines reach their receive
    sleep 10000
    print "idle n={}", %n
    ret
}
