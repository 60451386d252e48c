; Calls: a recursive function, a function of four arguments, and a loop
; that calls in its body, so that instruction boundaries fall in many
; prologues, epilogues and stack checks. `@rounds` repeats the work for
; the signal storm; the stepping harness covers the first rounds.
;
;   preempt stress examples/stress/calls.pir
;   preempt stress examples/stress/calls.pir --request-lead 3
;
; What it prints, for the tests and `preempt soak`:
; expect-status: 0
; expect-stdout: fib(5) = 5, total = 10062

global @rounds: i64 = 3

func @fib(%n: i64) -> i64 {
    %small = lt %n, 2
    br %small, base, rec
base:
    ret %n
rec:
    %a = sub %n, 1
    %x = call @fib(%a)
    %b = sub %n, 2
    %y = call @fib(%b)
    %r = add %x, %y
    ret %r
}

func @mix(%a: i64, %b: i64, %c: i64, %d: i64) -> i64 {
    %t = mul %a, %b
    %u = sub %c, %d
    %v = xor %t, %u
    %w = add %v, %a
    ret %w
}

func @main() {
    %rounds = load @rounds
    %total = const 0
    %round = const 0
outer:
    %f = call @fib(5)
    %acc = add %round, 1
    %i = const 0
loop:
    %acc = call @mix(%acc, %i, 7, %f)
    %acc = and %acc, 0xffff
    %i = add %i, 1
    %c = lt %i, 6
    br %c, loop, next
next:
    %total = add %total, %acc
    %round = add %round, 1
    %more = lt %round, %rounds
    br %more, outer, done
done:
    print "fib(5) = {}, total = {}", %f, %total
    ret
}
