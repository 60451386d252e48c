//! LICM at the IR level: it hoists exactly when IR.md allows it, builds
//! correct pre-headers, and leaves a program that prints, re-parses and
//! verifies.
//!
//! Each blocking condition has its own test, named after it; each shape of
//! loop (fall-through entry, entry-block header, several latches, nests)
//! has its own. A few results are checked against golden text, the rest
//! structurally.

use preempt_jit::ir::cfg::Cfg;
use preempt_jit::ir::{self, BlockId, Function, Hoisted, InstKind, Opcode, Program, Type};
use preempt_jit::opt::{self, hoisted_loads, loads_hoisted_out_of, loop_barrier, Barrier};

// ---------------------------------------------------------------------------
// Helpers

/// Parses and verifies `src`, as the pipeline does before optimising.
fn prepare(src: &str) -> Program {
    let mut p = ir::parse(src).unwrap_or_else(|e| panic!("{}", e.render("test.pir", src)));
    ir::verify(&mut p).unwrap_or_else(|e| panic!("{}", e.render("test.pir", src)));
    p
}

/// Checks what every optimised program must satisfy: it prints, re-parses
/// to an equal program, prints the same again, verifies, and optimising it
/// again changes nothing.
fn check_output(q: &Program) {
    let text = ir::print(q);
    let mut r = ir::parse(&text).unwrap_or_else(|e| panic!("{}\n{text}", e.render("opt", &text)));
    assert_eq!(ir::print(&r), text);
    // Verifying the re-parsed text gives every register the type LICM
    // gave it, and equality then covers names, numbering and types.
    ir::verify(&mut r).unwrap_or_else(|e| panic!("{}", e.render("opt", &text)));
    assert_eq!(&r, q, "re-parsed program differs:\n{text}");
    let mut again = q.clone();
    opt::optimize(&mut again, 1);
    assert_eq!(ir::print(&again), text, "LICM is not idempotent");
}

/// Optimises `src` at level 1 and checks the result.
fn optimized(src: &str) -> Program {
    let mut p = prepare(src);
    opt::optimize(&mut p, 1);
    check_output(&p);
    p
}

/// (function, global, loop header) of every hoisted load, in order.
fn hoists(p: &Program) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for f in &p.funcs {
        for h in hoisted_loads(f) {
            out.push((
                f.name.clone(),
                p.global(h.global).name.clone(),
                f.block_name(h.header),
            ));
        }
    }
    out
}

fn hoist(f: &str, g: &str, header: &str) -> (String, String, String) {
    (f.to_string(), g.to_string(), header.to_string())
}

/// Plain loads of `global` left anywhere in `func`.
fn plain_loads(p: &Program, func: &str, global: &str) -> usize {
    let f = p.func(p.func_by_name(func).unwrap());
    let g = p.global_by_name(global).unwrap();
    f.blocks
        .iter()
        .flat_map(|b| &b.insts)
        .filter(
            |i| matches!(i.kind, InstKind::Load { op: Opcode::Load, global, .. } if global == g),
        )
        .count()
}

/// Asserts that LICM leaves `src` exactly as it was.
fn assert_unchanged(src: &str) {
    let before = prepare(src);
    let after = optimized(src);
    assert_eq!(ir::print(&after), ir::print(&before));
    assert_eq!(after, before);
    assert!(hoists(&after).is_empty());
}

fn func<'p>(p: &'p Program, name: &str) -> &'p Function {
    p.func(p.func_by_name(name).unwrap())
}

// ---------------------------------------------------------------------------
// Golden text

const BUG1: &str = "\
global @done: i64 = 0

func @spinner() {
loop:
    %v = load @done
    br %v, out, loop
out:
    print \"done!\"
    ret
}

func @main() {
    spawn @spinner()
    store @done, 1
    print \"flag set\"
    ret
}
";

#[test]
fn golden_bug1_spinner_header_is_the_entry_block() {
    let p = optimized(BUG1);
    let expected = "\
global @done: i64 = 0

func @spinner() {
loop.preheader:
    %done.licm = load @done
    jmp loop
loop:
    %v = copy %done.licm
    br %v, out, loop
out:
    print \"done!\"
    ret
}

func @main() {
    spawn @spinner()
    store @done, 1
    print \"flag set\"
    ret
}
";
    assert_eq!(ir::print(&p), expected);
    assert_eq!(hoists(&p), vec![hoist("spinner", "done", "loop")]);
    let f = func(&p, "spinner");
    // The pre-header is the new entry block; the mark names the header.
    assert_eq!(f.blocks[0].insts[0].hoisted.0, Some(BlockId::new(1)));
    // Registers are numbered in text order, as the parser numbers them.
    assert_eq!(f.regs[0].name, "done.licm");
    assert_eq!(f.regs[0].ty, Some(Type::I64));
}

