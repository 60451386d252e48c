; error: 4:11: @g is a global, not a function
global @g: i64
func @main() {
    spawn @g()
    ret
}
