; error: 6:11: @f is a function, not a global
func @f() {
    ret
}
func @main() {
    store @f, 1
    ret
}
