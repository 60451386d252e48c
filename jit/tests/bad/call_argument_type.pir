; error: 6:5: argument 2 of @f must be ref, found the integer 7
func @f(%a: i64, %b: ref) {
    ret
}
func @main() {
    call @f(1, 7)
    ret
}
