; error: 4:5: the condition of 'br' must be i64, found %p of type ref
func @main() {
    %p = copy nil
    br %p, a, a
a:
    ret
}
