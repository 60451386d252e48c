; error: 5:1: duplicate label 'again' (first at 3:1)
func @main() {
again:
    yield
again:
    ret
}