#[test]
fn golden_nested_loops_rehoist_to_the_outer_preheader() {
    let src = "\
global @a: i64 = 1
global @b: i64 = 2

func @main() {
    %i = const 0
    %s = const 0
outer:
    %j = const 0
inner:
    %x = load @a
    %s = add %s, %x
    %j = add %j, 1
    %t = lt %j, 3
    br %t, inner, next
next:
    %y = load @b
    %s = add %s, %y
    %i = add %i, 1
    %u = lt %i, 3
    br %u, outer, done
done:
    print \"{}\", %s
    ret
}
";
    let p = optimized(src);
    // Both pre-headers already exist: the entry block for `outer`, and
    // `outer` itself for `inner` (it only falls into `inner`).
    let expected = "\
global @a: i64 = 1
global @b: i64 = 2

func @main() {
    %i = const 0
    %s = const 0
    %a.licm.1 = load @a
    %b.licm = load @b
outer:
    %j = const 0
    %a.licm = copy %a.licm.1
inner:
    %x = copy %a.licm
    %s = add %s, %x
    %j = add %j, 1
    %t = lt %j, 3
    br %t, inner, next
next:
    %y = copy %b.licm
    %s = add %s, %y
    %i = add %i, 1
    %u = lt %i, 3
    br %u, outer, done
done:
    print \"{}\", %s
    ret
}
";
    assert_eq!(ir::print(&p), expected);
    assert_eq!(
        hoists(&p),
        vec![hoist("main", "a", "outer"), hoist("main", "b", "outer")]
    );
    // The copy left in the inner pre-header keeps the inner mark.
    let f = func(&p, "main");
    let copy = &f.blocks[1].insts[1];
    assert_eq!(
        ir::printer::inst(&p, f, &copy.kind),
        "%a.licm = copy %a.licm.1"
    );
    assert_eq!(
        copy.hoisted.0.map(|b| f.block_name(b)),
        Some("inner".to_string())
    );
}

#[test]
fn golden_fall_through_into_header_and_store_to_another_global() {
    // `b` falls through into the header and `a` jumps to it: no block is a
    // pre-header yet, so one is made between `b` and `loop`.
    let src = "\
global @flag: i64 = 0
global @count: i64 = 0

func @main() {
    %x = const 1
    br %x, a, b
a:
    %n = const 5
    jmp loop
b:
    %n = const 0
loop:
    %f = load @flag
    %n = add %n, 1
    store @count, %n
    %c = lt %n, 10
    br %c, loop, out
out:
    ret
}
";
    let p = optimized(src);
    let expected = "\
global @flag: i64 = 0
global @count: i64 = 0

func @main() {
    %x = const 1
    br %x, a, b
a:
    %n = const 5
    jmp loop.preheader
b:
    %n = const 0
loop.preheader:
    %flag.licm = load @flag
    jmp loop
loop:
    %f = copy %flag.licm
    %n = add %n, 1
    store @count, %n
    %c = lt %n, 10
    br %c, loop, out
out:
    ret
}
";
    assert_eq!(ir::print(&p), expected);
}

#[test]
fn golden_existing_preheader_falling_into_the_header_is_reused() {
    let src = "\
global @flag: i64 = 0

func @main() {
    %n = const 0
loop:
    %f = load @flag
    %n = add %n, %f
    %c = lt %n, 10
    br %c, loop, out
out:
    ret
}
";
    let p = optimized(src);
    let expected = "\
global @flag: i64 = 0

func @main() {
    %n = const 0
    %flag.licm = load @flag
loop:
    %f = copy %flag.licm
    %n = add %n, %f
    %c = lt %n, 10
    br %c, loop, out
out:
    ret
}
";
    assert_eq!(ir::print(&p), expected);
}

// ---------------------------------------------------------------------------
// One test per condition that keeps the load in the loop

