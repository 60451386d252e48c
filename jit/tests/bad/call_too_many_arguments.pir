; error: 6:5: call of @f: it takes 1 argument but 2 were given
func @f(%a: i64) {
    ret
}
func @main() {
    call @f(1, 2)
    ret
}
