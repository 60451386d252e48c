; Closing a channel wakes every parked receiver with 0.
; expect-status: 0
; expect-stdout: sum of zeros 0, woken 5
func @waiter(%c: chan, %done: chan) {
    %v = recv %c
    send %done, %v
    ret
}
func @main() {
    %c = chan 0
    %done = chan 5
    %i = const 0
spawn:
    spawn @waiter(%c, %done)
    %i = add %i, 1
    %more = lt %i, 5
    br %more, spawn, wait
wait:
    sleep 2000
    close %c
    %s = const 0
    %n = const 0
collect:
    %v = recv %done
    %s = add %s, %v
    %n = add %n, 1
    %more2 = lt %n, 5
    br %more2, collect, out
out:
    print "sum of zeros {}, woken {}", %s, %n
    ret
}
