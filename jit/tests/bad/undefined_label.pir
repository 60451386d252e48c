; error: 3:9: undefined label 'nowhere'
func @main() {
    jmp nowhere
}
