; error: 4:12: unknown select arm 'timeout'
func @main() {
    %c = chan 1
    select timeout -> done
done:
    ret
}
