; error: 3:5: operand 2 of 'mul' must be i64, found nil (a ref)
func @main() {
    %x = mul 2, nil
    ret
}
