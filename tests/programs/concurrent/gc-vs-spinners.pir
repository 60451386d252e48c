; The shape that hung the stop of the world under `patch` and `trap
; --trap-arm mprotect`: two goroutines in call-free loops running the
; same function (so that one function's back-edges are patched for both,
; and the global poll page is protected for both), while @main builds
; linked lists, keeps them live in registers and in a global, and calls
; the collector in a loop, each collection a stop of the world at mark
; start and mark end that must stop both spinners. The checksum proves
; every list survived. A stop request lost on the way (its arming undone
; by another's stop) leaves the stop of the world waiting forever.
; flags: --timeout 20
; expect-status: 0
; expect-stdout: checksum 19900 + 79800 = 99700
; coop-hangs: the spinners' loops have no call, and the collector's stop of the world needs them stopped
global @stop: i64 = 0
global @keep: ref

func @spin() {
    %x = const 1
loop:
    %x = add %x, 1
    %s = load.atomic @stop
    br %s, out, loop
out:
    ret
}

; A list of %n nodes holding %n - 1, ..., 1, 0.
func @build(%n: i64) -> ref {
    %head = copy nil
    %i = const 0
again:
    %node = new 2
    set %node, 0, %i
    setref %node, 1, %head
    %head = copy %node
    %i = add %i, 1
    %more = lt %i, %n
    br %more, again, done
done:
    ret %head
}

func @sum(%l: ref) -> i64 {
    %s = const 0
    %nil = copy nil
top:
    %end = eq %l, %nil
    br %end, out, body
body:
    %v = get %l, 0
    %s = add %s, %v
    %l = getref %l, 1
    jmp top
out:
    ret %s
}

func @main() {
    spawn @spin()
    spawn @spin()
    %a = call @build(200)
    %b = call @build(400)
    store @keep, %b
    %i = const 0
again:
    gc
    %junk = call @build(50)
    %i = add %i, 1
    %more = lt %i, 40
    br %more, again, done
done:
    %x = call @sum(%a)
    %k = load @keep
    %y = call @sum(%k)
    %t = add %x, %y
    print "checksum {} + {} = {}", %x, %y, %t
    store.atomic @stop, 1
    ret
}
