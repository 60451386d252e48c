; error: 6:5: @f returns nothing, so its result cannot be assigned to %x
func @f() {
    ret
}
func @main() {
    %x = call @f()
    print "{}", %x
    ret
}
