; error: 4:5: register %x is defined here as ref, but its first definition at 3:5 made it i64
func @main() {
    %x = const 1
    %x = new 2
    ret
}
