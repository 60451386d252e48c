//! The reference interpreter against the language contract (IR.md): exact
//! results, exact fault reports, deep stacks, the heap, the resumable
//! machine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use preempt_jit::fault::Fault;
use preempt_jit::interp::{
    run_program, ChanId, End, Event, Interp, InterpConfig, Outcome, Request, SelectArm, StopAt,
    StopRequested, Value,
};
use preempt_jit::ir::{self, FuncId, Opcode};

/// Parses and verifies: every program here is valid PIR, as every program
/// the interpreter is given will be.
fn parse(src: &str) -> ir::Program {
    let mut p = ir::parse(src).unwrap_or_else(|e| panic!("{}", e.render("test.pir", src)));
    ir::verify(&mut p).unwrap_or_else(|e| panic!("{}", e.render("test.pir", src)));
    p
}

fn run_with(src: &str, cfg: &InterpConfig) -> (String, Outcome) {
    let prog = parse(src);
    let mut out = Vec::new();
    let outcome = run_program(&prog, cfg, &mut out);
    (String::from_utf8(out).unwrap(), outcome)
}

fn run(src: &str) -> (String, Outcome) {
    run_with(src, &InterpConfig::default())
}

/// Runs a program that must succeed; its stdout.
fn stdout_of(src: &str) -> String {
    let (out, o) = run(src);
    assert_eq!(o.status, 0, "{:?}\nstdout:\n{out}", o.report);
    assert_eq!(o.end, End::Returned);
    assert_eq!(o.report, None);
    out
}

/// Runs a program that must fault; (stdout, report).
fn fault_of(src: &str) -> (String, String, Fault) {
    let (out, o) = run(src);
    assert_eq!(o.status, 1, "{o:?}");
    let End::Faulted(f) = o.end else {
        panic!("not a fault: {o:?}")
    };
    (out, o.report.expect("a report"), f)
}

/// `main` printing each expression `%r = OP A, B` as its own line.
fn eval_binary(cases: &[(&str, i64, i64)]) -> Vec<String> {
    let mut src = String::from("func @main() {\n");
    for (op, a, b) in cases {
        src.push_str(&format!(
            "    %a = const {a}\n    %b = const {b}\n    %r = {op} %a, %b\n    print \"{{}}\", %r\n"
        ));
    }
    src.push_str("    ret\n}\n");
    stdout_of(&src).lines().map(str::to_string).collect()
}

#[test]
fn division_truncates_and_never_traps_on_min_by_minus_one() {
    let min = i64::MIN;
    let got = eval_binary(&[
        ("div", min, -1),
        ("rem", min, -1),
        ("div", -7, 2),
        ("rem", -7, 2),
        ("div", 7, -2),
        ("rem", 7, -2),
        ("div", -7, -2),
        ("rem", -7, -2),
        ("div", min, 1),
        ("rem", min, 3),
        ("div", i64::MAX, min),
    ]);
    let want = [
        min.to_string(),
        "0".into(),
        "-3".into(),
        "-1".into(),
        "-3".into(),
        "1".into(),
        "3".into(),
        "-1".into(),
        min.to_string(),
        "-2".into(),
        "0".into(),
    ];
    assert_eq!(got, want);
}

#[test]
fn arithmetic_wraps() {
    let (min, max) = (i64::MIN, i64::MAX);
    let got = eval_binary(&[
        ("add", max, 1),
        ("sub", min, 1),
        ("mul", max, 2),
        ("mul", min, -1),
        ("mul", 0x1_0000_0001, 0x1_0000_0001),
    ]);
    assert_eq!(
        got,
        [
            min.to_string(),
            max.to_string(),
            "-2".to_string(),
            min.to_string(),
            ((0x1_0000_0001i64).wrapping_mul(0x1_0000_0001)).to_string(),
        ]
    );
    let out = stdout_of(
        "func @main() {\n    %m = const -0x8000_0000_0000_0000\n    %n = neg %m\n    %z = not 0\n    %y = not %m\n    %q = neg 5\n    print \"{} {} {} {}\", %n, %z, %y, %q\n    ret\n}\n",
    );
    assert_eq!(out, format!("{} -1 {} -5\n", i64::MIN, i64::MAX));
}

#[test]
fn shifts_use_the_count_mod_64() {
    let got = eval_binary(&[
        ("shl", 1, 64),
        ("shl", 1, -1),
        ("shl", 3, 65),
        ("shl", 1, 63),
        ("shr", -1, 60),
        ("shr", -1, 64),
        ("shr", i64::MIN, -1),
        ("sar", -1, 63),
        ("sar", i64::MIN, -1),
        ("sar", -16, 2),
        ("sar", 16, 128),
        ("shr", 16, 2),
    ]);
    assert_eq!(
        got,
        [
            "1".to_string(),
            i64::MIN.to_string(),
            "6".into(),
            i64::MIN.to_string(),
            "15".into(),
            "-1".into(),
            "1".into(),
            "-1".into(),
            "-1".into(),
            "-4".into(),
            "16".into(),
            "4".into(),
        ]
    );
}

#[test]
fn logic_and_signed_comparisons() {
    let got = eval_binary(&[
        ("and", 0b1100, 0b1010),
        ("or", 0b1100, 0b1010),
        ("xor", 0b1100, 0b1010),
        ("lt", -1, 0),
        ("lt", 0, -1),
        ("le", 5, 5),
        ("gt", i64::MIN, i64::MAX),
        ("ge", i64::MAX, i64::MIN),
        ("eq", 3, 3),
        ("ne", 3, 3),
        ("eq", -1, 1),
        ("ne", -1, 1),
    ]);
    assert_eq!(
        got,
        ["8", "14", "6", "1", "0", "1", "0", "1", "1", "0", "0", "1"]
    );
}

