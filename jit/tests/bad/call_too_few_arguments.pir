; error: 6:5: call of @f: it takes 2 arguments but 0 were given
func @f(%a: i64, %b: ref) {
    ret
}
func @main() {
    call @f()
    ret
}
