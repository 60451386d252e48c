; Bug 15 — runtime.GC() to "give others a chance", over a bigger heap
;
; Go:  for { doWork(); runtime.GC() }
;
; gc-as-a-yield.pir with a live heap of 1,000,000 small objects instead of
; 20,000, and 20 rounds of each worker instead of 200: the cost of a
; whole collection grows with the live heap it marks; whether one call
; takes "milliseconds" depends on it.
;
; Run:
;   preempt bugs 15
;   preempt run examples/bugs/15-gc-as-a-yield/big-heap.pir --stats

set procs = 1

global @rounds: i64 = 20
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

; A live heap for the collector to mark: a list of 1,000,000 small objects.
func @build() {
    %head = copy nil
    %i = const 0
loop:
    %n = new 2
    set %n, 0, %i
    setref %n, 1, %head
    %head = copy %n
    %i = add %i, 1
    %more = lt %i, 1000000
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
    print "20 rounds of work with runtime.Gosched: {} us; with runtime.GC: {} us", %a, %b
    print "measure gosched_ns {}", %gosched_ns
    print "measure gc_ns {}", %gc_ns
    ret
}