#[test]
fn refs_compare_by_identity() {
    let out = stdout_of(
        r#"func @main() {
    %a = new 1
    %b = new 1
    %c = copy %a
    %n = copy nil
    %e1 = eq %a, %b
    %e2 = eq %a, %c
    %e3 = ne %a, %b
    %e4 = eq %n, nil
    %e5 = eq %a, nil
    %g = getref %a, 0
    %e6 = eq %g, nil
    print "{} {} {} {} {} {}", %e1, %e2, %e3, %e4, %e5, %e6
    ret
}
"#,
    );
    assert_eq!(out, "0 1 1 1 0 1\n");
}

#[test]
fn branches_and_fall_through() {
    let out = stdout_of(
        r#"func @main() {
    %i = const 0
    %s = const 0
loop:
    %s = add %s, %i
    %i = add %i, 1
    %c = lt %i, 10
    br %c, loop, after
after:
    print "sum {}", %s
first:
    print "first"
second:
    br -3, third, never
never:
    print "never"
third:
    print "third"
    ret
}
"#,
    );
    assert_eq!(out, "sum 45\nfirst\nthird\n");
}

#[test]
fn unlabelled_blocks_after_terminators_are_reachable_only_by_label() {
    let out = stdout_of(
        r#"func @main() {
    jmp end
    print "dead"
end:
    print "end"
    ret
}
"#,
    );
    assert_eq!(out, "end\n");
}

#[test]
fn calls_pass_arguments_and_return_values() {
    let out = stdout_of(
        r#"func @fib(%n: i64) -> i64 {
    %small = lt %n, 2
    br %small, base, rec
base:
    ret %n
rec:
    %a = sub %n, 1
    %x = call @fib(%a)
    %b = sub %n, 2
    %y = call @fib(%b)
    %r = add %x, %y
    ret %r
}

func @pick(%c: i64, %a: ref, %b: ref) -> ref {
    br %c, first, second
first:
    ret %a
second:
    ret %b
}

func @noisy(%x: i64) {
    print "noisy {}", %x
    ret
}

func @main() {
    %f = call @fib(20)
    print "fib(20) = {}", %f
    %a = new 1
    set %a, 0, 11
    %b = new 1
    set %b, 0, 22
    %p = call @pick(0, %a, %b)
    %v = get %p, 0
    print "picked {}", %v
    call @noisy(7)
    %ignored = call @fib(3)
    ret
}
"#,
    );
    assert_eq!(out, "fib(20) = 6765\npicked 22\nnoisy 7\n");
}

#[test]
fn prints_format_every_type() {
    let out = stdout_of(
        r#"func @main() {
    %r = new 0
    %n = copy nil
    print "no placeholders"
    print "{} and {} and {}", -42, %r, %n
    print "a\nb {}\tc", 1
    print "{}{}", 1, 2
    print ""
    print "braces {x} {{}} {}", 9, 8
    ret
}
"#,
    );
    assert_eq!(
        out,
        "no placeholders\n-42 and <ref> and nil\na\nb 1\tc\n12\n\nbraces {x} {9} 8\n"
    );
}

#[test]
fn globals_plain_and_atomic() {
    let out = stdout_of(
        r#"global @x: i64 = 40
global @y: i64
global @h: i64 = -0x10
global @root: ref

func @bump() {
    %v = load @x
    %v = add %v, 1
    store @x, %v
    ret
}

func @main() {
    call @bump()
    call @bump()
    %x = load @x
    %y = load.atomic @y
    %h = load @h
    print "{} {} {}", %x, %y, %h
    %n = add.atomic @y, 5
    %m = add.atomic @y, -2
    print "add returns the new value: {} {}", %n, %m
    %ok = cas.atomic @y, 3, 10
    %no = cas.atomic @y, 3, 20
    %y2 = load.atomic @y
    print "cas: {} {} {}", %ok, %no, %y2
    store.atomic @y, 0x7fff_ffff_ffff_ffff
    %w = add.atomic @y, 1
    print "wraps: {}", %w
    %r0 = load @root
    %o = new 2
    set %o, 1, 99
    store @root, %o
    %r1 = load @root
    %v = get %r1, 1
    %same = eq %r1, %o
    print "{} {} {}", %r0, %v, %same
    ret
}
"#,
    );
    assert_eq!(
        out,
        format!(
            "42 0 -16\nadd returns the new value: 5 3\ncas: 1 0 10\nwraps: {}\nnil 99 1\n",
            i64::MIN
        )
    );
}

#[test]
fn heap_slots_are_typed_by_their_last_write() {
    let out = stdout_of(
        r#"func @main() {
    %o = new 3
    %n = len %o
    %a = get %o, 0
    %b = getref %o, 1
    set %o, 0, 5
    %c = get %o, 0
    %inner = new 1
    setref %o, 1, %inner
    %d = getref %o, 1
    %same = eq %d, %inner
    setref %o, 2, nil
    %e = getref %o, 2
    set %o, 1, 6
    %f = get %o, 1
    print "{} {} {} {} {} {} {} {}", %n, %a, %b, %c, %same, %d, %e, %f
    %z = new 0
    %zl = len %z
    print "{}", %zl
    ret
}
"#,
    );
    assert_eq!(out, "3 0 nil 5 1 <ref> nil 6\n0\n");
}

const FAULT_HEADER: &str = "func @main() {\n";

