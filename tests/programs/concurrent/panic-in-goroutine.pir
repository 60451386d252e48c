; A run-time error in any goroutine ends the program with that
; goroutine's traceback.
; expect-status: 1
; expect-stderr: panic: runtime error: index out of range [3] with length 2
; expect-stderr: goroutine 2 [running]:
; expect-stderr: @bad in block entry
func @bad(%o: ref) {
    %v = get %o, 3
    ret
}
func @main() {
    %o = new 2
    spawn @bad(%o)
    sleep 100000
    print "unreachable"
    ret
}
