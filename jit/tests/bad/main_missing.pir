; error: 1:1: program has no function @main
func @start() {
    ret
}