/// A one-instruction-fault program: `body` (indented) inside `@main`.
fn main_fault(body: &str) -> (String, Fault) {
    let src = format!("{FAULT_HEADER}{body}    ret\n}}\n");
    let (_, report, f) = fault_of(&src);
    (report, f)
}

#[test]
fn every_runtime_panic_has_go_wording() {
    let cases: &[(&str, &str)] = &[
        (
            "    %z = const 0\n    %x = div 1, %z\n",
            "panic: runtime error: integer divide by zero",
        ),
        (
            "    %z = const 0\n    %x = rem 1, %z\n",
            "panic: runtime error: integer divide by zero",
        ),
        (
            "    %o = new 3\n    %x = get %o, 5\n",
            "panic: runtime error: index out of range [5] with length 3",
        ),
        (
            "    %o = new 3\n    set %o, -1, 0\n",
            "panic: runtime error: index out of range [-1] with length 3",
        ),
        (
            "    %o = new 0\n    %x = getref %o, 0\n",
            "panic: runtime error: index out of range [0] with length 0",
        ),
        (
            "    %o = new 2\n    setref %o, 2, nil\n",
            "panic: runtime error: index out of range [2] with length 2",
        ),
        (
            "    %o = copy nil\n    %x = len %o\n",
            "panic: runtime error: nil dereference",
        ),
        (
            "    %o = copy nil\n    %x = get %o, 0\n",
            "panic: runtime error: nil dereference",
        ),
        (
            "    %o = copy nil\n    set %o, 99, 0\n",
            "panic: runtime error: nil dereference",
        ),
        (
            "    %o = copy nil\n    setref %o, -5, nil\n",
            "panic: runtime error: nil dereference",
        ),
        (
            "    %o = new 1\n    setref %o, 0, nil\n    %x = get %o, 0\n",
            "panic: runtime error: slot type mismatch",
        ),
        (
            "    %o = new 1\n    set %o, 0, 0\n    %x = getref %o, 0\n",
            "panic: runtime error: slot type mismatch",
        ),
        (
            "    %n = const -3\n    %o = new %n\n",
            "panic: runtime error: new: negative size -3",
        ),
        (
            "    %o = new 0x7fff_ffff_ffff_ffff\n",
            "fatal error: runtime: out of memory",
        ),
        (
            "    %c = eq 1, 2\n    assert %c, \"one is \\\"two\\\"\"\n",
            "panic: assertion failed: one is \"two\"",
        ),
        ("    panic \"boom\\tbang\"\n", "panic: boom\tbang"),
        (
            "    goexit\n",
            "fatal error: no goroutines (main called runtime.Goexit) - deadlock!",
        ),
    ];
    for (body, first_line) in cases {
        let (report, _) = main_fault(body);
        assert_eq!(report.lines().next(), Some(*first_line), "{body}\n{report}");
    }
}

#[test]
fn bounds_are_checked_before_slot_types() {
    let (report, f) = main_fault("    %o = new 1\n    setref %o, 0, nil\n    %x = get %o, 1\n");
    assert_eq!(f, Fault::IndexOutOfRange { index: 1, len: 1 });
    assert!(report.starts_with("panic: runtime error: index out of range [1] with length 1\n"));
}

#[test]
fn traceback_names_function_block_and_position() {
    let src = "func @get(%r: ref, %i: i64) -> i64 {
    %v = get %r, %i
    ret %v
}

func @walk(%r: ref) -> i64 {
    %i = const 0
loop:
    %v = call @get(%r, %i)
    %i = add %i, 1
    jmp loop
}

func @main() {
    %r = new 3
    %v = call @walk(%r)
    ret
}
";
    let (out, report, f) = fault_of(src);
    assert_eq!(out, "");
    assert_eq!(f, Fault::IndexOutOfRange { index: 3, len: 3 });
    assert_eq!(
        report,
        "panic: runtime error: index out of range [3] with length 3

goroutine 1 [running]:
@get in block entry
\tprog.pir:2:5
@walk in block loop
\tprog.pir:9:5
@main in block entry
\tprog.pir:16:5
"
    );
}

#[test]
fn reports_use_the_configured_file_and_unlabelled_block_names() {
    let src = "func @main() {
    jmp over
    print \"dead\"
over:
    %z = const 0
    br %z, skipped, fails
skipped:
    ret
fails:
    print \"before\"
    panic \"stop\"
}
";
    let cfg = InterpConfig {
        file: "dir/x.pir".into(),
        ..InterpConfig::default()
    };
    let (out, o) = run_with(src, &cfg);
    assert_eq!(out, "before\n");
    assert_eq!(
        o.report.as_deref(),
        Some("panic: stop\n\ngoroutine 1 [running]:\n@main in block fails\n\tdir/x.pir:11:5\n")
    );
    assert_eq!(o.status, 1);
}

#[test]
fn output_before_a_fault_is_kept() {
    let (out, report, _) = fault_of(
        "func @main() {\n    print \"one\"\n    print \"two\\nthree\"\n    assert 0, \"zero\"\n    print \"never\"\n    ret\n}\n",
    );
    assert_eq!(out, "one\ntwo\nthree\n");
    assert_eq!(
        report,
        "panic: assertion failed: zero\n\ngoroutine 1 [running]:\n@main in block entry\n\tprog.pir:4:5\n"
    );
}

