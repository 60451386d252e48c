; Atomics: two goroutines increment one counter with add.atomic and
; another with a cas.atomic retry loop, and publish with store.atomic;
; main waits for both on a channel. On aarch64 each atomic is a
; load-exclusive/store-exclusive loop, a restartable region: a goroutine
; stopped inside it resumes at its first instruction, and one stopped
; after its store-exclusive must not do the operation twice.
;
;   preempt stress examples/stress/atomics.pir
;
; What it prints, for the tests and `preempt soak`:
; expect-status: 0
; expect-stdout: count 50 cas 75 last > 0: 1

global @rounds: i64 = 25
global @count: i64 = 0
global @cas: i64 = 0
global @last: i64 = 0

func @worker(%id: i64, %n: i64, %done: chan) {
    %i = const 0
loop:
    %x = add.atomic @count, 1
    %tries = const 0
retry:
    %old = load.atomic @cas
    %new = add %old, %id
    %ok = cas.atomic @cas, %old, %new
    %tries = add %tries, 1
    br %ok, swapped, retry
swapped:
    store.atomic @last, %x
    %i = add %i, 1
    %c = lt %i, %n
    br %c, loop, out
out:
    send %done, %tries
    ret
}

func @main() {
    %n = load @rounds
    %done = chan 0
    spawn @worker(1, %n, %done)
    spawn @worker(2, %n, %done)
    %t1 = recv %done
    %t2 = recv %done
    %count = load.atomic @count
    %cas = load.atomic @cas
    %last = load.atomic @last
    %more = gt %last, 0
    print "count {} cas {} last > 0: {}", %count, %cas, %more
    ret
}
