; error: 3:15: undefined global @counter
func @main() {
    %x = load @counter
    ret
}