#[test]
fn main_goexit_has_no_goroutine_to_show() {
    let (out, report, f) =
        fault_of("func @main() {\n    print \"about to Goexit\"\n    goexit\n}\n");
    assert_eq!(f, Fault::MainGoexit);
    assert_eq!(out, "about to Goexit\n");
    assert_eq!(
        report,
        "fatal error: no goroutines (main called runtime.Goexit) - deadlock!\n"
    );
}

const DOWN: &str = "func @down(%n: i64) -> i64 {
    br %n, more, done
more:
    %n = sub %n, 1
    %n = call @down(%n)
    %n = add %n, 1
    ret %n
done:
    ret 0
}

func @main() {
    %d = call @down(1_000_000)
    print \"depth {}\", %d
    ret
}
";

#[test]
fn a_million_frames_fit_the_default_stack() {
    // @down's frame: 32 + 8 (one register) + 8 (one argument) = 48 bytes;
    // a million of them is 48 MB < 64 MiB.
    assert_eq!(stdout_of(DOWN), "depth 1000000\n");
}

#[test]
fn the_limit_is_exact() {
    let prog = parse(DOWN);
    let main = &prog.funcs[prog.main().unwrap().index()];
    let down = &prog.funcs[prog.func_by_name("down").unwrap().index()];
    assert_eq!(preempt_jit::interp::frame_bytes(down), 48);
    assert_eq!(preempt_jit::interp::frame_bytes(main), 48);
    // main + 1_000_001 frames of @down (depth 1_000_000 .. 0).
    let needed = 48 + 48 * 1_000_001;
    for (size, ok) in [(needed, true), (needed - 1, false)] {
        let cfg = InterpConfig {
            stack_size: size,
            ..InterpConfig::default()
        };
        let (_, o) = run_with(DOWN, &cfg);
        assert_eq!(o.status == 0, ok, "stack {size}: {:?}", o.end);
    }
}

const RUNAWAY: &str = "func @f(%n: i64) -> i64 {
    %m = add %n, 1
    %r = call @f(%m)
    ret %r
}

func @main() {
    %r = call @f(0)
    ret
}
";

#[test]
fn runaway_recursion_is_a_stack_overflow() {
    let cfg = InterpConfig {
        stack_size: 1 << 20,
        ..InterpConfig::default()
    };
    let (_, o) = run_with(RUNAWAY, &cfg);
    assert_eq!(o.status, 1);
    assert_eq!(o.end, End::Faulted(Fault::StackOverflow));
    let report = o.report.unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "fatal error: stack overflow");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "goroutine 1 [running]:");
    // The frame that could not be entered, at `func @f`.
    assert_eq!(lines[3], "@f in block entry");
    assert_eq!(lines[4], "\tprog.pir:1:6");
    // Then the calls.
    assert_eq!(lines[5], "@f in block entry");
    assert_eq!(lines[6], "\tprog.pir:3:5");
    // main (48 bytes) + 16383 frames of @f (64 bytes) fill 1 MiB; the
    // 16384th does not: 16385 frames, 100 shown.
    assert!(report.contains("\n...16285 frames elided...\n"), "{report}");
    assert!(report
        .ends_with("@f in block entry\n\tprog.pir:3:5\n@main in block entry\n\tprog.pir:8:5\n"));
    assert_eq!(lines.len(), 3 + 2 * 100 + 1);
}

#[test]
fn runaway_recursion_at_the_default_stack_size() {
    let (_, o) = run(RUNAWAY);
    assert_eq!(o.end, End::Faulted(Fault::StackOverflow));
    assert!(o
        .report
        .unwrap()
        .starts_with("fatal error: stack overflow\n\ngoroutine 1 [running]:\n@f in block entry\n\tprog.pir:1:6\n"));
}

#[test]
fn a_main_frame_larger_than_the_stack_overflows_at_once() {
    let cfg = InterpConfig {
        stack_size: 16,
        ..InterpConfig::default()
    };
    let (out, o) = run_with("func @main() {\n    print \"hi\"\n    ret\n}\n", &cfg);
    assert_eq!(out, "");
    assert_eq!(
        o.report.as_deref(),
        Some("fatal error: stack overflow\n\ngoroutine 1 [running]:\n@main in block entry\n\tprog.pir:1:6\n")
    );
}

#[test]
fn garbage_is_collected_and_live_data_kept() {
    // 400 MiB of garbage in 2 MiB objects, a linked list kept alive.
    let src = r#"global @keep: ref

func @main() {
    %i = const 0
    %list = copy nil
loop:
    %junk = new 131072
    set %junk, 131071, %i
    %node = new 2
    set %node, 0, %i
    setref %node, 1, %list
    %list = copy %node
    %i = add %i, 1
    %c = lt %i, 200
    br %c, loop, done
done:
    store @keep, %list
    %list = copy nil
    gc
    %p = load @keep
    %sum = const 0
walk:
    %end = eq %p, nil
    br %end, out, step
step:
    %v = get %p, 0
    %sum = add %sum, %v
    %p = getref %p, 1
    jmp walk
out:
    print "{}", %sum
    ret
}
"#;
    let prog = parse(src);
    let mut interp = Interp::new(&prog, &InterpConfig::default()).unwrap();
    let mut g = interp.main_goroutine();
    let mut out = String::new();
    let mut peak = 0;
    loop {
        match interp.run(&mut g, u64::MAX) {
            Event::Collect => interp.collect([&g]),
            Event::Request(Request::Print(s)) => {
                out.push_str(&s);
                interp.complete(&mut g, None)
            }
            Event::Request(Request::Gc) => {
                interp.collect([&g]);
                interp.complete(&mut g, None)
            }
            Event::Exited => break,
            other => panic!("{other:?}"),
        }
        peak = peak.max(interp.heap().bytes());
    }
    assert_eq!(out, "19900\n");
    let stats = interp.heap().stats();
    assert!(stats.collections >= 10, "{stats:?}");
    assert!(peak < 32 << 20, "peak {peak}");
    assert_eq!(stats.allocated, 400);
    // After the explicit gc only the 200 list nodes were left, and the last
    // junk object, which a (dead) register still held.
    assert_eq!(
        interp.heap().bytes(),
        200 * (16 + 2 * 16) + (16 + 131072 * 16)
    );
}

