; error: 4:5: operand 1 of 'add.atomic' must be i64, found nil (a ref)
global @n: i64
func @main() {
    %x = add.atomic @n, nil
    ret
}
