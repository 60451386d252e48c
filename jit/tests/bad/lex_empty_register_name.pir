; error: 3:5: expected a register name after '%'
func @main() {
    % = const 1
    ret
}