#[test]
fn the_heap_limit_is_a_clean_fatal_error() {
    let cfg = InterpConfig {
        heap_limit: 10 << 20,
        ..InterpConfig::default()
    };
    let src = "func @main() {\n    %keep = new 1\n    %i = const 0\nloop:\n    %o = new 100000\n    setref %o, 0, %keep\n    %keep = copy %o\n    %i = add %i, 1\n    jmp loop\n}\n";
    let (_, o) = run_with(src, &cfg);
    assert_eq!(o.end, End::Faulted(Fault::OutOfMemory));
    assert_eq!(
        o.report.as_deref(),
        Some("fatal error: runtime: out of memory\n\ngoroutine 1 [running]:\n@main in block loop\n\tprog.pir:5:5\n")
    );
    // The same allocation rate, nothing kept: runs for as long as we like.
    let src = "func @main() {\n    %i = const 0\nloop:\n    %o = new 100000\n    %i = add %i, 1\n    %c = lt %i, 1000\n    br %c, loop, out\nout:\n    print \"{}\", %i\n    ret\n}\n";
    let (out, o) = run_with(src, &cfg);
    assert_eq!((out.as_str(), o.status), ("1000\n", 0));
}

#[test]
fn single_goroutine_runtime_operations() {
    let src = r#"func @main() {
    %t0 = now
    sleep 2000
    %t1 = now
    %dt = sub %t1, %t0
    %slept = ge %dt, 2_000_000
    %p = procs
    yield
    gc
    setgcpercent -1
    setgcpercent 50
    lockthread
    unlockthread
    ccall spin, 100
    ccall sleep, 100
    ccall sleep, -5
    sleep -1
    ccall block_preempt_signal
    ccall unblock_preempt_signal
    ccall ignore_preempt_signal
    ccall restore_preempt_signal
    select default -> next
next:
    print "{} {}", %slept, %p
    ret
}
"#;
    let prog = parse(src);
    let mut cfg = InterpConfig::for_program(&prog);
    assert_eq!(cfg.procs, 1);
    cfg.procs = 4;
    let (out, o) = run_with(src, &cfg);
    assert_eq!(o.status, 0, "{o:?}");
    assert_eq!(out, "1 4\n");
}

#[test]
fn header_settings_reach_the_config() {
    let prog = parse("set procs = 3\nset gc_percent = -1\nfunc @main() {\n    ret\n}\n");
    let cfg = InterpConfig::for_program(&prog);
    assert_eq!((cfg.procs, cfg.gc_percent), (3, -1));
}

#[test]
fn operations_that_need_the_runtime_say_so() {
    let cases = [
        ("    spawn @main()\n", Opcode::Spawn),
        ("    %c = chan 1\n", Opcode::Chan),
        ("    %c = after 10\n", Opcode::After),
    ];
    for (body, op) in cases {
        let src = format!("func @main() {{\n    print \"before\"\n{body}    ret\n}}\n");
        let (out, o) = run(&src);
        assert_eq!(out, "before\n");
        assert_eq!(o.status, 2);
        let End::NeedsRuntime { op: got, position } = o.end else {
            panic!("{o:?}")
        };
        assert_eq!(got, op);
        assert_eq!((position.span.line, position.span.col), (3, 5));
        let report = o.report.unwrap();
        assert!(
            report.starts_with(&format!("prog.pir:3:5: '{op}' needs the goroutine runtime")),
            "{report}"
        );
        assert!(report.ends_with("(in @main, block entry)\n"), "{report}");
    }
}

#[test]
fn a_program_without_main_is_invalid() {
    // Not verifiable, so not through `run`.
    let prog = ir::parse("func @f() {\n    ret\n}\n").unwrap();
    let o = run_program(&prog, &InterpConfig::default(), &mut Vec::new());
    assert_eq!(o.status, 2);
    assert!(matches!(o.end, End::Invalid(_)));
    assert_eq!(
        o.report.as_deref(),
        Some("prog.pir:1:1: the program has no function @main\n")
    );
}

#[test]
fn the_watchdog_sees_block_entries() {
    let src = "func @g() {\n    ret\n}\n\nfunc @main() {\n    jmp b1\nb1:\n    jmp b2\nb2:\n    call @g()\n    ret\n}\n";
    let prog = parse(src);
    let hook = Arc::new(AtomicU64::new(u64::MAX));
    let cfg = InterpConfig {
        watchdog: Some(hook.clone()),
        ..InterpConfig::default()
    };
    let mut interp = Interp::new(&prog, &cfg).unwrap();
    let mut g = interp.main_goroutine();
    let main = prog.main().unwrap().0 as u64;
    let mut seen = Vec::new();
    loop {
        let e = interp.run(&mut g, 1);
        seen.push(hook.load(Ordering::Relaxed));
        if e == Event::Exited {
            break;
        }
    }
    seen.dedup();
    // One op per run: b1, b2, @g's entry, back in b2.
    assert_eq!(
        seen,
        [(main << 32) | 1, (main << 32) | 2, 0, (main << 32) | 2]
    );
}

