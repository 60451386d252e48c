; A goroutine locked to its thread keeps working through sleeps and
; channel operations, and unlocks.
; expect-status: 0
; expect-stdout: locked worker got 10
func @worker(%in: chan, %out: chan) {
    lockthread
    %s = const 0
    %i = const 0
loop:
    sleep 100
    %v = recv %in
    %s = add %s, %v
    %i = add %i, 1
    %c = lt %i, 4
    br %c, loop, done
done:
    unlockthread
    send %out, %s
    ret
}
func @main() {
    %in = chan 0
    %out = chan 0
    spawn @worker(%in, %out)
    send %in, 1
    send %in, 2
    send %in, 3
    send %in, 4
    %r = recv %out
    print "locked worker got {}", %r
    ret
}
