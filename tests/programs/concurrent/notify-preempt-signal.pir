; Seed bug 9: `notify %c` (signal.Notify(c, SIGURG)) receives every
; preemption signal that arrives. A call-free spinner at one P is
; preempted once per quantum (here 1 ms), so main, reading the channel,
; sees signals arrive; each carries the signal number.
; expect-status: 0
; expect-stdout: got 3 preemption signals, each 23
; jit-only: the interpreter is not preempted by signals
; async-only: it counts preemption signals, which only async sends
set procs = 1
set quantum_us = 1000

func @spin() {
    %i = const 0
loop:
    %i = add %i, 1
    jmp loop
}

func @main() {
    %c = chan 8
    notify %c
    spawn @spin()
    %a = recv %c
    %b = recv %c
    %d = recv %c
    %ok = eq %a, %b
    %ok2 = eq %b, %d
    %ok = and %ok, %ok2
    assert %ok, "signal numbers differ"
    print "got 3 preemption signals, each {}", %a
    ret
}