/// Drives a program with a tiny budget, checking it resumes exactly.
fn run_in_slices(src: &str, budget: u64) -> (String, u64) {
    let prog = parse(src);
    let mut interp = Interp::new(&prog, &InterpConfig::default()).unwrap();
    let mut g = interp.main_goroutine();
    let mut out = String::new();
    let mut slices = 0;
    loop {
        slices += 1;
        match interp.run(&mut g, budget) {
            Event::Preempted => {}
            Event::Exited => return (out, slices),
            Event::Request(Request::Print(s)) => {
                out.push_str(&s);
                interp.complete(&mut g, None);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_budget_preempts_at_instruction_boundaries() {
    let src = "func @sum(%n: i64) -> i64 {\n    %s = const 0\nloop:\n    %s = add %s, %n\n    %n = sub %n, 1\n    br %n, loop, out\nout:\n    ret %s\n}\n\nfunc @main() {\n    %a = call @sum(100)\n    print \"{}\", %a\n    %b = call @sum(10)\n    print \"{}\", %b\n    ret\n}\n";
    let (whole, _) = run_in_slices(src, u64::MAX);
    assert_eq!(whole, "5050\n55\n");
    for budget in [1, 2, 3, 7] {
        let (sliced, slices) = run_in_slices(src, budget);
        assert_eq!(sliced, whole, "budget {budget}");
        assert!(slices > 300 / budget, "budget {budget}: {slices}");
    }
}

/// A stop request that is set from its `at`-th check on.
struct StopAfter {
    checks: std::cell::Cell<u32>,
    at: u32,
}

impl StopRequested for StopAfter {
    fn stop_requested(&self) -> bool {
        let n = self.checks.get() + 1;
        self.checks.set(n);
        n >= self.at
    }
}

#[test]
fn a_stop_request_interrupts_a_call_free_loop_only_when_asked_to_stop_anywhere() {
    // A loop with no call: at function entries only (coop), a request is
    // never seen; anywhere (every other mode), it stops the loop at an
    // instruction boundary, and the run goes on from there exactly.
    let src = "func @main() {\n    %s = const 0\n    %n = const 1000\nloop:\n    %s = add %s, %n\n    %n = sub %n, 1\n    br %n, loop, out\nout:\n    print \"{}\", %s\n    ret\n}\n";
    let prog = parse(src);
    for at in [StopAt::FunctionEntry, StopAt::Anywhere] {
        let mut interp = Interp::new(&prog, &InterpConfig::default()).unwrap();
        let mut g = interp.main_goroutine();
        let mut stops = 0;
        let out = loop {
            // Requested at the 17th boundary of each turn.
            let stop = StopAfter {
                checks: std::cell::Cell::new(0),
                at: 17,
            };
            match interp.run_until(&mut g, u64::MAX, &stop, at) {
                Event::Interrupted => stops += 1,
                Event::Request(Request::Print(s)) => {
                    interp.complete(&mut g, None);
                    break s;
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(out, "500500\n", "{at:?}");
        match at {
            StopAt::FunctionEntry => assert_eq!(stops, 0),
            // About 3,000 instructions, 16 of them a turn.
            StopAt::Anywhere => assert!((150..=200).contains(&stops), "{stops} stops"),
        }
    }
}

#[test]
fn requests_wait_at_their_instruction_until_completed() {
    let src = r#"func @worker(%x: i64, %o: ref) {
    ret
}

func @main() {
    %o = new 1
    spawn @worker(7, %o)
    %c = chan 2
    send %c, 5
    %v = recv %c
    %t = after 100
    close %c
    notify %c
    select recv %c into %w -> got, send %c, 9 -> sent, default -> none
got:
    print "got {} {} {}", %v, %w, %t
    ret
sent:
    print "sent"
    ret
none:
    print "none"
    ret
}
"#;
    let prog = parse(src);
    let mut interp = Interp::new(&prog, &InterpConfig::default()).unwrap();
    let mut g = interp.main_goroutine();
    let Event::Request(Request::Spawn { func, args }) = interp.run(&mut g, u64::MAX) else {
        panic!()
    };
    assert_eq!(func, prog.func_by_name("worker").unwrap());
    assert_eq!(args[0], Value::int(7));
    assert_eq!(args[1].ty(), ir::Type::Ref);
    assert!(!args[1].is_nil());
    // Not completed: it asks again, from the same place.
    let again = interp.run(&mut g, u64::MAX);
    assert!(matches!(again, Event::Request(Request::Spawn { .. })));
    let pos = interp.position(&g).unwrap();
    assert_eq!((pos.span.line, pos.inst), (7, 1));
    // The spawned goroutine runs on its own.
    let mut w = interp.goroutine(2, func, &args);
    assert_eq!(interp.run(&mut w, u64::MAX), Event::Exited);
    assert!(w.is_finished());
    interp.complete(&mut g, None);

    assert_eq!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::MakeChan { cap: 2 })
    );
    interp.complete(&mut g, Some(Value::chan(ChanId(17))));
    assert_eq!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::Send {
            chan: ChanId(17),
            value: 5
        })
    );
    interp.complete(&mut g, None);
    assert_eq!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::Recv { chan: ChanId(17) })
    );
    interp.complete(&mut g, Some(Value::int(5)));
    assert_eq!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::After { micros: 100 })
    );
    interp.complete(&mut g, Some(Value::chan(ChanId(18))));
    assert_eq!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::Close { chan: ChanId(17) })
    );
    // A fault found by the runtime is reported at the instruction.
    let report = interp.report(&g, &Fault::CloseOfClosedChannel);
    assert_eq!(
        report,
        "panic: close of closed channel\n\ngoroutine 1 [running]:\n@main in block entry\n\tprog.pir:12:5\n"
    );
    interp.complete(&mut g, None);
    assert_eq!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::Notify { chan: ChanId(17) })
    );
    interp.complete(&mut g, None);
    assert_eq!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::Select {
            arms: vec![
                SelectArm::Recv { chan: ChanId(17) },
                SelectArm::Send {
                    chan: ChanId(17),
                    value: 9
                },
                SelectArm::Default,
            ]
        })
    );
    interp.complete_select(&mut g, 0, Some(0));
    assert_eq!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::Print("got 5 0 <chan>\n".into()))
    );
    interp.complete(&mut g, None);
    assert_eq!(interp.run(&mut g, u64::MAX), Event::Exited);
    assert_eq!(interp.run(&mut g, u64::MAX), Event::Exited);
}

