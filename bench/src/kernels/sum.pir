; sum: s += i for i in 0 .. n. The tight loop every mechanism is timed on.
func @kernel(%n: i64) -> i64 {
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
