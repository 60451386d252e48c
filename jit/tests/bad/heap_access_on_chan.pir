; error: 4:5: operand 1 of 'get' must be ref, found %c of type chan
func @main() {
    %c = chan 0
    %x = get %c, 0
    ret
}
