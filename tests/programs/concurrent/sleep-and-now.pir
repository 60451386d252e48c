; `sleep` lasts at least as long as asked, measured with `now`; `procs`
; reports the Ps.
; flags: --procs 3
; expect-status: 0
; expect-stdout: slept enough: 1
; expect-stdout: procs 3
func @main() {
    %t0 = now
    sleep 10000
    %t1 = now
    %d = sub %t1, %t0
    %ok = ge %d, 10000000
    print "slept enough: {}", %ok
    %p = procs
    print "procs {}", %p
    ret
}
