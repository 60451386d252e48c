; heapwalk: builds a list of 1000 nodes (value, next), then walks it n/1000
; times summing the values: loads through refs with nil, bounds and slot
; checks on every access.
func @build(%len: i64) -> ref {
    %head = copy nil
    %i = const 0
loop:
    %node = new 2
    set %node, 0, %i
    setref %node, 1, %head
    %head = copy %node
    %i = add %i, 1
    %c = lt %i, %len
    br %c, loop, done
done:
    ret %head
}

func @kernel(%n: i64) -> i64 {
    %list = call @build(1000)
    %rounds = div %n, 1000
    %s = const 0
    %r = const 0
round:
    %p = copy %list
walk:
    %v = get %p, 0
    %s = add %s, %v
    %p = getref %p, 1
    %more = ne %p, nil
    br %more, walk, next
next:
    %r = add %r, 1
    %c = lt %r, %rounds
    br %c, round, done
done:
    ret %s
}
