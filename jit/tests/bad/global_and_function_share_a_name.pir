; error: 3:6: @x is already defined as a global at 2:8
global @x: i64
func @x() {
    ret
}
