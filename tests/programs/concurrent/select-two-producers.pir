; A select drains a buffered and an unbuffered channel fed by two goroutines
; until one is closed and drained; then the other is drained alone (PIR has
; no nil channel to switch an arm off, so the select loop ends instead of
; spinning on the closed channel).
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

; Receives from %c until it yields the closing 0 after %last, adding all.
func @drain(%c: chan, %last: i64, %s: i64) -> i64 {
loop:
    %v = recv %c
    %s = add %s, %v
    %end = eq %v, %last
    br %end, done, loop
done:
    ret %s
}

func @main() {
    %a = chan 3
    %b = chan 0
    spawn @producer(%a, 1000, 0)
    spawn @producer(%b, 1000, 1000000)
    %sa = const 0
    %sb = const 0
loop:
    select recv %a into %x -> gota, recv %b into %y -> gotb
gota:
    %sa = add %sa, %x
    %enda = eq %x, 999
    br %enda, rest_b, loop
gotb:
    %sb = add %sb, %y
    %endb = eq %y, 1000999
    br %endb, rest_a, loop
rest_b:
    %sb = call @drain(%b, 1000999, %sb)
    jmp done
rest_a:
    %sa = call @drain(%a, 999, %sa)
done:
    print "sa={} sb={}", %sa, %sb
    ret
}
