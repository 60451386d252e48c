; Dead frames under live ones. A goroutine recurses 1000 deep, each frame
; holding a fresh object, and returns: the objects are garbage, but the
; words of the returned frames (saved registers, call arguments) still
; name them, below the goroutine's SP. It parks; @main calls the
; collector, and only after the mark has started (the starter sleeps
; 50 ms in foreign code first) is the goroutine woken, to recurse 1000
; deep again through a function whose frames leave a slot unwritten (the
; arguments of a call made only on a fault path) and to spin at the
; bottom, storing refs: --gc-interleave holds the marker until those
; stores come, so mark termination finds the goroutine at the bottom.
; The conservative stack scan then reads the unwritten slots, dead words
; the mark-start scan never saw. With --gc-verify the collector zeroes
; every stack below its SP at mark start, so the verifier finds no
; object there to report; tests/tests/gc.rs also runs it with that
; zeroing left out (--gc-inject keep-dead-stack-words), and the verifier
; then reports the dead objects as unmarked (333 of them at -O1, on both
; architectures).
; expect-status: 0
; expect-stdout: 500500 1000
; coop-hangs: the spinner's loop has no call, and the stop of the world at mark termination needs it stopped
global @done: i64
global @keep: ref
global @box: ref

func @leave(%n: i64, %p: ref) -> i64 {
    %z = eq %n, 0
    br %z, bottom, rec
bottom:
    ret 0
rec:
    %o = new 1
    set %o, 0, %n
    %m = sub %n, 1
    %r = call @leave(%m, %o)
    %v = get %o, 0
    %s = add %r, %v
    ret %s
}

func @probe(%n: i64) -> i64 {
    %z = eq %n, 0
    br %z, bottom, rec
bottom:
    %h = load @box
    setref %h, 0, %h
    %d = load.atomic @done
    %more = eq %d, 0
    br %more, bottom, out
out:
    ret 0
rec:
    %m = sub %n, 1
    %r = call @probe(%m)
    %s = add %r, 1
    ret %s
}

func @worker(%ready: chan, %go: chan, %out: chan) {
    %a = call @leave(1000, nil)
    send %ready, %a
    %w = recv %go
    %h = new 1
    store @box, %h
    %b = call @probe(1000)
    send %out, %b
    ret
}

func @starter(%go: chan) {
    ccall sleep, 50000
    send %go, 1
    ret
}

func @main() {
    %head = copy nil
    %i = const 0
fill:
    %node = new 1
    setref %node, 0, %head
    %head = copy %node
    %i = add %i, 1
    %more = lt %i, 256
    br %more, fill, go
go:
    store @keep, %head
    %ready = chan 0
    %go = chan 0
    %out = chan 0
    spawn @worker(%ready, %go, %out)
    %a = recv %ready
    spawn @starter(%go)
    gc
    store.atomic @done, 1
    %b = recv %out
    print "{} {}", %a, %b
    ret
}
