; Bug 10 — Forgetting that select { default } is not a true loop yield
;
; Go:  for { select { case <-ctx.Done(): return; default: }
;            for j := 0; j < 1000; j++ { sum += int64(j) } }
;
; The seed: the select (it has a channel arm) goes through the runtime, so
; cooperative preemption fires at every outer iteration; the inner loop has
; no calls, so within an outer iteration only asynchronous preemption can
; stop the goroutine. The bug is believing the select protects the inner
; loop: it only adds a preemption point at the outer iteration boundary.
;
; The worker is the seed's loop; ctx is a channel that @main closes (the
; cancel). @main sleeps behind the worker on the only P, then cancels and
; reports how late its sleep ended. Two phases, the same worker code:
;   phase 1: the seed's inner loop of 1000 iterations, @main sleeps 15 ms;
;   phase 2: an inner loop of 300,000,000 iterations (about 0.3 s), @main
;            sleeps 1 ms: what the select does not protect.
;
; What to look at:
;   - the machine code (`preempt disasm`): the select is a runtime call
;     (`call rt_call` right after it in block `loop`), so every outer
;     iteration is a preemption point; the inner loop is bare (`cmp`, `jl`,
;     two `add`s and a `jmp` marked BACK-EDGE), nothing the runtime sees;
;   - under --preempt coop (Go's asyncpreemptoff=1), how late @main's sleep
;     ends in each phase: in phase 1 the worker stops at its next select
;     once asked (--trace shows each preemption), so @main waits for a
;     preemption request, which comes at the end of a quantum; in phase 2
;     the request waits for the inner loop to end, and with
;     --hang-threshold 10ms the monitor reports it while the loop runs,
;     naming the inner loop, not the outer one that holds the select;
;   - the same under asynchronous preemption (the default), which stops the
;     inner loop;
;   - also Go's semantics, and easy to miss: the cancel does not stop the
;     inner loop either. The select that the worker was preempted in had
;     already chosen `default`, so after @main closes ctx the worker runs
;     one more whole inner loop before its next select sees ctx.Done.
; select-default-measured.pir is this program with `measure` lines.
;
; Run:
;   preempt bugs 10
;   preempt run --preempt coop examples/bugs/10-select-default-not-a-yield/select-default-not-a-yield.pir --stats
;   preempt run --preempt coop examples/bugs/10-select-default-not-a-yield/select-default-not-a-yield.pir --hang-threshold 10ms
;   preempt run examples/bugs/10-select-default-not-a-yield/select-default-not-a-yield.pir
;   preempt disasm examples/bugs/10-select-default-not-a-yield/select-default-not-a-yield.pir    (the select calls rt_call)

set procs = 1

func @worker(%ctx: chan, %n: i64, %result: chan) {
    %sum = const 0
loop:
    select recv %ctx -> cancelled, default -> work   ; case <-ctx.Done(): return; default:
work:
    %j = const 0
inner:
    %c = lt %j, %n                                   ; for j := 0; j < n; j++
    br %c, body, loop
body:
    %sum = add %sum, %j                              ; sum += int64(j)
    %j = add %j, 1
    jmp inner
cancelled:
    send %result, %sum
    ret
}

; Runs the worker with an inner loop of %n iterations while @main sleeps
; %sleep_us behind it; prints how late the sleep ended.
func @phase(%k: i64, %n: i64, %sleep_us: i64) {
    %ctx = chan 0
    %result = chan 0
    spawn @worker(%ctx, %n, %result)
    %t0 = now
    sleep %sleep_us
    %t1 = now
    close %ctx                                       ; cancel()
    %sum = recv %result
    %ns = sub %t1, %t0
    %slept_us = div %ns, 1000
    %late_us = sub %slept_us, %sleep_us
    print "phase {}: inner loop of {}: main's {} us sleep ended {} us late; worker cancelled", %k, %n, %sleep_us, %late_us
    ret
}

func @main() {
    call @phase(1, 1000, 15000)
    call @phase(2, 300000000, 1000)
    ret
}
