; error: 4:5: operand 1 of 'recv' must be chan, found %x of type i64
func @main() {
    %x = const 1
    %v = recv %x
    ret
}
