; setgcpercent: 8 MiB stay live in 128 objects of 4096 slots while 4 MiB
; of 1 KiB objects come and go, first at GOGC=1 (a cycle every ~80 KiB),
; then with automatic cycles off (setgcpercent -1), then back at 100. The
; live objects must come through every cycle intact. (tests/tests/gc.rs
; compares the number of cycles --stats counts at each setting.)
; expect-status: 0
; expect-stdout: live 128 sum 8128
global @keep: ref

func @garbage(%n: i64) {
    %i = const 0
loop:
    %g = new 63
    set %g, 62, %i
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, done
done:
    ret
}

func @main() {
    setgcpercent 1
    %keep = new 128
    store @keep, %keep
    %i = const 0
fill:
    %o = new 4096
    set %o, 0, %i
    set %o, 4095, %i
    setref %keep, %i, %o
    %i = add %i, 1
    %more = lt %i, 128
    br %more, fill, churn
churn:
    call @garbage(4096)
    setgcpercent -1
    call @garbage(4096)
    setgcpercent 100
    %k = load @keep
    %sum = const 0
    %n = const 0
    %j = const 0
check:
    %p = getref %k, %j
    %a = get %p, 0
    %b = get %p, 4095
    %same = eq %a, %b
    assert %same, "a live object changed"
    %ok = eq %a, %j
    assert %ok, "a live object moved"
    %sum = add %sum, %a
    %n = add %n, 1
    %j = add %j, 1
    %jm = lt %j, 128
    br %jm, check, report
report:
    print "live {} sum {}", %n, %sum
    ret
}
