; error: 4:5: 'load.atomic' works on i64 globals only, but @root is a ref
global @root: ref
func @main() {
    %x = load.atomic @root
    ret
}
