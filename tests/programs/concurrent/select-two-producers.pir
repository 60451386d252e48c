; A select drains a buffered and an unbuffered channel fed by two goroutines.
; expect-status: 0
; expect-stdout: sa=499500 sb=1000499500

func @producer(%c: chan, %n: i64, %base: i64) {
    %i = const 0
loop:
    %v = add %base, %i
    send %c, %v
    %i = add %i, 1
    %k = lt %i, %n
    br %k, loop, done
done:
    close %c
    ret
}
func @main() {
    %a = chan 3
    %b = chan 0
    spawn @producer(%a, 1000, 0)
    spawn @producer(%b, 1000, 1000000)
    %sa = const 0
    %sb = const 0
    %open = const 2
    %ac = const 0
    %bc = const 0
loop:
    select recv %a into %x -> gota, recv %b into %y -> gotb
gota:
    %isz = eq %ac, 1
    br %isz, loop, ga2
ga2:
    %sa = add %sa, %x
    %cnt = eq %x, 999
    br %cnt, aend, loop
aend:
    %ac = const 1
    %open = sub %open, 1
    jmp check
gotb:
    %isz2 = eq %bc, 1
    br %isz2, loop, gb2
gb2:
    %sb = add %sb, %y
    %cnt2 = eq %y, 1000999
    br %cnt2, bend, loop
bend:
    %bc = const 1
    %open = sub %open, 1
check:
    %more = gt %open, 0
    br %more, loop, done
done:
    print "sa={} sb={}", %sa, %sb
    ret
}
