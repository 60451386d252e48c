; error: 5:6: duplicate function @f (first defined at 2:6)
func @f() {
    ret
}
func @f() {
    ret
}
func @main() {
    ret
}
