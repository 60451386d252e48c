; A loop that keeps sixteen values live (more than the allocatable
; registers, so some are spilled), with shifts and a division (the
; backends' scratch registers), compares feeding arithmetic and a fused
; compare-and-branch: a preemption anywhere must give back every register
; and the flags. The loop runs 4 * `@rounds` times (more for the storm).
;
;   preempt stress examples/stress/live-values.pir -O0
;
; What it prints, for the tests and `preempt soak`:
; expect-status: 0
; expect-stdout: 20 4114254409132231464 938499192904441901 -6852113129170493752 3020131314816423017 19791209299968 22618524914249 -9211255657046618218
; expect-stdout: 6600795343709484834 -7416336967135559862 5299895644630715859 662486955578839482 662486955578839964 7904218851179096411 -7315411325193706630 -5642475797751766805 400133383623680775

global @rounds: i64 = 5

func @main() {
    %a0 = const 1
    %a1 = const 8
    %a2 = const 15
    %a3 = const 22
    %a4 = const 29
    %a5 = const 36
    %a6 = const 43
    %a7 = const 50
    %a8 = const 57
    %a9 = const 64
    %a10 = const 71
    %a11 = const 78
    %a12 = const 85
    %a13 = const 92
    %a14 = const 99
    %a15 = const 106
    %n = const 0
loop:
    %a0 = add %a0, %a15
    %a1 = xor %a1, %a0
    %a2 = sub %a2, %a1
    %t = lt %a2, %a1
    %a2 = add %a2, %t
    %a3 = mul %a3, %a2
    %a3 = or %a3, 1
    %a4 = and %a3, 31
    %a4 = shl %a4, %a3
    %a5 = div %a4, 7
    %a5 = add %a5, %a4
    %a6 = add %a6, %a5
    %a7 = xor %a7, %a6
    %a8 = sub %a8, %a7
    %u = ge %a8, %a7
    %a8 = add %a8, %u
    %a9 = mul %a9, %a8
    %a9 = or %a9, 1
    %a10 = sar %a9, 3
    %a11 = rem %a10, 1000
    %a11 = add %a11, %a10
    %a12 = add %a12, %a11
    %a13 = xor %a13, %a12
    %a14 = sub %a14, %a13
    %v = ne %a14, %a13
    %a14 = add %a14, %v
    %a15 = shr %a14, 5
    %n = add %n, 1
    %rounds = load @rounds     ; a plain load: -O1 hoists it out of the loop
    %limit = shl %rounds, 2
    %c = lt %n, %limit
    br %c, loop, out
out:
    print "{} {} {} {} {} {} {} {}", %n, %a0, %a1, %a2, %a3, %a4, %a5, %a6
    print "{} {} {} {} {} {} {} {} {}", %a7, %a8, %a9, %a10, %a11, %a12, %a13, %a14, %a15
    ret
}
