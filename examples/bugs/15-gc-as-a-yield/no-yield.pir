; Bug 15 — runtime.GC() to "give others a chance": no yield at all
;
; Go:  go func() { for { doWork() } }(); time.Sleep(time.Millisecond)   // GOMAXPROCS(1)
;
; The seed's fix: "Remove the call ... If it does not [need to yield], do
; not yield at all"; "on Go 1.14+ even [runtime.Gosched] is rarely
; needed". The worker loops on @work, a call-free loop, with no yield;
; @main, on the same and only P, sleeps 1 ms behind it and prints how late
; it woke (`measure late_us`). @work is a real call, with a stack check at
; its entry: a cooperative preemption point, unless --nosplit-leaves
; leaves it out as Go's compiler does for a small leaf function.
;
; What to look at: how late @main woke, in async mode (precise and
; --sched go) and in coop mode with --nosplit-leaves (Go's
; asyncpreemptoff=1: what Go before 1.14 did).
;
; Run:
;   preempt bugs 15
;   preempt run examples/bugs/15-gc-as-a-yield/no-yield.pir --stats
;   preempt run examples/bugs/15-gc-as-a-yield/no-yield.pir --sched go --stats
;   preempt run examples/bugs/15-gc-as-a-yield/no-yield.pir --preempt coop --nosplit-leaves --timeout 2

set procs = 1

global @iters: i64 = 100000

; doWork(): a call-free loop of @iters iterations.
func @work() {
    %n = load @iters
    %i = const 0
    %x = const 1
loop:
    %x = mul %x, 6364136223846793005
    %x = add %x, 1
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, out
out:
    ret
}

func @worker() {
loop:
    call @work()            ; doWork(), and no yield
    jmp loop
}

func @main() {
    spawn @worker()
    %t0 = now
    sleep 1000
    %t1 = now
    %ns = sub %t1, %t0
    %us = div %ns, 1000
    %late = sub %us, 1000
    print "main's 1000 us sleep ended {} us late", %late
    print "measure late_us {}", %late
    ret
}
