; error: 2:6: @main must take no parameters, but it takes 1 parameter
func @main(%argc: i64) {
    ret
}
