; error: 5:12: register %r is defined here as i64, but its first definition at 3:5 made it ref
func @main() {
    %r = copy nil
    %c = chan 1
    select recv %c into %r -> done
done:
    ret
}
