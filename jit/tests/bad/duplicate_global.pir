; error: 3:8: duplicate global @g (first defined at 2:8)
global @g: i64
global @g: ref
func @main() {
    ret
}
