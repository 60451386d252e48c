; error: 4:1: missing terminator: control reaches the closing '}' of @f
func @f() {
    ; nothing here
}
func @main() {
    ret
}
