; error: 4:12: the value of a 'send' arm must be i64, found nil (a ref)
func @main() {
    %c = chan 1
    select send %c, nil -> done, default -> done
done:
    ret
}
