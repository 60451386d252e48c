; A buffered channel keeps order; a full one blocks the sender until a
; receive makes room.
; expect-status: 0
; expect-stdout: 1 2 3 4 5
; expect-stdout: sender done
func @sender(%c: chan, %done: chan) {
    send %c, 1
    send %c, 2
    send %c, 3
    send %c, 4
    send %c, 5
    send %done, 1
    ret
}
func @main() {
    %c = chan 2
    %done = chan 0
    spawn @sender(%c, %done)
    sleep 2000
    %a = recv %c
    %b = recv %c
    %d = recv %c
    %e = recv %c
    %f = recv %c
    print "{} {} {} {} {}", %a, %b, %d, %e, %f
    %x = recv %done
    print "sender done"
    ret
}
