; main calls goexit; the worker finishes; then nothing is left (seed Bug 4).
; expect-status: 1
; expect-stdout: about to Goexit
; expect-stdout: worker done
; expect-stderr: fatal error: no goroutines (main called runtime.Goexit) - deadlock!

func @w(%c: chan) {
    %go = recv %c
    sleep 1000
    print "worker done"
    ret
}
func @main() {
    %c = chan 0
    spawn @w(%c)
    print "about to Goexit"
    send %c, 1
    goexit
}
