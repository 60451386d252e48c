; error: 4:5: operand 3 of 'setref' must be ref, found the integer 5
func @main() {
    %o = new 1
    setref %o, 0, 5
    ret
}
