; A collection while another goroutine sits in foreign code for 3 s: the
; stop-the-world takes that goroutine's P as it is (as Go takes a P in a
; system call) instead of waiting for the call to return, so the three
; collections end long before the watchdog (2.5 s); @main returns while
; the call goes on.
; flags: --timeout 2.5
; expect-status: 0
; expect-stdout: kept 7 after 3 collections
global @keep: ref

func @blocker(%c: chan) {
    send %c, 1
    ccall sleep, 3000000
    ret
}

func @main() {
    %o = new 1
    set %o, 0, 7
    store @keep, %o
    %c = chan 0
    spawn @blocker(%c)
    %v = recv %c
    gc
    gc
    gc
    %k = load @keep
    %x = get %k, 0
    print "kept {} after 3 collections", %x
    ret
}
