; error: 3:16: 'ccall sleep' takes a duration in microseconds
func @main() {
    ccall sleep
    ret
}
