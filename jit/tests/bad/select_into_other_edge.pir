; error: 10:5: register %v may be used before it is defined
func @main() {
    %c = chan 1
    %d = chan 1
    select recv %c into %v -> got, recv %d -> other
got:
    print "{}", %v
    ret
other:
    print "{}", %v
    ret
}