/// A loop spinning on `@g`, with `line` in its body.
fn spinner_with(line: &str) -> String {
    format!(
        "\
global @g: i64 = 0
global @h: i64 = 0
global @r: ref

func @f() {{
    ret
}}

func @main() {{
    %c = chan 1
    %o = new 4
    %z = const 0
loop:
    %v = load @g
    {line}
    br %v, out, loop
out:
    ret
}}
"
    )
}

/// A loop whose back-edge is the terminator `term` (which must reach
/// `loop`), loading `@g`.
fn spinner_ending_in(term: &str) -> String {
    format!(
        "\
global @g: i64 = 0

func @main() {{
    %c = chan 1
loop:
    %v = load @g
    br %v, out, body
body:
    {term}
out:
    ret
}}
"
    )
}

macro_rules! blocked {
    ($($name:ident: $line:expr => $barrier:expr;)*) => {$(
        #[test]
        fn $name() {
            let src = spinner_with($line);
            assert_unchanged(&src);
            let p = prepare(&src);
            let f = func(&p, "main");
            let cfg = Cfg::new(f);
            assert_eq!(cfg.loops.len(), 1);
            let expected: Option<Barrier> = $barrier;
            assert_eq!(loop_barrier(f, &cfg.loops[0]).map(|b| b.1), expected);
        }
    )*};
}

blocked! {
    call_in_loop_blocks: "call @f()" => Some(Barrier::Call);
    store_to_same_global_blocks: "store @g, 1" => None;
    store_atomic_to_same_global_blocks: "store.atomic @g, 1" => Some(Barrier::Atomic(Opcode::StoreAtomic));
    load_atomic_of_another_global_blocks: "%a = load.atomic @h" => Some(Barrier::Atomic(Opcode::LoadAtomic));
    load_atomic_of_same_global_blocks: "%a = load.atomic @g" => Some(Barrier::Atomic(Opcode::LoadAtomic));
    store_atomic_to_another_global_blocks: "store.atomic @h, 1" => Some(Barrier::Atomic(Opcode::StoreAtomic));
    add_atomic_on_another_global_blocks: "%a = add.atomic @h, 1" => Some(Barrier::Atomic(Opcode::AddAtomic));
    cas_atomic_on_another_global_blocks: "%a = cas.atomic @h, 0, 1" => Some(Barrier::Atomic(Opcode::CasAtomic));
    print_blocks: "print \"tick\"" => Some(Barrier::Runtime(Opcode::Print));
    new_blocks: "%n = new 2" => Some(Barrier::Runtime(Opcode::New));
    yield_blocks: "yield" => Some(Barrier::Runtime(Opcode::Yield));
    sleep_blocks: "sleep 1" => Some(Barrier::Runtime(Opcode::Sleep));
    send_blocks: "send %c, 1" => Some(Barrier::Runtime(Opcode::Send));
    recv_blocks: "%m = recv %c" => Some(Barrier::Runtime(Opcode::Recv));
    close_blocks: "close %c" => Some(Barrier::Runtime(Opcode::Close));
    chan_blocks: "%d = chan 0" => Some(Barrier::Runtime(Opcode::Chan));
    after_blocks: "%d = after 5" => Some(Barrier::Runtime(Opcode::After));
    notify_blocks: "notify %c" => Some(Barrier::Runtime(Opcode::Notify));
    ccall_spin_blocks: "ccall spin, 1" => Some(Barrier::Runtime(Opcode::CCall));
    ccall_sleep_blocks: "ccall sleep, 1" => Some(Barrier::Runtime(Opcode::CCall));
    ccall_without_argument_blocks: "ccall block_preempt_signal" => Some(Barrier::Runtime(Opcode::CCall));
    spawn_blocks: "spawn @f()" => Some(Barrier::Runtime(Opcode::Spawn));
    gc_blocks: "gc" => Some(Barrier::Runtime(Opcode::Gc));
    setgcpercent_blocks: "setgcpercent 50" => Some(Barrier::Runtime(Opcode::SetGcPercent));
    now_blocks: "%t = now" => Some(Barrier::Runtime(Opcode::Now));
    procs_blocks: "%p = procs" => Some(Barrier::Runtime(Opcode::Procs));
    lockthread_blocks: "lockthread" => Some(Barrier::Runtime(Opcode::LockThread));
    unlockthread_blocks: "unlockthread" => Some(Barrier::Runtime(Opcode::UnlockThread));
}

