; error: 3:17: integer literal -9223372036854775809 does not fit in i64
func @main() {
    %x = add 1, -9223372036854775809
    ret
}
