; error: 5:5: the value stored to @g (an i64 global) must be i64, found %o of type ref
global @g: i64
func @main() {
    %o = new 1
    store @g, %o
    ret
}
