; error: 3:16: integer literal 9223372036854775808 does not fit in i64
func @main() {
    %x = const 9223372036854775808
    ret
}
