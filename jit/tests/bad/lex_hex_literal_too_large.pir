; error: 2:18: integer literal 0x8000_0000_0000_0000 does not fit
global @g: i64 = 0x8000_0000_0000_0000
func @main() {
    ret
}
