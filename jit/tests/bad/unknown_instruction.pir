; error: 3:10: unknown instruction 'mov'
func @main() {
    %x = mov 1
    ret
}
