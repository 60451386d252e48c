; error: 3:5: register %p is defined here as i64, but it is a parameter of type ref
func @f(%p: ref) {
    %p = len %p
    ret
}
func @main() {
    ret
}
