; error: 4:5: the condition of 'assert' must be i64, found %c of type chan
func @main() {
    %c = chan 0
    assert %c, "never"
    ret
}
