; Bug 10 — Forgetting that select { default } is not a true loop yield,
; with its figures
;
; Go:  for { select { case <-ctx.Done(): return; default: }
;            for j := 0; j < 1000; j++ { sum += int64(j) } }
;
; select-default-not-a-yield.pir (read its header) with, after each
; phase's line, `measure phaseK_late_us N`: how late @main's sleep of
; phase K ended, in microseconds. `preempt bugs 10` reads them.
;
; Run:
;   preempt bugs 10
;   preempt run --preempt coop examples/bugs/10-select-default-not-a-yield/select-default-measured.pir
;   preempt run examples/bugs/10-select-default-not-a-yield/select-default-measured.pir

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
    print "measure phase{}_late_us {}", %k, %late_us
    ret
}

func @main() {
    call @phase(1, 1000, 15000)
    call @phase(2, 300000000, 1000)
    ret
}
