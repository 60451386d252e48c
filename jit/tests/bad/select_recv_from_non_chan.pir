; error: 4:12: the channel of a 'recv' arm must be chan, found %o of type ref
func @main() {
    %o = new 1
    select recv %o -> done
done:
    ret
}
