; Stacks grow by copying while every frame holds a heap object. Four
; goroutines each recurse 20000 deep (from 2 KiB to about 1 MiB: several
; copies), keeping an object per frame whose value they add up on the way
; back; at the bottom each runs a collection, which scans the grown
; stacks while the others are stopped wherever they are. Then each parks
; in a receive with its recursion returned, is woken, and recurses again.
; A fifth goroutine parks before it ever grew, then grows.
; expect-status: 0
; expect-stdout: sum 1800090000
func @down(%n: i64) -> i64 {
    %z = eq %n, 0
    br %z, bottom, rec
bottom:
    gc
    ret 0
rec:
    %o = new 1
    set %o, 0, %n
    %m = sub %n, 1
    %r = call @down(%m)
    %v = get %o, 0
    %s = add %r, %v
    ret %s
}

func @worker(%go: chan, %out: chan) {
    %a = call @down(20000)
    send %out, %a
    %w = recv %go
    %b = call @down(20000)
    send %out, %b
    ret
}

func @late(%go: chan, %out: chan) {
    %w = recv %go
    %b = call @down(20000)
    send %out, %b
    ret
}

func @main() {
    %go = chan 0
    %out = chan 0
    spawn @late(%go, %out)
    %i = const 0
spawn:
    spawn @worker(%go, %out)
    %i = add %i, 1
    %more = lt %i, 4
    br %more, spawn, first
first:
    %s = const 0
    %k = const 0
r1:
    %v = recv %out
    %s = add %s, %v
    %k = add %k, 1
    %m = lt %k, 4
    br %m, r1, wake
wake:
    %k = const 0
w:
    send %go, 1
    %k = add %k, 1
    %m = lt %k, 5
    br %m, w, second
second:
    %k = const 0
r2:
    %v = recv %out
    %s = add %s, %v
    %k = add %k, 1
    %m = lt %k, 5
    br %m, r2, done
done:
    print "sum {}", %s
    ret
}