/// Every runtime instruction of the opcode table has a test above: a new
/// one must be added there (and is blocked by the table's flag anyway).
#[test]
fn every_runtime_instruction_is_covered() {
    let covered = [
        Opcode::Print,
        Opcode::New,
        Opcode::Yield,
        Opcode::Sleep,
        Opcode::Send,
        Opcode::Recv,
        Opcode::Close,
        Opcode::Chan,
        Opcode::After,
        Opcode::Notify,
        Opcode::CCall,
        Opcode::Spawn,
        Opcode::Gc,
        Opcode::SetGcPercent,
        Opcode::Now,
        Opcode::Procs,
        Opcode::LockThread,
        Opcode::UnlockThread,
    ];
    for &op in Opcode::ALL {
        if op.is_runtime_op() && !op.is_terminator() {
            assert!(covered.contains(&op), "no LICM test for runtime op {op}");
        }
    }
}

#[test]
fn select_with_a_recv_arm_blocks() {
    let src = spinner_ending_in("select recv %c -> loop, default -> loop");
    assert_unchanged(&src);
}

#[test]
fn select_with_a_recv_into_arm_blocks() {
    let src = spinner_ending_in("select recv %c into %m -> loop");
    assert_unchanged(&src);
}

#[test]
fn select_with_a_send_arm_blocks() {
    let src = spinner_ending_in("select send %c, 1 -> loop, default -> out");
    assert_unchanged(&src);
}

#[test]
fn call_in_a_block_of_the_loop_other_than_the_load_blocks() {
    let src = "\
global @g: i64 = 0

func @f() {
    ret
}

func @main() {
loop:
    %v = load @g
    br %v, out, side
side:
    call @f()
    jmp loop
out:
    ret
}
";
    assert_unchanged(src);
}

#[test]
fn opt_level_0_changes_nothing() {
    for src in [
        BUG1.to_string(),
        spinner_with("store @h, 1"),
        spinner_ending_in("select default -> loop"),
    ] {
        let before = prepare(&src);
        let mut after = before.clone();
        opt::optimize(&mut after, 0);
        assert_eq!(after, before);
        assert_eq!(ir::print(&after), ir::print(&before));
        // `Hoisted` compares equal to anything: look at the marks directly.
        for f in &after.funcs {
            assert!(f
                .blocks
                .iter()
                .flat_map(|b| &b.insts)
                .all(|i| i.hoisted.0.is_none()));
            assert_eq!(f.regs.len(), func(&before, &f.name).regs.len());
        }
    }
}

// ---------------------------------------------------------------------------
// What does not keep the load in the loop

#[test]
fn store_to_another_global_hoists() {
    let p = optimized(&spinner_with("store @h, 1"));
    assert_eq!(hoists(&p), vec![hoist("main", "g", "loop")]);
    assert_eq!(plain_loads(&p, "main", "g"), 1);
}

#[test]
fn select_with_only_default_hoists() {
    // Seed Bug 16: `select { default: }` is not a preemption point.
    let p = optimized(&spinner_ending_in("select default -> loop"));
    assert_eq!(hoists(&p), vec![hoist("main", "g", "loop")]);
}

#[test]
fn heap_get_and_set_hoist() {
    let p = optimized(&spinner_with(
        "set %o, 1, %v\n    %w = get %o, 1\n    %q = getref %o, 2\n    setref %o, 3, %q\n    %l = len %o",
    ));
    assert_eq!(hoists(&p), vec![hoist("main", "g", "loop")]);
}

#[test]
fn instructions_that_may_panic_do_not_block() {
    let p = optimized(&spinner_with(
        "%d = div 10, %v\n    %e = rem %v, 3\n    assert 1, \"fine\"",
    ));
    assert_eq!(hoists(&p), vec![hoist("main", "g", "loop")]);
}

#[test]
fn ref_global_store_of_another_global_hoists_with_its_type() {
    let src = "\
global @g: i64 = 0
global @p: ref

func @main() {
loop:
    %v = load @g
    %q = load @p
    store @p, %q
    br %v, out, loop
out:
    ret
}
";
    let p = optimized(src);
    assert_eq!(hoists(&p), vec![hoist("main", "g", "loop")]);
    assert_eq!(plain_loads(&p, "main", "p"), 1);

    let src = "\
global @p: ref

func @main() {
    %n = const 0
loop:
    %q = load @p
    %z = eq %q, nil
    %n = add %n, 1
    %c = lt %n, 3
    br %c, loop, out
out:
    ret
}
";
    let p = optimized(src);
    assert_eq!(hoists(&p), vec![hoist("main", "p", "loop")]);
    let f = func(&p, "main");
    let h = hoisted_loads(f).next().unwrap();
    assert_eq!(f.regs[h.dst.index()].ty, Some(Type::Ref));
    assert_eq!(f.reg_name(h.dst), "p.licm");
}

