//! The parser's own tests: round trips, error positions, allocations.

use super::*;
use crate::ir::print;

const SAMPLE: &str = r#"set procs = 1            ; optional header settings
set preempt = async
set gc_percent = 100
set opt = 1

global @done: i64 = 0
global @root: ref        ; refs start as nil

func @spinner() {
loop:
%v = load @done      ; plain load
br %v, out, loop
out:
print "done!"
ret
}

func @main() {
spawn @spinner()
store @done, 1
%c = chan 0
select recv %c into %x -> a, send %c, 5 -> a, default -> a
a:
%r = call @spinner2(1, -2, nil)
print "flag set {} {}", %r, %c
ret
}

func @spinner2(%a: i64, %b: i64, %p: ref) -> i64 {
%s = add %a, %b
%q = cas.atomic @done, 0, 1
ccall spin, 10
ccall ignore_preempt_signal
set %p, 0, 1
ret %s
}
"#;

#[test]
fn sample_parses_and_round_trips() {
    let p = parse(SAMPLE).unwrap();
    assert_eq!(p.funcs.len(), 3);
    assert_eq!(p.globals.len(), 2);
    assert_eq!(p.funcs[0].blocks.len(), 2);
    let text = print(&p);
    let q = parse(&text).unwrap_or_else(|e| panic!("{}", e.render("printed", &text)));
    assert_eq!(p, q);
    assert_eq!(text, print(&q));
}

#[test]
fn first_error_wins_and_names_position() {
    let e = parse("func @f() {\n    %x = frob 1\n}\n").unwrap_err();
    assert_eq!(
        (e.span.key(), e.message.as_str()),
        ((2, 10), "unknown instruction 'frob'")
    );
    let e = parse("func @f() {\n    jmp nowhere\n}\n").unwrap_err();
    assert_eq!(e.span.key(), (2, 9));
    let e = parse("func @f() {\n}\nfunc @f() {\n}\n").unwrap_err();
    assert_eq!(e.span.key(), (3, 6));
    assert!(e.message.contains("duplicate function"), "{}", e.message);
    let e = parse("global @f: i64\nfunc @f() {\n}\n").unwrap_err();
    assert_eq!(e.span.key(), (2, 6));
}

/// One function of `n` instructions, each defining a new register from
/// earlier ones, with loads, stores, constants and comments among the
/// arithmetic.
fn straight_line(n: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("global @g: i64 = 1\n\nfunc @main() {\n    %x0 = const 1\n");
    for j in 1..n {
        match j % 5 {
            0 => writeln!(s, "    %x{j} = load @g").unwrap(),
            1 => writeln!(s, "    store @g, %x{}\n    %x{j} = copy %x{}", j - 1, j / 2).unwrap(),
            2 => writeln!(s, "    %x{j} = const {j} ; a comment").unwrap(),
            _ => writeln!(s, "    %x{j} = add %x{}, %x{}", j - 1, j / 2).unwrap(),
        }
    }
    s.push_str("    ret\n}\n");
    s
}

/// Allocations made on this thread while parsing `src`, and the
/// program's instruction count.
fn allocations_to_parse(src: &str) -> (u64, usize) {
    let before = crate::alloc_count::this_thread();
    let prog = parse(src).expect("the program parses");
    (
        crate::alloc_count::this_thread() - before,
        prog.inst_count(),
    )
}

/// The parser allocates per function and per block, never per token or
/// per instruction: the allocations made while parsing a straight-line
/// function stay nearly flat as it grows sixteen-fold. The buffers that
/// grow with the text (the register table, the instruction list) grow
/// by doubling, a handful of allocations per doubling; a `String` per
/// register name or a vector of every token would add thousands.
#[test]
fn parsing_allocates_per_function_not_per_instruction() {
    let (small, small_insts) = allocations_to_parse(&straight_line(1_000));
    let (large, large_insts) = allocations_to_parse(&straight_line(16_000));
    assert!(
        large_insts >= 16 * small_insts - 16,
        "{small_insts} {large_insts}"
    );
    assert!(
        large <= small + 100,
        "{small} allocations for {small_insts} instructions, {large} for {large_insts}"
    );
}

#[test]
fn invalid_utf8_is_located() {
    let e = parse_bytes(b"func @f() {\n  ab\xff\n}").unwrap_err();
    assert_eq!(e.span.key(), (2, 5));
}

#[test]
fn the_prescan_in_pieces_finds_what_one_pass_finds() {
    // Items of every kind the prescan meets, with lines a piece may be cut
    // before: blank and comment lines, CRLF endings, a keyword with no
    // name, names defined twice, a BOM, instructions starting with `f` or
    // `g` (`get`); the ids, the first definitions' places and the places
    // where pieces may start must not depend on the cuts.
    let mut text = String::from("\u{feff}; header\r\nglobal @g0: i64 = 1\r\n\r\n");
    for k in 0..40 {
        text.push_str(&format!(
            "func @f{k}() {{\n    %o = new 1\n    %x = get %o, 0\n    ret\n}}\n; {k}\n"
        ));
        if k % 7 == 0 {
            text.push_str(&format!(
                "global @g{k}: i64 = {k}\nfunc\n  func @f{} () {{\n}}\n",
                k / 2
            ));
        }
    }
    let scan = |threads| {
        let mut p = Parser::new(&text);
        let funcs = p.prescan(&text, threads);
        let mut ids: Vec<_> = p
            .func_ids
            .iter()
            .map(|(n, (id, s))| (*n, id.index(), s.key()))
            .collect();
        let mut globals: Vec<_> = p
            .global_ids
            .iter()
            .map(|(n, (id, s))| (*n, id.index(), s.key()))
            .collect();
        ids.sort();
        globals.sort();
        (funcs, ids, globals)
    };
    let one = scan(Threads::ONE);
    assert_eq!(
        one.0.len(),
        40 + 6,
        "every line `func @name`, duplicates too"
    );
    assert_eq!(one.2.len(), 6, "@g0 twice");
    for n in [2, 3, 5] {
        assert_eq!(scan(Threads::fixed(n)), one, "{n} threads");
    }
}
