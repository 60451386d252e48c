; Bug 15 — runtime.GC() to "give others a chance"
;
; Go:  for { doWork(); runtime.GC() }
;
; The seed says: a whole collection is the most expensive yield there is;
; use runtime.Gosched, or nothing (Go 1.14+ preempts anyway). Here one
; worker does 200 rounds of a call-free loop followed by `yield`
; (runtime.Gosched), then another does the same followed by `gc`, over a
; live heap of 20,000 small objects; @main prints how long each took.
;
; Run:
;   preempt run examples/bugs/15-gc-as-a-yield/gc-as-a-yield.pir --stats
;
; What really happens (release build, 2-vCPU x86-64 VM, 3 runs): with
; `yield` the 200 rounds take 22-23 ms; with `gc`, 82-86 ms: each call
; waits for a whole cycle (p50 336 us from request to swept: two stops of
; the world, marking 20,000 objects, a sweep) to yield a P that nobody
; else wanted. --stats: "gc cycles 200". On this small heap a cycle costs
; about 0.3 ms; Go's "milliseconds" come with bigger heaps.

set procs = 1

global @rounds: i64 = 200
global @iters: i64 = 100000
global @live: ref

; doWork(): a call-free loop of @work iterations.
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

func @worker(%yield_with_gc: i64, %done: chan) {
    %r = load @rounds
    %i = const 0
    %t0 = now
loop:
    call @work()
    br %yield_with_gc, collect, gosched
collect:
    gc                      ; runtime.GC() "to give others a chance"
    jmp next
gosched:
    yield                   ; runtime.Gosched()
next:
    %i = add %i, 1
    %more = lt %i, %r
    br %more, loop, out
out:
    %t1 = now
    %us = sub %t1, %t0
    %us = div %us, 1000
    send %done, %us
    ret
}

; A live heap for the collector to mark: a list of 20,000 small objects.
func @build() {
    %head = copy nil
    %i = const 0
loop:
    %n = new 2
    set %n, 0, %i
    setref %n, 1, %head
    %head = copy %n
    %i = add %i, 1
    %more = lt %i, 20000
    br %more, loop, out
out:
    store @live, %head
    ret
}

func @main() {
    call @build()
    %done = chan 0
    spawn @worker(0, %done)
    %a = recv %done
    spawn @worker(1, %done)
    %b = recv %done
    print "200 rounds of work with runtime.Gosched: {} us; with runtime.GC: {} us", %a, %b
    ret
}
