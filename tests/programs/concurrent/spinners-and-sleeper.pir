; Two goroutines in call-free loops of the same function, and @main
; sleeping 1 ms a hundred times: no allocation, no collection. Each time
; @main wakes it needs a P, and only a preemption of a spinner gives it
; one. Under `patch` this hung (both spinners "not armed", @main
; runnable): a stop of one spinner undid the arming of the other's
; request on the function they share.
; flags: --timeout 20
; expect-status: 0
; expect-stdout: main woke 100 times behind two spinners
; coop-hangs: the spinners' loops have no call
global @stop: i64 = 0

func @spin() {
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
    spawn @spin()
    %i = const 0
again:
    sleep 1000
    %i = add %i, 1
    %more = lt %i, 100
    br %more, again, done
done:
    store.atomic @stop, 1
    print "main woke 100 times behind two spinners"
    ret
}
