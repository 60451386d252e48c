; error: 4:20: expected '->' and a label, found 'done'
func @main() {
    %c = chan 1
    select recv %c done
done:
    ret
}
