; empty: a loop that only counts to n. Its back-edge is the whole loop, so
; whatever a mechanism adds to back-edges shows here at its largest.
func @kernel(%n: i64) -> i64 {
    %i = const 0
    br 1, loop, done
loop:
    %i = add %i, 1
    %c = lt %i, %n
    br %c, loop, done
done:
    ret %i
}
