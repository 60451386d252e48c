; error: 4:5: operand 1 of 'lt' must be i64, found %p of type ref
func @main() {
    %p = new 1
    %e = lt %p, %p
    ret
}
