; error: 3:5: 'yield' produces no value and cannot be assigned
func @main() {
    %x = yield
    ret
}
