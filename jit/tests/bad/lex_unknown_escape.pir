; error: 3:14: unknown escape '\q'
func @main() {
    print "a \q b"
    ret
}
