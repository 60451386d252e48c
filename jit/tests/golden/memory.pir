; Globals (plain and atomic) and the heap; eq/ne on refs and chans.
global @counter: i64
global @flag: i64 = -7
global @root: ref

func @main() {
    %x = load @counter
    store @counter, %x
    store @counter, 3
    %a = load.atomic @flag
    store.atomic @flag, %a
    %n = add.atomic @counter, 1
    %ok = cas.atomic @flag, 0, %n
    %obj = new 4
    %len = len %obj
    set %obj, 0, %len
    %v = get %obj, 0
    %inner = new 0
    setref %obj, 1, %inner
    setref %obj, 2, nil
    %p = getref %obj, 1
    store @root, %p
    store @root, nil
    %r = load @root
    %nil = copy nil
    %same = eq %r, %nil
    %diff = ne %p, nil
    %c = chan 0
    %d = copy %c
    %cc = eq %c, %d
    assert %cc, "a chan equals its copy"
    print "{} {} {} {} {}", %v, %ok, %same, %diff, %r
    ret
}
