; error: 3:12: invalid UTF-8 (byte 0xff)
func @main() {
    print "ÿ"
    ret
}
