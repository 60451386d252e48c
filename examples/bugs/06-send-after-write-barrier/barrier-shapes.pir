; Bug 6 — Channel send after a write barrier: the barrier's extent
;
; Go:  func (h *Holder) Update(p *int) { h.ptr = p; h.ch <- 42 }
;      func (h *Holder) Set(p *int)    { h.ptr = p }
;      func (q *Pair) Both(x, y *int)  { q.a = x; q.b = y }
;
; The seed: "The write barrier for h.ptr = p runs and completes before the
; channel send", and a write barrier "is a single, brief atomic-ish event
; around one pointer store", not a multi-statement region. Three
; functions to disassemble side by side: @update (the seed's), @set (its
; store alone) and @both (two pointer stores in a row).
;
; What to look at: the `[wb]` marks of each (unsafe regions, where an
; asynchronous preemption retries instead of stopping): whether the send
; adds any to @update's, and whether @both's two stores get one region
; or two (one load of the collector's marking flag each, at r15+0x140).
;
; Run:
;   preempt bugs 6
;   preempt disasm examples/bugs/06-send-after-write-barrier/barrier-shapes.pir
;   preempt disasm --arch aarch64 examples/bugs/06-send-after-write-barrier/barrier-shapes.pir

func @update(%h: ref, %p: ref, %ch: chan) {
    setref %h, 0, %p    ; h.ptr = p   (write barrier)
    send %ch, 42        ; h.ch <- 42
    ret
}

func @set(%h: ref, %p: ref) {
    setref %h, 0, %p    ; h.ptr = p   (write barrier)
    ret
}

func @both(%q: ref, %x: ref, %y: ref) {
    setref %q, 0, %x    ; q.a = x
    setref %q, 1, %y    ; q.b = y
    ret
}

func @main() {
    %ch = chan 1
    %h = new 1
    %q = new 2
    %x = new 1
    %y = new 1
    call @update(%h, %x, %ch)
    call @set(%h, %y)
    call @both(%q, %x, %y)
    %v = recv %ch
    print "{}", %v
    ret
}
