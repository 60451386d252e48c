; Arithmetic, logic and comparisons, and every literal form.
func @main() {
    %a = const 1_000_000
    %b = const 0xff
    %c = const 0XDEAD_beef
    %min = const -0x8000_0000_0000_0000
    %min2 = const -9223372036854775808
    %max = const 9223372036854775807
    %neg = const -42
    %zero = const 0
    %hexneg = const -0x1
    %t = add %a, %b
    %t = sub %t, 1
    %t = mul %t, -3
    %t = div %t, 7
    %t = rem %t, 5
    %t = and %t, 0x0f
    %t = or %t, %c
    %t = xor %t, -1
    %t = shl %t, 63
    %t = shr %t, -1
    %t = sar %min, 1
    %t = neg %t
    %t = not %t
    %e = eq %a, %b
    %e = ne %a, 5
    %e = lt %min, %max
    %e = le %neg, %zero
    %e = gt %min2, %hexneg
    %e = ge 1, 2
    %k = copy 7
    print "{} {} {}", %t, %e, %k
    ret
}
