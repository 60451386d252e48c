; Bug 15 — runtime.GC() to "give others a chance"
;
; Go:  for { doWork(); runtime.GC() }
;
; The seed says: runtime.GC() triggers a full collection; it is very
; expensive ("milliseconds, allocating, syncing all Ms"); as a yield it is
; the most expensive there is; use runtime.Gosched, or nothing (Go 1.14+
; preempts anyway). Here one worker does 200 rounds of a call-free loop
; followed by `yield` (runtime.Gosched), then another does the same
; followed by `gc`, over a live heap of 20,000 small objects; @main prints
; how long each took, and the mean time of one `yield` and of one `gc`
; (`measure gosched_ns`, `measure gc_ns`), timed around each call.
; big-heap.pir is the same over 1,000,000 objects; no-yield.pir is the
; loop with no yield at all.
;
; What to look at: the two times and the time per call; --stats: "gc
; cycles" and the stop-the-world counts, against the 200 calls.
;
; Run:
;   preempt bugs 15
;   preempt run examples/bugs/15-gc-as-a-yield/gc-as-a-yield.pir --stats

set procs = 1

global @rounds: i64 = 200
global @iters: i64 = 100000
global @live: ref
global @call_ns: i64 = 0   ; the last worker's mean time per yield

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
    %calls = const 0
    %t0 = now
loop:
    call @work()
    %c0 = now
    br %yield_with_gc, collect, gosched
collect:
    gc                      ; runtime.GC() "to give others a chance"
    jmp next
gosched:
    yield                   ; runtime.Gosched()
next:
    %c1 = now
    %c = sub %c1, %c0
    %calls = add %calls, %c
    %i = add %i, 1
    %more = lt %i, %r
    br %more, loop, out
out:
    %t1 = now
    %us = sub %t1, %t0
    %us = div %us, 1000
    %mean = div %calls, %r
    store @call_ns, %mean
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
    %gosched_ns = load @call_ns
    spawn @worker(1, %done)
    %b = recv %done
    %gc_ns = load @call_ns
    print "200 rounds of work with runtime.Gosched: {} us; with runtime.GC: {} us", %a, %b
    print "measure gosched_ns {}", %gosched_ns
    print "measure gc_ns {}", %gc_ns
    ret
}
