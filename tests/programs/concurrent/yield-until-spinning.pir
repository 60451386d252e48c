; A runnable goroutine must not wait while a P is idle. Two Ps: @main
; starts a call-free spinner, yields until the spinner runs, then sleeps
; 1 ms and prints. Under `coop` the spinner can never be stopped, so the
; other P must run @main: when @main yielded just as the other P's M gave
; up looking for work, the old scheduler left @main on the spinner's P's
; queue, that P's M in the spinner forever, and the other P idle (7 hangs
; in 200 runs under coop, a whole quantum's wait under async).
; flags: --timeout 20
; expect-status: 0
; expect-stdout: main woke
set procs = 2

global @started: i64 = 0
global @stop: i64 = 0

func @spin() {
    store.atomic @started, 1
    %x = const 1
loop:
    %x = add %x, 1
    %s = load.atomic @stop
    br %s, out, loop
out:
    ret
}

func @main() {
    spawn @spin()
wait:
    %s = load.atomic @started
    br %s, go, y
y:
    yield
    jmp wait
go:
    sleep 1000
    print "main woke"
    store.atomic @stop, 1
    ret
}
