; Globals (plain and atomic), heap objects (nil and bounds checks, slot
; tags), a loop whose load LICM hoists, and a fused compare-and-branch.
set opt = 1

global @g: i64 = 5
global @r: ref

func @heap(%n: i64) -> i64 {
    %o = new %n
    set %o, 0, 42
    %p = new 1
    setref %o, 1, %p
    %v = get %o, 0
    %q = getref %o, 1
    %l = len %q
    store @r, %q
    %v = add %v, %l
    ret %v
}

func @atomics() -> i64 {
    %a = load.atomic @g
    store.atomic @g, 9
    %b = add.atomic @g, %a
    %c = cas.atomic @g, 14, 1
    %d = add %b, %c
    ret %d
}

func @spin(%limit: i64) -> i64 {
    %i = const 0
loop:
    %v = load @g
    %i = add %i, %v
    %c = lt %i, %limit
    br %c, loop, out
out:
    ret %i
}

func @main() {
    %h = call @heap(3)
    %a = call @atomics()
    %s = call @spin(1000)
    print "{} {} {}", %h, %a, %s
    ret
}
