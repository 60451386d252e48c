; Calls, runtime operations, select, assert, panic, goexit, and register
; pressure: more live values than allocatable registers.
set opt = 0

func @pressure(%a: i64) -> i64 {
    %v1 = add %a, 1
    %v2 = add %a, 2
    %v3 = add %a, 3
    %v4 = add %a, 4
    %v5 = add %a, 5
    %v6 = add %a, 6
    %v7 = add %a, 7
    %v8 = add %a, 8
    %v9 = add %a, 9
    %v10 = add %a, 10
    %v11 = add %a, 11
    %s = add %v1, %v2
    %s = add %s, %v3
    %s = add %s, %v4
    %s = add %s, %v5
    %s = add %s, %v6
    %s = add %s, %v7
    %s = add %s, %v8
    %s = add %s, %v9
    %s = add %s, %v10
    %s = add %s, %v11
    ret %s
}

func @runtime(%c: chan) {
    yield
    %t = now
    %p = procs
    sleep 10
    send %c, %t
    %x = recv %c
    select recv %c into %y -> got, send %c, 1 -> sent, default -> none
got:
    print "got {}", %y
    jmp none
sent:
    assert %p, "procs is never zero"
    close %c
none:
    ccall spin, 5
    ret
}

func @stop(%how: i64) {
    br %how, boom, quit
boom:
    panic "boom"
quit:
    goexit
}

func @main() {
    %c = chan 1
    %s = call @pressure(1)
    call @runtime(%c)
    call @stop(0)
    ret
}
