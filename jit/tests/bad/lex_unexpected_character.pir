; error: 3:16: unexpected character '$'
func @main() {
    %x = const $5
    ret
}
