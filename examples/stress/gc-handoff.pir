; expect-status: 0
; expect-stdout: checked
global @cell: ref
global @stop: i64
global @cycles: i64 = 200

; Publishes fresh objects in the last slot of @cell, and forgets each one
; once published: the slot is then the only ref to it.
func @producer(%done: chan) {
    %cell = load @cell
    %seq = const 0
loop:
    %x = new 1
    %seq = add %seq, 1
    set %x, 0, %seq
    setref %cell, 65535, %x
    %x = copy nil
    %turn = and %seq, 15
    br %turn, poll, give
give:
    yield
poll:
    %st = load.atomic @stop
    br %st, out, loop
out:
    send %done, 1
    ret
}

; Erases the slot, again and again: each store may overwrite the only ref
; to a published object, so the write barrier must shade it while the
; collector marks. No runtime call: only a signal stops this loop.
func @eraser(%done: chan) {
    %cell = load @cell
    %n = const 0
loop:
    setref %cell, 65535, nil
    setref %cell, 65535, nil
    setref %cell, 65535, nil
    setref %cell, 65535, nil
    %n = add %n, 1
    %turn = and %n, 255
    br %turn, poll, give
give:
    yield
poll:
    %st = load.atomic @stop
    br %st, out, loop
out:
    send %done, 1
    ret
}

; Takes each new object it sees in @cell: puts it in a fresh box (an
; object allocated while the collector marks is black: never scanned) in
; the next slot of its own array, and remembers its payload; after each
; lap, checks that every object it took still carries its payload.
func @taker(%done: chan) {
    %cell = load @cell
    %mine = new 16384
    %seen = new 16384
    %last = const 0
    %i = const 0
    %n = const 0
loop:
    %x = getref %cell, 65535
    %none = eq %x, nil
    br %none, next, look
look:
    %v = get %x, 0
    %old = eq %v, %last
    br %old, next, take
take:
    %last = copy %v
    %box = new 1
    setref %box, 0, %x
    setref %mine, %i, %box
    set %seen, %i, %v
    %i = add %i, 1
    %i = and %i, 16383
    br %i, next, check
check:
    %k = const 0
check1:
    %b = getref %mine, %k
    %y = getref %b, 0
    %w = get %y, 0
    %was = get %seen, %k
    %same = eq %w, %was
    assert %same, "an object the program holds was freed and reused"
    %k = add %k, 1
    %km = lt %k, 16384
    br %km, check1, next
next:
    %n = add %n, 1
    %turn = and %n, 255
    br %turn, poll, give
give:
    yield
poll:
    %st = load.atomic @stop
    br %st, out, loop
out:
    send %done, 1
    ret
}

func @main() {
    %cell = new 65536
    store @cell, %cell
    %done = chan 0
    spawn @producer(%done)
    spawn @eraser(%done)
    spawn @taker(%done)
    %n = load @cycles
    %i = const 0
cycles:
    gc
    %i = add %i, 1
    %more = lt %i, %n
    br %more, cycles, stop
stop:
    store.atomic @stop, 1
    %w = const 0
wait:
    %r = recv %done
    %w = add %w, 1
    %wm = lt %w, 3
    br %wm, wait, report
report:
    print "checked"
    ret
}
