; error: 3:16: invalid character 'a' in integer literal
func @main() {
    %x = const 12ab
    ret
}
