; nested: s += i * j + (i ^ j) over an n x 1000 grid.
func @kernel(%n: i64) -> i64 {
    %s = const 0
    %i = const 0
outer:
    %j = const 0
inner:
    %p = mul %i, %j
    %x = xor %i, %j
    %s = add %s, %p
    %s = add %s, %x
    %j = add %j, 1
    %cj = lt %j, 1000
    br %cj, inner, next
next:
    %i = add %i, 1
    %ci = lt %i, %n
    br %ci, outer, done
done:
    ret %s
}
