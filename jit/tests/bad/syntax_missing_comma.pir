; error: 3:16: expected ',', found integer 2
func @main() {
    %x = add 1 2
    ret
}
