; The collector against call-free spinners and a channel pipeline at
; once: a producer sends list lengths through an unbuffered channel to a
; consumer that builds and checks a list of each length, while two
; spinners of one function loop without a call and @main collects in a
; loop. Every collection
; stops the world across goroutines that are parked on the channel,
; running runtime calls, and spinning.
; flags: --timeout 20
; expect-status: 0
; expect-stdout: consumed 60 lists, 1830 nodes checked
; coop-hangs: the spinners' loops have no call, and the collector's stop of the world needs them stopped
global @stop: i64 = 0
global @last: ref

func @spin() {
    %x = const 1
loop:
    %x = mul %x, 3
    %s = load.atomic @stop
    br %s, out, loop
out:
    ret
}

; A list of %n nodes holding %n - 1, ..., 0.
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

; Checks a list of %n nodes node by node; returns its length.
func @check(%l: ref, %n: i64) -> i64 {
    %count = const 0
    %want = sub %n, 1
    %nil = copy nil
top:
    %end = eq %l, %nil
    br %end, out, body
body:
    %v = get %l, 0
    %ok = eq %v, %want
    assert %ok, "a list node changed"
    %want = sub %want, 1
    %count = add %count, 1
    %l = getref %l, 1
    jmp top
out:
    %full = eq %count, %n
    assert %full, "a list lost nodes"
    ret %count
}

func @producer(%c: chan) {
    %i = const 1
again:
    send %c, %i
    %i = add %i, 1
    %more = le %i, 60
    br %more, again, done
done:
    close %c
    ret
}

func @consumer(%c: chan, %done: chan) {
    %lists = const 0
    %nodes = const 0
again:
    %n = recv %c
    %end = eq %n, 0
    br %end, out, work
work:
    %l = call @build(%n)
    store @last, %l
    %k = call @check(%l, %n)
    %nodes = add %nodes, %k
    %lists = add %lists, 1
    jmp again
out:
    print "consumed {} lists, {} nodes checked", %lists, %nodes
    send %done, 1
    ret
}

func @main() {
    spawn @spin()
    spawn @spin()
    %c = chan 0
    %done = chan 0
    spawn @producer(%c)
    spawn @consumer(%c, %done)
wait:
    gc
    select recv %done -> out, default -> wait
out:
    store.atomic @stop, 1
    ret
}
