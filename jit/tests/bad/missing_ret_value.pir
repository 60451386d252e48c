; error: 4:5: missing return value: @f returns i64, write 'ret VALUE'
func @f(%a: i64) -> i64 {
    %b = add %a, 1
    ret
}
func @main() {
    ret
}
