; expect-status: 1
; expect-stderr: panic: close of closed channel
func @main() {
    %c = chan 0
    close %c
    close %c
    ret
}