#[test]
fn select_arms_jump_to_their_blocks() {
    let src = "func @main() {\n    %c = chan 0\n    select recv %c -> a, send %c, 1 -> b\na:\n    print \"a\"\n    ret\nb:\n    print \"b\"\n    ret\n}\n";
    let prog = parse(src);
    let mut interp = Interp::new(&prog, &InterpConfig::default()).unwrap();
    let mut g = interp.main_goroutine();
    assert!(matches!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::MakeChan { cap: 0 })
    ));
    interp.complete(&mut g, Some(Value::chan(ChanId(0))));
    assert!(matches!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::Select { .. })
    ));
    interp.complete_select(&mut g, 1, None);
    assert_eq!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::Print("b\n".into()))
    );
}

#[test]
fn goroutines_start_with_their_arguments() {
    let src = "func @add(%a: i64, %b: i64) -> i64 {\n    %c = add %a, %b\n    print \"{}\", %c\n    ret %c\n}\n\nfunc @main() {\n    ret\n}\n";
    let prog = parse(src);
    let mut interp = Interp::new(&prog, &InterpConfig::default()).unwrap();
    let f = prog.func_by_name("add").unwrap();
    let mut g = interp.goroutine(9, f, &[Value::int(2), Value::int(40)]);
    assert_eq!(g.id(), 9);
    assert_eq!(
        interp.run(&mut g, u64::MAX),
        Event::Request(Request::Print("42\n".into()))
    );
    interp.complete(&mut g, None);
    assert_eq!(interp.run(&mut g, u64::MAX), Event::Exited);
    // Unknown functions give a finished goroutine, not a panic.
    let mut bad = interp.goroutine(10, FuncId(99), &[]);
    assert_eq!(interp.run(&mut bad, u64::MAX), Event::Exited);
}

#[test]
fn the_ir_md_sample_needs_the_runtime_but_its_pieces_run() {
    let sample = r#"set procs = 1            ; optional header settings (CLI flags override them)
set preempt = async      ; async | coop | poll | trap | patch
set gc_percent = 100
set opt = 1              ; 0: no optimisation, 1: LICM and friends (default)

global @done: i64 = 0
global @root: ref        ; refs start as nil

func @spinner() {
loop:
    %v = load @done      ; plain load: at opt=1 it is hoisted out of the loop
    br %v, out, loop
out:
    print "done!"
    ret
}

func @main() {
    spawn @spinner()
    store @done, 1
    print "flag set"
    ret
}
"#;
    let (out, o) = run(sample);
    assert_eq!(out, "");
    assert_eq!(o.status, 2);
    assert!(matches!(
        o.end,
        End::NeedsRuntime {
            op: Opcode::Spawn,
            ..
        }
    ));
    // Without the spawn: main sets the flag, then the spinner (called, not
    // spawned) sees it at once.
    let called = sample.replace(
        "    spawn @spinner()\n    store @done, 1\n    print \"flag set\"\n",
        "    store @done, 1\n    print \"flag set\"\n    call @spinner()\n",
    );
    assert_eq!(stdout_of(&called), "flag set\ndone!\n");
}

#[test]
fn a_sort_on_the_heap() {
    let src = r#"func @fill(%n: i64) -> ref {
    %a = new %n
    %i = const 0
    %x = const 12345
loop:
    %x = mul %x, 1103515245
    %x = add %x, 12345
    %x = and %x, 0x7fffffff
    %v = rem %x, 1000
    set %a, %i, %v
    %i = add %i, 1
    %c = lt %i, %n
    br %c, loop, out
out:
    ret %a
}

func @sort(%a: ref) {
    %n = len %a
    %i = const 1
outer:
    %c = lt %i, %n
    br %c, body, done
body:
    %v = get %a, %i
    %j = sub %i, 1
inner:
    %neg = lt %j, 0
    br %neg, place, cmp
cmp:
    %w = get %a, %j
    %gt = gt %w, %v
    br %gt, shift, place
shift:
    %k = add %j, 1
    set %a, %k, %w
    %j = sub %j, 1
    jmp inner
place:
    %k = add %j, 1
    set %a, %k, %v
    %i = add %i, 1
    jmp outer
done:
    ret
}

