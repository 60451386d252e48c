; error: 4:5: print format has 0 placeholders '{}' but 2 operands are given
func @main() {
    %x = const 1
    print "x", %x, %x
    ret
}
