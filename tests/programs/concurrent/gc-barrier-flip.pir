; The write barrier under fire. Sixteen holder objects each lead a chain
; of 5000 small nodes, so the marker scans the holders at sixteen times
; spread over its mark phase. Sixty-four small objects keep moving from
; holder to holder (one move per call of @flip) while @main runs 20
; collections. An object that, each time the marker scans a holder, sits
; in another one is found only because each move's deletion went through
; the barrier; with the barrier's shading switched off (tests/tests/gc.rs
; injects that), --gc-verify reports such objects. --gc-interleave makes
; the marker wait for a store 64 times a phase, so that moves land
; between the holder scans in every cycle, on a loaded machine too.
; expect-status: 0
; expect-stdout: objects 64 sum 2016 chains 3199960000
global @holders: ref
global @stop: i64

; holders: 16 objects of 65 slots; slot j < 64 may hold object j, slot 64
; leads the chain (nodes: payload, next).
func @build() {
    %hs = new 16
    store @holders, %hs
    %h = const 0
holder:
    %hd = new 65
    setref %hs, %h, %hd
    %chain = copy nil
    %i = const 0
node:
    %n = new 2
    %v = mul %h, 5000
    %v = add %v, %i
    set %n, 0, %v
    setref %n, 1, %chain
    %chain = copy %n
    %i = add %i, 1
    %more = lt %i, 5000
    br %more, node, linked
linked:
    setref %hd, 64, %chain
    %h = add %h, 1
    %hm = lt %h, 16
    br %hm, holder, objects
objects:
    %j = const 0
object:
    %x = new 1
    set %x, 0, %j
    %at = and %j, 15
    %hd2 = getref %hs, %at
    setref %hd2, %j, %x
    %j = add %j, 1
    %jm = lt %j, 64
    br %jm, object, out
out:
    ret
}

; Moves object %j from the holder that has it to the one five further on.
func @flip(%j: i64) {
    %hs = load @holders
    %h = const 0
find:
    %hd = getref %hs, %h
    %x = getref %hd, %j
    %here = ne %x, nil
    br %here, move, next
next:
    %h = add %h, 1
    jmp find
move:
    %to = add %h, 5
    %to = and %to, 15
    %dst = getref %hs, %to
    setref %dst, %j, %x
    setref %hd, %j, nil
    ret
}

func @flipper(%done: chan) {
    %j = const 0
loop:
    call @flip(%j)
    %j = add %j, 1
    %j = and %j, 63
    %s = load.atomic @stop
    br %s, out, loop
out:
    send %done, 1
    ret
}

func @main() {
    call @build()
    %done = chan 0
    spawn @flipper(%done)
    %i = const 0
cycles:
    gc
    %i = add %i, 1
    %more = lt %i, 20
    br %more, cycles, check
check:
    store.atomic @stop, 1
    %w = recv %done
    ; Every object is in exactly one holder, intact; every chain is whole.
    %hs = load @holders
    %n = const 0
    %sum = const 0
    %t = const 0
    %h = const 0
holder:
    %hd = getref %hs, %h
    %j = const 0
slot:
    %x = getref %hd, %j
    %none = eq %x, nil
    br %none, empty, found
found:
    %v = get %x, 0
    %ok = eq %v, %j
    assert %ok, "an object's payload changed"
    %n = add %n, 1
    %sum = add %sum, %v
empty:
    %j = add %j, 1
    %jm = lt %j, 64
    br %jm, slot, chain
chain:
    %c = getref %hd, 64
walk:
    %v2 = get %c, 0
    %t = add %t, %v2
    %c = getref %c, 1
    %end = eq %c, nil
    br %end, walked, walk
walked:
    %h = add %h, 1
    %hm = lt %h, 16
    br %hm, holder, report
report:
    print "objects {} sum {} chains {}", %n, %sum, %t
    ret
}
