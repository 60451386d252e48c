; main receives on a channel no one sends on.
; expect-status: 1
; expect-stderr: fatal error: all goroutines are asleep - deadlock!
; expect-stderr: goroutine 1 [chan receive]:

func @main() {
    %c = chan 0
    %v = recv %c
    ret
}
