; Bug 6 — Channel send after a write barrier (the seed's Holder.Update)
;
; Go:  func (h *Holder) Update(p *int) { h.ptr = p; h.ch <- 42 }
;
; The seed says nothing is wrong: the barrier of `h.ptr = p` runs and
; completes before the send begins; the barrier is not asynchronously
; preemptible, but it is "a single, brief atomic-ish event around one
; pointer store", not a multi-statement region.
;
; What to look at: the program's result with collections running while
; the barrier is in use (`gc` every 1000 updates; --gc-verify checks each
; collection: no object the holder or the channel's receiver still reaches
; may be freed; --gc-interleave lands stores between the marker's scans),
; and the machine code of @update: the `[wb]` marks (unsafe regions, where
; an asynchronous preemption retries instead of stopping) against the
; send's code and its runtime call. barrier-shapes.pir sets @update beside
; its store alone and two stores in a row.
;
; Run:
;   preempt bugs 6
;   preempt run examples/bugs/06-send-after-write-barrier/send-after-write-barrier.pir --gc-verify --stats
;   preempt run examples/bugs/06-send-after-write-barrier/send-after-write-barrier.pir --gc-verify --gc-interleave
;   preempt disasm examples/bugs/06-send-after-write-barrier/send-after-write-barrier.pir
;   preempt disasm --arch aarch64 examples/bugs/06-send-after-write-barrier/send-after-write-barrier.pir
;   preempt stress examples/bugs/06-send-after-write-barrier/send-after-write-barrier.pir --procs 1 --limit 500

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
