; error: 3:11: a label stands on its own line
func @main() {
    loop: yield
    ret
}
