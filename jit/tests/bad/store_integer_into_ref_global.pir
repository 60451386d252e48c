; error: 4:5: the value stored to @root (a ref global) must be ref, found the integer 0
global @root: ref
func @main() {
    store @root, 0
    ret
}
