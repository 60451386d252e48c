; One P; goroutine 1 sits in foreign code for 500 ms. The monitor hands the
; P to another thread, so goroutine 2 prints first (seed Bug 3).
; expect-status: 0
; expect-stdout: hi from goroutine 2
; expect-stdout: cgo done
set procs = 1

func @cgo(%done: chan) {
    ccall sleep, 500000
    print "cgo done"
    send %done, 1
    ret
}

func @hi(%done: chan) {
    print "hi from goroutine 2"
    send %done, 1
    ret
}

func @main() {
    %done = chan 0
    spawn @cgo(%done)
    sleep 1000
    spawn @hi(%done)
    %a = recv %done
    %b = recv %done
    ret
}
