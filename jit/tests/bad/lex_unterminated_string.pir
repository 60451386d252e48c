; error: 3:11: unterminated string literal
func @main() {
    print "no end
    ret
}