#[test]
fn goexit_and_panic_on_exit_paths_are_not_in_the_loop() {
    // A block ending in goexit or panic has no successor, so it is never
    // part of a natural loop: it ends the loop rather than re-entering it.
    let src = "\
global @g: i64 = 0

func @main() {
loop:
    %v = load @g
    %w = eq %v, 7
    br %w, die, next
next:
    %x = eq %v, 8
    br %x, quit, again
again:
    br %v, out, loop
die:
    panic \"seven\"
quit:
    goexit
out:
    ret
}
";
    let p = optimized(src);
    assert_eq!(hoists(&p), vec![hoist("main", "g", "loop")]);
}

#[test]
fn all_loads_of_a_global_share_one_register_and_keep_their_spans() {
    let src = "\
global @g: i64 = 0
global @h: i64 = 0

func @main() {
    %n = const 0
loop:
    %a = load @g
    %b = load @h
    %c = load @g
    %n = add %n, 1
    %t = lt %n, 4
    br %t, loop, out
out:
    ret
}
";
    let before = prepare(src);
    let p = optimized(src);
    assert_eq!(
        hoists(&p),
        vec![hoist("main", "g", "loop"), hoist("main", "h", "loop")]
    );
    let f = func(&p, "main");
    let loop_block = &f.blocks[1];
    assert_eq!(loop_block.label.as_deref(), Some("loop"));
    let text: Vec<String> = loop_block.insts[..3]
        .iter()
        .map(|i| ir::printer::inst(&p, f, &i.kind))
        .collect();
    assert_eq!(
        text,
        [
            "%a = copy %g.licm",
            "%b = copy %h.licm",
            "%c = copy %g.licm"
        ]
    );
    // Spans stay where the source wrote the loads; the hoisted load points
    // at the first of them.
    let orig = &func(&before, "main").blocks[1].insts;
    for (new, old) in loop_block.insts.iter().zip(orig) {
        assert_eq!(new.span.key(), old.span.key());
    }
    let pre = &f.blocks[0].insts;
    assert_eq!(pre[1].span.key(), orig[0].span.key());
    assert_eq!(pre[2].span.key(), orig[1].span.key());
}

// ---------------------------------------------------------------------------
// Loop shapes and pre-headers

#[test]
fn multiple_latches() {
    let src = "\
global @g: i64 = 0

func @main() {
    %n = const 0
    jmp loop
loop:
    %v = load @g
    %n = add %n, 1
    %a = lt %n, 3
    br %a, loop, second
second:
    %b = lt %n, 6
    br %b, loop, third
third:
    %c = lt %n, 9
    br %c, loop, out
out:
    ret
}
";
    let p = optimized(src);
    assert_eq!(hoists(&p), vec![hoist("main", "g", "loop")]);
    let f = func(&p, "main");
    let cfg = Cfg::new(f);
    let lp = &cfg.loops[0];
    assert_eq!(lp.latches.len(), 3);
    // The pre-header (the entry block, reused) is the header's only other
    // predecessor.
    let pre = hoisted_loads(f).next().unwrap().block;
    let entries: Vec<_> = cfg.preds[lp.header.index()]
        .iter()
        .filter(|p| !lp.latches.contains(p))
        .copied()
        .collect();
    assert_eq!(entries, vec![pre]);
    assert_eq!(cfg.succs[pre.index()], vec![lp.header]);
    assert_eq!(cfg.idom[lp.header.index()], Some(pre));
    assert_eq!(pre, BlockId::new(0));
}

