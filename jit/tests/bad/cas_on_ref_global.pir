; error: 4:5: 'cas.atomic' works on i64 globals only, but @root is a ref
global @root: ref
func @main() {
    %ok = cas.atomic @root, 0, 1
    ret
}
