; Channels: a producer on an unbuffered channel, a second on a buffered
; one, and a consumer whose select takes from both; the result comes back
; on a third channel, which is then closed. The sum does not depend on the
; order the select picks.
;
;   preempt stress examples/stress/channels.pir
;
; What it prints, for the tests and `preempt soak`:
; expect-status: 0
; expect-stdout: sum 2425, then 0 from a closed channel

global @rounds: i64 = 25

func @produce(%c: chan, %n: i64, %step: i64) {
    %i = const 0
loop:
    %v = mul %i, %step
    send %c, %v
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, out
out:
    ret
}

func @consume(%a: chan, %b: chan, %want: i64, %result: chan) {
    %sum = const 0
    %seen = const 0
loop:
    select recv %a into %x -> from_a, recv %b into %y -> from_b
from_a:
    %sum = add %sum, %x
    %seen = add %seen, 1
    jmp check
from_b:
    %sum = add %sum, %y
    %sum = add %sum, 1
    %seen = add %seen, 1
    jmp check
check:
    %more = lt %seen, %want
    br %more, loop, out
out:
    send %result, %sum
    ret
}

func @main() {
    %n = load @rounds
    %a = chan 0
    %b = chan 4
    %result = chan 1
    spawn @produce(%a, %n, 3)
    spawn @produce(%b, %n, 5)
    %want = mul %n, 2
    spawn @consume(%a, %b, %want, %result)
    %sum = recv %result
    close %result
    %after = recv %result
    print "sum {}, then {} from a closed channel", %sum, %after
    ret
}