#[test]
fn latch_falling_through_into_the_header_gets_a_jump() {
    // Rotated loop: the body sits before the header and falls into it. The
    // header has two entries, so a pre-header is made, and it lands between
    // the latch and the header.
    let src = "\
global @g: i64 = 0

func @main() {
    %n = const 0
    br %n, head, alt
alt:
    %n = const 1
    jmp head
body:
    %v = load @g
    %n = add %n, %v
head:
    %c = lt %n, 5
    br %c, body, out
out:
    ret
}
";
    let p = optimized(src);
    let expected = "\
global @g: i64 = 0

func @main() {
    %n = const 0
    br %n, head.preheader, alt
alt:
    %n = const 1
    jmp head.preheader
body:
    %v = copy %g.licm
    %n = add %n, %v
    jmp head
head.preheader:
    %g.licm = load @g
    jmp head
head:
    %c = lt %n, 5
    br %c, body, out
out:
    ret
}
";
    assert_eq!(ir::print(&p), expected);
}

#[test]
fn existing_preheader_is_reused() {
    let src = "\
global @g: i64 = 0

func @main() {
    %n = const 0
    jmp loop
loop:
    %v = load @g
    %n = add %n, 1
    %c = lt %n, %v
    br %c, loop, out
out:
    ret
}
";
    let before = prepare(src);
    let p = optimized(src);
    let f = func(&p, "main");
    assert_eq!(f.blocks.len(), func(&before, "main").blocks.len());
    assert_eq!(
        ir::printer::inst(&p, f, &f.blocks[0].insts[1].kind),
        "%g.licm = load @g"
    );
    assert_eq!(hoists(&p), vec![hoist("main", "g", "loop")]);
}

#[test]
fn preheader_candidate_ending_in_a_runtime_op_is_not_reused() {
    // The load must not move in front of the select, a preemption point.
    let src = "\
global @g: i64 = 0

func @main() {
    %c = chan 1
    send %c, 1
    select recv %c -> loop
loop:
    %v = load @g
    br %v, out, loop
out:
    ret
}
";
    let p = optimized(src);
    let f = func(&p, "main");
    assert_eq!(f.blocks[1].label.as_deref(), Some("loop.preheader"));
    assert_eq!(
        ir::printer::terminator(f, &f.blocks[0].term.as_ref().unwrap().kind),
        "select recv %c -> loop.preheader"
    );
}

#[test]
fn several_entry_edges_are_all_retargeted() {
    let src = "\
global @g: i64 = 0

func @main() {
    %c = chan 1
    %x = const 1
    br %x, a, b
a:
    jmp loop
b:
    send %c, 3
    select recv %c into %m -> loop, default -> loop
loop:
    %v = load @g
    br %v, out, loop
out:
    ret
}
";
    let p = optimized(src);
    let text = ir::print(&p);
    assert!(text.contains("a:\n    jmp loop.preheader\n"), "{text}");
    assert!(
        text.contains("select recv %c into %m -> loop.preheader, default -> loop.preheader\n"),
        "{text}"
    );
    assert_eq!(hoists(&p), vec![hoist("main", "g", "loop")]);
}

#[test]
fn names_are_fresh_when_taken() {
    let src = "\
global @g: i64 = 0

func @main() {
    %g.licm = const 5
    %x = const 0
    br %x, loop.preheader, loop.preheader.1
loop.preheader:
    jmp out
loop.preheader.1:
    jmp loop
loop:
    %v = load @g
    br %v, out, loop
out:
    print \"{}\", %g.licm
    ret
}
";
    let p = optimized(src);
    let f = func(&p, "main");
    // `loop.preheader.1` only jumps to the header and is its only entry:
    // it is reused, whatever its name, and no block is made.
    assert!(f
        .blocks
        .iter()
        .all(|b| b.label.as_deref() != Some("loop.preheader.2")));
    let h = hoisted_loads(f).next().unwrap();
    assert_eq!(f.reg_name(h.dst), "g.licm.1");
    assert_eq!(f.block_name(h.block), "loop.preheader.1");

    // Force a new block by giving the header two entries.
    let src = "\
global @g: i64 = 0

func @main() {
    %x = const 0
    br %x, loop, loop.preheader
loop.preheader:
    jmp loop
loop:
    %v = load @g
    br %v, out, loop
out:
    ret
}
";
    let p = optimized(src);
    let f = func(&p, "main");
    let h = hoisted_loads(f).next().unwrap();
    assert_eq!(f.block_name(h.block), "loop.preheader.1");
}

