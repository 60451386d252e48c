; error: 4:17: expected an operand (register, integer or nil), found '@g'
global @g: i64
func @main() {
    %x = add 1, @g
    ret
}
