; error: 3:5: operand 1 of 'new' must be i64, found nil (a ref)
func @main() {
    %o = new nil
    ret
}