#[test]
fn loop_header_as_entry_block_keeps_the_entry_first() {
    let src = "\
global @g: i64 = 0
global @k: i64 = 0

func @main() {
top:
    %v = load @g
    %k = load @k
    %k = add %k, 1
    store @k, %k
    %c = lt %k, 3
    br %c, top, out
out:
    print \"{} {}\", %v, %k
    ret
}
";
    let p = optimized(src);
    let f = func(&p, "main");
    assert_eq!(f.blocks[0].label.as_deref(), Some("top.preheader"));
    assert_eq!(f.blocks[1].label.as_deref(), Some("top"));
    let cfg = Cfg::new(f);
    assert_eq!(cfg.loops[0].header, BlockId::new(1));
    assert_eq!(cfg.preds[1], vec![BlockId::new(0), BlockId::new(1)]);
    // @k is stored in the loop and stays; @g leaves.
    assert_eq!(hoists(&p), vec![hoist("main", "g", "top")]);
    assert_eq!(plain_loads(&p, "main", "k"), 1);
}

#[test]
fn self_loop_in_a_function_with_parameters() {
    let src = "\
global @g: i64 = 0

func @wait(%limit: i64) -> i64 {
    %n = const 0
spin:
    %v = load @g
    %n = add %n, 1
    %c = lt %n, %limit
    br %c, spin, out
out:
    ret %v
}

func @main() {
    %r = call @wait(3)
    ret
}
";
    let p = optimized(src);
    assert_eq!(hoists(&p), vec![hoist("wait", "g", "spin")]);
    assert_eq!(func(&p, "wait").params, vec![ir::Reg::new(0)]);
}

// ---------------------------------------------------------------------------
// Nests

const NEST: &str = "\
global @a: i64 = 1

func @f() {
    ret
}

func @main() {
    %i = const 0
    %s = const 0
outer:
    %j = const 0
    OUTER_LINE
inner:
    %x = load @a
    %s = add %s, %x
    %j = add %j, 1
    %t = lt %j, 3
    br %t, inner, next
next:
    %i = add %i, 1
    %u = lt %i, 3
    br %u, outer, done
done:
    ret
}
";

#[test]
fn nested_inner_hoisted_and_outer_rehoisted() {
    let p = optimized(&NEST.replace("OUTER_LINE", "%w = add %j, 1"));
    assert_eq!(hoists(&p), vec![hoist("main", "a", "outer")]);
    let f = func(&p, "main");
    // The load executed is before the outer loop; inside it, only copies.
    let cfg = Cfg::new(f);
    let h = hoisted_loads(f).next().unwrap();
    assert!(!cfg.loops.iter().any(|l| l.contains(h.block)));
    assert_eq!(plain_loads(&p, "main", "a"), 1);
}

#[test]
fn nested_outer_with_a_call_keeps_the_inner_hoist() {
    let p = optimized(&NEST.replace("OUTER_LINE", "call @f()"));
    assert_eq!(hoists(&p), vec![hoist("main", "a", "inner")]);
    let f = func(&p, "main");
    let cfg = Cfg::new(f);
    let h = hoisted_loads(f).next().unwrap();
    // The hoisted load stays in the inner pre-header (`outer` itself, which
    // only falls into `inner`), inside the outer loop.
    assert_eq!(f.block_name(h.block), "outer");
    let outer = cfg
        .loops
        .iter()
        .find(|l| f.block_name(l.header) == "outer")
        .unwrap();
    assert!(outer.contains(h.block));
    let inner = cfg
        .loops
        .iter()
        .find(|l| f.block_name(l.header) == "inner")
        .unwrap();
    assert!(!inner.contains(h.block));
}

#[test]
fn nested_outer_storing_the_global_keeps_the_inner_hoist() {
    let p = optimized(&NEST.replace("OUTER_LINE", "store @a, %i"));
    assert_eq!(hoists(&p), vec![hoist("main", "a", "inner")]);
}

#[test]
fn nested_inner_with_a_call_blocks_both() {
    let src = NEST
        .replace("OUTER_LINE", "%w = add %j, 1")
        .replace("    %x = load @a\n", "    %x = load @a\n    call @f()\n");
    assert_unchanged(&src);
}

#[test]
fn load_only_in_the_outer_loop_is_hoisted_there() {
    let src = "\
global @a: i64 = 1

func @main() {
    %i = const 0
outer:
    %x = load @a
    %j = const 0
inner:
    %j = add %j, 1
    %t = lt %j, 3
    br %t, inner, next
next:
    %i = add %i, %x
    %u = lt %i, 3
    br %u, outer, done
done:
    ret
}
";
    let p = optimized(src);
    assert_eq!(hoists(&p), vec![hoist("main", "a", "outer")]);
    // The inner loop had nothing to hoist: no pre-header made for it.
    assert!(func(&p, "main")
        .blocks
        .iter()
        .all(|b| b.label.as_deref() != Some("inner.preheader")));
}

