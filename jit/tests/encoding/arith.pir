; Arithmetic, comparisons and moves, with register, immediate (32- and
; 64-bit), and spilled operands. Opt 0 keeps every instruction.
set opt = 0

func @arith(%a: i64, %b: i64) -> i64 {
    %c = const 7
    %big = const 0x1234_5678_9abc
    %neg = const -1
    %d = add %a, %b
    %d = add %d, 5
    %d = add %d, %big
    %e = sub %a, %d
    %e = sub %e, 3
    %f = mul %e, %b
    %f = mul %f, 9
    %g = and %f, 255
    %g = or %g, %a
    %g = xor %g, %c
    %h = neg %g
    %h = not %h
    %i = copy %h
    %j = eq %i, %a
    %k = lt %i, 10
    %l = ge %big, %i
    %m = ne %j, %k
    %m = add %m, %l
    %m = add %m, %neg
    ret %m
}

func @main() {
    %r = call @arith(1, 2)
    print "{}", %r
    ret
}
