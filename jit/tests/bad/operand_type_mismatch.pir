; error: 4:5: operand 1 of 'add' must be i64, found %p of type ref
func @main() {
    %p = new 1
    %x = add %p, 1
    ret
}
