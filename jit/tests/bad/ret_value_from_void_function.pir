; error: 3:5: @main returns nothing, but 'ret' gives a value
func @main() {
    ret 0
}
