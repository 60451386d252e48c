; Calls, goroutines and scheduling.
func @worker(%id: i64, %out: chan) {
    send %out, %id
    goexit
}

func @answer() -> i64 {
    ret 42
}

func @pair(%a: i64, %b: ref) -> ref {
    ret %b
}

func @main() {
    %c = chan 2
    spawn @worker(1, %c)
    spawn @answer()                 ; the value is discarded, as with go f()
    call @answer()                  ; so is this one
    %x = call @answer()
    %p = call @pair(%x, nil)
    yield
    gc
    setgcpercent 50
    sleep 100
    %t = now
    lockthread
    unlockthread
    %n = procs
    %v = recv %c
    print "{} {} {} {} {}", %x, %p, %t, %n, %v
    ret
}
