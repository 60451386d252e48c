; error: 5:5: operands of 'eq' must have the same type, found %p of type ref and %c of type chan
func @main() {
    %p = new 1
    %c = chan 0
    %e = eq %p, %c
    ret
}
