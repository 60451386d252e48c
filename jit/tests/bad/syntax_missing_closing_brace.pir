; error: 5:1: missing '}' to close function @main (opened at 2:6)
func @main() {
    ret

func @other() {
    ret
}
