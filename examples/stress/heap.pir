; The heap: a linked list built with new, set and setref, its head kept
; in a ref global (a ref store, which goes through the write barrier),
; then walked with getref, get and len. The list is rebuilt every round.
;
;   preempt stress examples/stress/heap.pir
;
; What it prints, for the tests and `preempt soak`:
; expect-status: 0
; expect-stdout: total 165

global @rounds: i64 = 3
global @root: ref

func @build(%n: i64) -> ref {
    %head = copy nil
    %i = const 0
loop:
    %node = new 3
    set %node, 0, %i
    %sq = mul %i, %i
    set %node, 1, %sq
    setref %node, 2, %head
    %head = copy %node
    %i = add %i, 1
    %more = lt %i, %n
    br %more, loop, out
out:
    ret %head
}

func @walk(%p: ref) -> i64 {
    %sum = const 0
loop:
    %end = eq %p, nil
    br %end, out, body
body:
    %v = get %p, 0
    %w = get %p, 1
    %l = len %p
    %sum = add %sum, %v
    %sum = add %sum, %w
    %sum = add %sum, %l
    %p = getref %p, 2
    jmp loop
out:
    ret %sum
}

func @main() {
    %rounds = load @rounds
    %total = const 0
    %r = const 0
loop:
    %list = call @build(5)
    store @root, %list
    %head = load @root
    %s = call @walk(%head)
    %total = add %total, %s
    %r = add %r, 1
    %more = lt %r, %rounds
    br %more, loop, out
out:
    print "total {}", %total
    ret
}
