; error: 3:5: undefined register %y
func @main() {
    %x = add %y, 1
    ret
}
