; Ten goroutines add 100000 each with add.atomic.
; expect-status: 0
; expect-stdout: counter: 1000000

global @counter: i64
global @plain: i64
func @w(%n: i64, %done: chan) {
    %i = const 0
loop:
    %x = add.atomic @counter, 1
    %i = add %i, 1
    %c = lt %i, %n
    br %c, loop, out
out:
    send %done, 1
    ret
}
func @main() {
    %done = chan 0
    %k = const 0
sp:
    spawn @w(100000, %done)
    %k = add %k, 1
    %c = lt %k, 10
    br %c, sp, wait
wait:
    %k = const 0
wl:
    %x = recv %done
    %k = add %k, 1
    %c2 = lt %k, 10
    br %c2, wl, out
out:
    %v = load.atomic @counter
    print "counter: {}", %v
    ret
}
