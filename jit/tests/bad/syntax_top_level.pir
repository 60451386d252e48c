; error: 2:1: expected 'set', 'global' or 'func', found 'function'
function @main() {
    ret
}
