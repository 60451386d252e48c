; error: 6:1: missing terminator: control reaches the closing '}' of @main
func @main() {
    %x = const 1
done:
    print "{}", %x
}
