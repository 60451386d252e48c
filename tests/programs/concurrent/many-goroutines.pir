; A thousand goroutines each send their argument; main sums them.
; expect-status: 0
; expect-stdout: sum 499500 from 1000
func @w(%i: i64, %c: chan) {
    send %c, %i
    ret
}
func @main() {
    %c = chan 0
    %i = const 0
spawn:
    spawn @w(%i, %c)
    %i = add %i, 1
    %more = lt %i, 1000
    br %more, spawn, sum
sum:
    %s = const 0
    %n = const 0
loop:
    %v = recv %c
    %s = add %s, %v
    %n = add %n, 1
    %m = lt %n, 1000
    br %m, loop, out
out:
    print "sum {} from {}", %s, %n
    ret
}
