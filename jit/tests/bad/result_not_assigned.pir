; error: 3:5: 'add' produces a value: write '%x = add ...'
func @main() {
    add 1, 2
    ret
}