#[test]
fn sibling_loops_get_their_own_registers() {
    let src = "\
global @g: i64 = 0

func @main() {
    %n = const 0
first:
    %v = load @g
    %n = add %n, 1
    %c = lt %n, 3
    br %c, first, mid
mid:
    %n = const 0
second:
    %w = load @g
    %n = add %n, 1
    %d = lt %n, 3
    br %d, second, out
out:
    ret
}
";
    let p = optimized(src);
    assert_eq!(
        hoists(&p),
        vec![hoist("main", "g", "first"), hoist("main", "g", "second")]
    );
    let f = func(&p, "main");
    let names: Vec<&str> = hoisted_loads(f).map(|h| f.reg_name(h.dst)).collect();
    assert_eq!(names, ["g.licm", "g.licm.1"]);
}

// ---------------------------------------------------------------------------
// Queries

#[test]
fn loads_hoisted_out_of_names_the_loops_around_a_block() {
    let p = optimized(&NEST.replace("OUTER_LINE", "%w = add %j, 1"));
    let f = func(&p, "main");
    let cfg = Cfg::new(f);
    let block = |name: &str| {
        BlockId::new(
            f.blocks
                .iter()
                .position(|b| b.label.as_deref() == Some(name))
                .unwrap(),
        )
    };
    // Spinning in the inner loop or in the rest of the outer one: @a is
    // read from a register in both.
    for name in ["inner", "next", "outer"] {
        let found = loads_hoisted_out_of(f, &cfg, block(name));
        assert_eq!(found.len(), 1, "{name}");
        assert_eq!(p.global(found[0].global).name, "a");
    }
    assert!(loads_hoisted_out_of(f, &cfg, block("done")).is_empty());
}

#[test]
fn hoisted_load_query_lists_only_marked_plain_loads() {
    let p = optimized(&NEST.replace("OUTER_LINE", "%w = add %j, 1"));
    let f = func(&p, "main");
    let marked = f
        .blocks
        .iter()
        .flat_map(|b| &b.insts)
        .filter(|i| i.hoisted.0.is_some())
        .count();
    // The load in the outer pre-header and the copy in the inner one.
    assert_eq!(marked, 2);
    assert_eq!(hoisted_loads(f).count(), 1);
    for h in hoisted_loads(f) {
        let inst = &f.blocks[h.block.index()].insts[h.index];
        assert!(matches!(
            inst.kind,
            InstKind::Load {
                op: Opcode::Load,
                ..
            }
        ));
        assert!(matches!(inst.hoisted, Hoisted(Some(_))));
    }
}

#[test]
fn stats_count_what_was_done() {
    let mut p = prepare(&NEST.replace("OUTER_LINE", "%w = add %j, 1"));
    let stats = opt::licm::run(&mut p);
    assert_eq!(
        stats,
        opt::LicmStats {
            loops: 2,
            hoisted: 2,
            loads_replaced: 2,
            preheaders_created: 0,
        }
    );
    let mut p = prepare(BUG1);
    let stats = opt::licm::run(&mut p);
    assert_eq!(
        stats,
        opt::LicmStats {
            loops: 1,
            hoisted: 1,
            loads_replaced: 1,
            preheaders_created: 1,
        }
    );
}

// ---------------------------------------------------------------------------
// Every PIR program of the repository

/// The `.pir` files under `dir`, recursively.
fn pir_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            pir_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "pir") {
            out.push(path);
        }
    }
}

#[test]
fn every_valid_program_of_the_repository_optimises_cleanly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    pir_files(&root.join("examples"), &mut files);
    pir_files(&root.join("jit/tests/golden"), &mut files);
    let mut checked = 0;
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap_or_default();
        let Ok(mut p) = ir::parse(&src) else { continue };
        if ir::verify(&mut p).is_err() {
            continue;
        }
        let before = p.clone();
        opt::optimize(&mut p, 0);
        assert_eq!(ir::print(&p), ir::print(&before), "{}", path.display());
        opt::optimize(&mut p, 1);
        check_output(&p);
        checked += 1;
    }
    assert!(
        checked > 0,
        "no PIR programs found under {}",
        root.display()
    );
}
