; spawn passes i64, ref and chan arguments.
; expect-status: 0
; expect-stdout: got 5 and 9
func @w(%n: i64, %o: ref, %c: chan) {
    %v = get %o, 0
    %s = add %n, %v
    send %c, %s
    ret
}
func @main() {
    %o = new 1
    set %o, 0, 4
    %c = chan 0
    spawn @w(5, %o, %c)
    %r = recv %c
    print "got 5 and {}", %r
    ret
}
