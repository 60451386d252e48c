; error: 4:16: 'const' takes an integer literal, found '%a'
func @main() {
    %a = const 1
    %b = const %a
    ret
}
