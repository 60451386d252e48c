; Three sleepers wake in deadline order; `after` fires no earlier than asked.
; expect-status: 0
; expect-stdout: 10000 20000 30000
; expect-stdout: after fired 1

func @sleeper(%c: chan, %us: i64) {
    sleep %us
    send %c, %us
    ret
}
func @main() {
    %c = chan 10
    spawn @sleeper(%c, 30000)
    spawn @sleeper(%c, 10000)
    spawn @sleeper(%c, 20000)
    %a = recv %c
    %b = recv %c
    %d = recv %c
    print "{} {} {}", %a, %b, %d
    %t = after 5000
    %t0 = now
    %fired = recv %t
    %ok = ge %fired, %t0
    print "after fired {}", %ok
    ret
}
