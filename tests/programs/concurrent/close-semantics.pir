; Receiving from a closed, drained channel gives 0; buffered values come
; first; sending on a closed channel panics in the sending goroutine.
; expect-status: 1
; expect-stdout: 7 8 0 0
; expect-stderr: panic: send on closed channel
; expect-stderr: goroutine 1 [running]:
func @main() {
    %c = chan 2
    send %c, 7
    send %c, 8
    close %c
    %a = recv %c
    %b = recv %c
    %z = recv %c
    %y = recv %c
    print "{} {} {} {}", %a, %b, %z, %y
    send %c, 1
    ret
}
