; error: 4:5: the value returned by @f must be ref, found %n of type i64
func @f() -> ref {
    %n = const 0
    ret %n
}
func @main() {
    ret
}
