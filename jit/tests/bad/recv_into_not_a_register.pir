; error: 4:25: expected a register after 'into', found integer 5
func @main() {
    %c = chan 1
    select recv %c into 5 -> done
done:
    ret
}
