; channel ping-pong: a value sent over an unbuffered channel and echoed
; back over another; one op is a round trip. The harness runs it at
; procs 1 and procs 2. Go's twin: bench/peers/go (peers pingpong).
set procs = 1

global @n: i64 = 200000

func @echo(%ping: chan, %pong: chan) {
loop:
    %v = recv %ping
    send %pong, %v
    jmp loop
}

func @main() {
    %n = load @n
    %ping = chan 0
    %pong = chan 0
    spawn @echo(%ping, %pong)
    ; the echo goroutine is running before the clock starts
    send %ping, 0
    %w = recv %pong
    %t0 = now
    %i = const 0
loop:
    send %ping, %i
    %v = recv %pong
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, done
done:
    %t1 = now
    %dt = sub %t1, %t0
    print "pingpong n={} ops={} elapsed_ns={}", %n, %n, %dt
    ret
}
