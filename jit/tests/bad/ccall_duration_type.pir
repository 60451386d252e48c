; error: 4:5: the duration of 'ccall spin' (microseconds) must be i64, found %c of type chan
func @main() {
    %c = chan 0
    ccall spin, %c
    ret
}
