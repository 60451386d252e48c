; error: 3:18: expected end of line, found '%y'
func @main() {
    %x = const 1 %y = const 2
    ret
}
