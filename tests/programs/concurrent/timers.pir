; Three sleepers wake in the order of their deadlines, whatever the order
; they start in; `after` fires no earlier than asked.
; expect-status: 0
; expect-stdout: 1 2 3
; expect-stdout: after fired 1
func @sleeper(%c: chan, %deadline: i64, %tag: i64) {
    %t = now
    %left = sub %deadline, %t
    %us = div %left, 1000
    sleep %us
    send %c, %tag
    ret
}
func @main() {
    %c = chan 10
    %t0 = now
    %d3 = add %t0, 300000000
    %d1 = add %t0, 100000000
    %d2 = add %t0, 200000000
    spawn @sleeper(%c, %d3, 3)
    spawn @sleeper(%c, %d1, 1)
    spawn @sleeper(%c, %d2, 2)
    %a = recv %c
    %b = recv %c
    %d = recv %c
    print "{} {} {}", %a, %b, %d
    %t1 = now
    %t = after 5000
    %fired = recv %t
    %early = add %t1, 5000000
    %ok = ge %fired, %early
    print "after fired {}", %ok
    ret
}
