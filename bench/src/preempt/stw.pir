; stop-the-world stopping time: at procs 2, @main calls `gc` @n times
; while @spinners goroutines loop without a call or a runtime operation
; (only the preemption signal stops them). Each collection stops the
; world twice (mark start, mark termination); the runtime's own histogram
; "stop-the-world latency" (request to every P stopped) is read from
; --stats-json. Go's twin: bench/peers/go (peers stw -spinners K), whose
; /sched/pauses/stopping/gc:seconds measures the same span.
set procs = 2
set preempt = async

global @n: i64 = 200
global @spinners: i64 = 1
global @stop: i64 = 0
global @started: i64 = 0

func @spin() {
    %one = add.atomic @started, 1
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
    %n = load @n
    %k = load @spinners
    %i = const 0
spawn:
    spawn @spin()
    %i = add %i, 1
    %more = lt %i, %k
    br %more, spawn, wait
wait:
    yield
    %s = load.atomic @started
    %all = ge %s, %k
    br %all, collect, wait
collect:
    %j = const 0
cycle:
    gc
    %j = add %j, 1
    %again = lt %j, %n
    br %again, cycle, done
done:
    store.atomic @stop, 1
    ret
}
