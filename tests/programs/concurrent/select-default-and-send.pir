; select with default does not block; a send arm fires when a receiver
; waits; a timeout arm made with `after` fires when nothing else does.
; expect-status: 0
; expect-stdout: empty
; expect-stdout: sent 42
; expect-stdout: timed out
func @taker(%c: chan, %done: chan) {
    %v = recv %c
    print "sent {}", %v
    send %done, 1
    ret
}
func @main() {
    %c = chan 0
    %done = chan 0
    select recv %c -> got, default -> empty
got:
    print "unexpected"
    ret
empty:
    print "empty"
    spawn @taker(%c, %done)
    select send %c, 42 -> sent
sent:
    %x = recv %done
    %never = chan 0
    %t = after 5000
    select recv %never -> bad, recv %t -> timeout
bad:
    print "unexpected"
    ret
timeout:
    print "timed out"
    ret
}
