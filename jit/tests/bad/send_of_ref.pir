; error: 5:5: operand 2 of 'send' must be i64, found %o of type ref
func @main() {
    %c = chan 1
    %o = new 1
    send %c, %o
    ret
}
