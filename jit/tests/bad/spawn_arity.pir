; error: 6:5: spawn of @worker: it takes 1 argument but 0 were given
func @worker(%c: chan) {
    ret
}
func @main() {
    spawn @worker()
    ret
}
