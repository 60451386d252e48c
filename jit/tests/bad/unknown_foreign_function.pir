; error: 3:11: unknown foreign function 'usleep'
func @main() {
    ccall usleep, 10
    ret
}
