; Bug 6 — Channel send after a write barrier (the seed's Holder.Update)
;
; Go:  func (h *Holder) Update(p *int) { h.ptr = p; h.ch <- 42 }
;
; The seed says nothing is wrong: the barrier of `h.ptr = p` is one short
; unsafe region around one pointer store, and it is over before the send
; begins. That is what the compiler here emits too, on both architectures:
;
;   preempt disasm examples/bugs/06-send-after-write-barrier/send-after-write-barrier.pir
;   preempt disasm --arch aarch64 examples/bugs/06-send-after-write-barrier/send-after-write-barrier.pir
;
; In @update, the `[wb]` marks run from the load of the collector's
; marking flag through the store of the ref and its tag (plus the barrier's
; out-of-line slow path, which shades the old ref); the send's code that
; follows, and its runtime call, carry no mark: a signal there is honoured.
;
; Run:
;   preempt run examples/bugs/06-send-after-write-barrier/send-after-write-barrier.pir --gc-verify --stats
;   preempt stress examples/bugs/06-send-after-write-barrier/send-after-write-barrier.pir --procs 1 --limit 500
;
; What really happens (release build, 2-vCPU x86-64 VM): "sum 840000 last
; 19999", exit 0, 20 collections (one `gc` every 1000 updates), each
; verified by --gc-verify: no object the holder or the channel's receiver
; still reaches was freed.

set procs = 2

global @n: i64 = 20000

; Holder{ptr, ch}: slot 0 is h.ptr. Update stores the pointer (through the
; write barrier) and then sends on the channel.
func @update(%h: ref, %p: ref, %ch: chan) {
    setref %h, 0, %p    ; h.ptr = p   (write barrier)
    send %ch, 42        ; h.ch <- 42
    ret
}

func @receiver(%ch: chan, %done: chan) {
    %n = load @n
    %sum = const 0
    %i = const 0
loop:
    %v = recv %ch
    %sum = add %sum, %v
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, out
out:
    send %done, %sum
    ret
}

func @main() {
    %n = load @n
    %ch = chan 16
    %done = chan 0
    %h = new 1
    spawn @receiver(%ch, %done)
    %i = const 0
loop:
    %p = new 1
    set %p, 0, %i
    call @update(%h, %p, %ch)
    %r = rem %i, 1000
    %c = eq %r, 0
    br %c, collect, next
collect:
    gc                  ; collections while the barrier is in use
next:
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, out
out:
    %sum = recv %done
    %last = getref %h, 0
    %v = get %last, 0
    print "sum {} last {}", %sum, %v
    ret
}
