; error: 3:26: select has more than one 'default' arm (the first is at 3:12)
func @main() {
    select default -> a, default -> a
a:
    ret
}