func @main() {
    %a = call @fill(200)
    call @sort(%a)
    %n = len %a
    %i = const 1
    %bad = const 0
check:
    %p = sub %i, 1
    %x = get %a, %p
    %y = get %a, %i
    %wrong = gt %x, %y
    %bad = add %bad, %wrong
    %i = add %i, 1
    %c = lt %i, %n
    br %c, check, out
out:
    %first = get %a, 0
    %last = get %a, 199
    assert %last, "expected a nonzero maximum"
    print "unsorted pairs {}, min {}, max {}", %bad, %first, %last
    ret
}
"#;
    // The same generator in Rust.
    let mut x: i64 = 12345;
    let mut vals: Vec<i64> = (0..200)
        .map(|_| {
            x = x.wrapping_mul(1103515245).wrapping_add(12345) & 0x7fffffff;
            x % 1000
        })
        .collect();
    vals.sort();
    assert_eq!(
        stdout_of(src),
        format!("unsorted pairs 0, min {}, max {}\n", vals[0], vals[199])
    );
}

mod property {
    use super::*;
    use proptest::prelude::*;

    const OPS: &[&str] = &[
        "add", "sub", "mul", "div", "rem", "and", "or", "xor", "shl", "shr", "sar", "eq", "ne",
        "lt", "le", "gt", "ge",
    ];

    /// IR.md's arithmetic, written independently of the interpreter.
    fn reference(op: &str, a: i64, b: i64) -> Option<i64> {
        Some(match op {
            "add" => a.wrapping_add(b),
            "sub" => a.wrapping_sub(b),
            "mul" => a.wrapping_mul(b),
            "div" if b == 0 => return None,
            "rem" if b == 0 => return None,
            "div" if a == i64::MIN && b == -1 => i64::MIN,
            "rem" if a == i64::MIN && b == -1 => 0,
            "div" => a / b,
            "rem" => a % b,
            "and" => a & b,
            "or" => a | b,
            "xor" => a ^ b,
            "shl" => ((a as u64) << (b as u64 % 64)) as i64,
            "shr" => ((a as u64) >> (b as u64 % 64)) as i64,
            "sar" => a >> (b as u64 % 64),
            "eq" => (a == b) as i64,
            "ne" => (a != b) as i64,
            "lt" => (a < b) as i64,
            "le" => (a <= b) as i64,
            "gt" => (a > b) as i64,
            "ge" => (a >= b) as i64,
            _ => unreachable!(),
        })
    }

    fn interesting() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(63),
            Just(64),
            Just(i64::MIN),
            Just(i64::MAX),
            -70i64..70,
            any::<i64>(),
        ]
    }

    proptest! {
        // PREEMPT_PROPTEST_DIVISOR=N runs 1/N of the cases (the aarch64 lane, under qemu).
        #![proptest_config(ProptestConfig::with_cases(
            (64 / std::env::var("PREEMPT_PROPTEST_DIVISOR")
                .map_or(1, |d| d.parse().expect("PREEMPT_PROPTEST_DIVISOR: a positive integer")))
            .max(1)
        ))]

        #[test]
        fn binary_ops_match_the_contract(
            cases in prop::collection::vec((0..OPS.len(), interesting(), interesting()), 1..24)
        ) {
            let mut src = String::from("func @main() {\n");
            let mut want = String::new();
            let mut fault_line = None;
            for (k, &(op, a, b)) in cases.iter().enumerate() {
                let op = OPS[op];
                // Registers and literals both, to cover constant slots.
                if k % 2 == 0 {
                    src.push_str(&format!("    %a = const {a}\n    %r = {op} %a, {b}\n"));
                } else {
                    src.push_str(&format!("    %b = const {b}\n    %r = {op} {a}, %b\n"));
                }
                src.push_str("    print \"{}\", %r\n");
                match reference(op, a, b) {
                    Some(v) => want.push_str(&format!("{v}\n")),
                    None => {
                        fault_line = Some(2 + 3 * k as u32 + 1);
                        break;
                    }
                }
            }
            src.push_str("    ret\n}\n");
            let (out, o) = run(&src);
            prop_assert_eq!(out, want);
            match fault_line {
                None => prop_assert_eq!(o.status, 0),
                Some(line) => {
                    prop_assert_eq!(o.status, 1);
                    prop_assert_eq!(o.end, End::Faulted(Fault::DivideByZero));
                    let report = o.report.unwrap();
                    let want_tail = format!("\tprog.pir:{line}:5\n");
                    prop_assert!(report.ends_with(&want_tail), "{}", report);
                }
            }
        }
    }
}

#[test]
fn a_faulted_goroutine_stays_faulted() {
    for (src, stack, fault) in [
        (RUNAWAY, 4096, Fault::StackOverflow),
        (
            "func @main() {\n    print \"x\"\n    ret\n}\n",
            8,
            Fault::StackOverflow,
        ),
        (
            "func @main() {\n    %z = const 0\n    %d = div 1, %z\n    ret\n}\n",
            4096,
            Fault::DivideByZero,
        ),
    ] {
        let prog = parse(src);
        let cfg = InterpConfig {
            stack_size: stack,
            ..InterpConfig::default()
        };
        let mut interp = Interp::new(&prog, &cfg).unwrap();
        let mut g = interp.main_goroutine();
        let before = interp.run(&mut g, u64::MAX);
        assert_eq!(before, Event::Fault(fault.clone()));
        let report = interp.report(&g, &fault);
        // Nothing the scheduler does afterwards moves it or panics.
        interp.complete(&mut g, Some(Value::int(1)));
        interp.complete_select(&mut g, 0, Some(1));
        for budget in [0, 1, u64::MAX] {
            assert_eq!(interp.run(&mut g, budget), Event::Fault(fault.clone()));
        }
        assert_eq!(g.fault(), Some(&fault));
        assert_eq!(interp.report(&g, &fault), report);
        interp.collect([&g]);
    }
}
