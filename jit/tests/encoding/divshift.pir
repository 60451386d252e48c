; Division and remainder (register divisor with the zero and -1 checks,
; constant divisors, the constant -1 and 0 special cases) and shifts by a
; register (cl) and by constants (masked to 6 bits).
set opt = 0

func @divshift(%a: i64, %b: i64) -> i64 {
    %q = div %a, %b
    %r = rem %a, %b
    %s = div %a, 7
    %t = rem %a, -1
    %u = div %a, -1
    %v = shl %q, %b
    %w = shr %r, 3
    %x = sar %s, 64
    %y = sar %t, -1
    %z = add %v, %w
    %z = add %z, %x
    %z = add %z, %y
    %z = add %z, %u
    ret %z
}

func @zero(%a: i64) -> i64 {
    %q = div %a, 0
    ret %q
}

func @main() {
    %r = call @divshift(100, 3)
    print "{}", %r
    ret
}
