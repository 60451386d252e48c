; error: 11:5: register %x may be used before it is defined
func @main() {
    %c = const 1
    br %c, yes, no
yes:
    %x = const 10
    jmp join
no:
    jmp join
join:
    print "{}", %x
    ret
}
