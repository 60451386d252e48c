; error: 2:6: @main must return nothing, but it is declared '-> i64'
func @main() -> i64 {
    ret 0
}
