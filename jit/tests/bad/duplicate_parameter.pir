; error: 2:18: duplicate parameter %a
func @f(%a: i64, %a: ref) {
    ret
}
