; Four workers build and drop linked lists (400 each, 50 to 149 nodes),
; publish each in one of eight shared slots (dropping the list that was
; there) and check the list another worker published, while @main runs
; collections. Every list is checked node by node wherever it is read:
; values count up from the list's seed and each node knows how many
; nodes follow it, so a node freed and reused while reachable shows.
; expect-status: 0
; expect-stdout: nodes 159200
global @shared: ref

; A list of %n nodes [value, next, remaining], values %seed, %seed + 1, ...
func @list(%n: i64, %seed: i64) -> ref {
    %head = copy nil
    %k = copy %n
build:
    %k = sub %k, 1
    %node = new 3
    %v = add %seed, %k
    set %node, 0, %v
    setref %node, 1, %head
    %left = sub %n, %k
    set %node, 2, %left
    %head = copy %node
    %more = gt %k, 0
    br %more, build, done
done:
    ret %head
}

; Checks a list built by @list; returns its length.
func @check(%l: ref) -> i64 {
    %n = get %l, 2
    %first = get %l, 0
    %k = const 0
walk:
    %v = get %l, 0
    %want = add %first, %k
    %ok = eq %v, %want
    assert %ok, "a list's values changed"
    %left = get %l, 2
    %want2 = sub %n, %k
    %ok2 = eq %left, %want2
    assert %ok2, "a list's length changed"
    %k = add %k, 1
    %l = getref %l, 1
    %end = eq %l, nil
    br %end, done, walk
done:
    %ok3 = eq %k, %n
    assert %ok3, "a list lost its tail"
    ret %k
}

func @worker(%w: i64, %out: chan) {
    %total = const 0
    %r = const 0
round:
    %a = mul %r, 7
    %b = mul %w, 13
    %m = add %a, %b
    %m = rem %m, 100
    %n = add %m, 50
    %s1 = mul %w, 1000000
    %s2 = mul %r, 1000
    %seed = add %s1, %s2
    %l = call @list(%n, %seed)
    %c = call @check(%l)
    %ok = eq %c, %n
    assert %ok, "a fresh list is wrong"
    %total = add %total, %c
    %sh = load @shared
    %mine = add %w, %r
    %mine = and %mine, 7
    setref %sh, %mine, %l
    %theirs = mul %w, 3
    %theirs = add %theirs, %r
    %theirs = add %theirs, 1
    %theirs = and %theirs, 7
    %other = getref %sh, %theirs
    %none = eq %other, nil
    br %none, next, other
other:
    %oc = call @check(%other)
next:
    %r = add %r, 1
    %more = lt %r, 400
    br %more, round, finish
finish:
    send %out, %total
    ret
}

func @main() {
    %sh = new 8
    store @shared, %sh
    %out = chan 4
    %w = const 0
spawn:
    spawn @worker(%w, %out)
    %w = add %w, 1
    %ws = lt %w, 4
    br %ws, spawn, collect
collect:
    %i = const 0
cycles:
    gc
    %i = add %i, 1
    %more = lt %i, 10
    br %more, cycles, gather
gather:
    %sum = const 0
    %k = const 0
recv:
    %t = recv %out
    %sum = add %sum, %t
    %k = add %k, 1
    %km = lt %k, 4
    br %km, recv, report
report:
    print "nodes {}", %sum
    ret
}
