; error: 3:10: undefined function @missing
func @main() {
    call @missing()
    ret
}
