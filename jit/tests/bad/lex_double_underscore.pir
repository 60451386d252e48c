; error: 3:16: '_' in an integer literal must stand between digits
func @main() {
    %x = const 1__000
    ret
}
