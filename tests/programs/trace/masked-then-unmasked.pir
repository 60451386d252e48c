; A goroutine masks the preemption signal on its thread, spins until
; @main tells it to stop, and unmasks it. The monitor asks it to stop
; after its quantum and signals its thread while the signal is masked; the
; signal stays pending and is delivered inside the unmask, in foreign
; code, where the handler must decline it ("not in JIT code"); the
; goroutine then stops at the call's return. For the trace tests: a
; handler decline that does not depend on where a signal happens to land.
;
;   preempt run --quantum 1ms --hang-threshold 0 --trace t.json tests/programs/trace/masked-then-unmasked.pir
set procs = 2

global @stop: i64 = 0

func @masked(%done: chan) {
    lockthread
    ccall block_preempt_signal
loop:
    %s = load.atomic @stop
    br %s, out, loop
out:
    ccall unblock_preempt_signal
    unlockthread
    send %done, 1
    ret
}

func @main() {
    %done = chan 0
    spawn @masked(%done)
    ; 100 ms: a hundred quanta of 1 ms, for the monitor's request and
    ; signal to reach the masked thread.
    sleep 100000
    store.atomic @stop, 1
    %r = recv %done
    print "unmasked"
    ret
}
