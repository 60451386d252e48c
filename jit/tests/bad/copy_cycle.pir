; error: 5:5: cannot infer the type of register %a: its first definition copies %b
func @main() {
    ret
    ; unreachable, so only types matter here
    %a = copy %b
    %b = copy %a
    ret
}
