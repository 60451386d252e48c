; Sum of 0 .. n-1, the tight loop the benchmarks time.
;
;   preempt run examples/sum.pir
;   preempt disasm examples/sum.pir
;
; What it prints, for the tests and `preempt soak`:
; expect-status: 0
; expect-stdout: sum: 4999999950000000

func @sum(%n: i64) -> i64 {
    %s = const 0
    %i = const 0
    br 1, loop, done
loop:
    %s = add %s, %i
    %i = add %i, 1
    %c = lt %i, %n
    br %c, loop, done
done:
    ret %s
}

func @main() {
    %s = call @sum(100_000_000)
    print "sum: {}", %s
    ret
}
