; error: 4:5: print format has 2 placeholders '{}' but 1 operand is given
func @main() {
    %x = const 1
    print "{} and {}", %x
    ret
}
