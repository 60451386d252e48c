; error: 2:13: unknown type 'i32'
func @f(%a: i32) {
    ret
}
