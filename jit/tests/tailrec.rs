//! Accumulator recursion elimination at the IR level: the rewrite of the
//! shapes it accepts (golden text), the output contract every optimised
//! program meets, and one test per condition that keeps a function as it
//! is, each named after what a rewrite would have lost.

use preempt_jit::interp::{self, End, InterpConfig};
use preempt_jit::ir::{self, Program};
use preempt_jit::opt::{self, tailrec};

fn prepare(src: &str) -> Program {
    let mut p = ir::parse(src).unwrap_or_else(|e| panic!("{}", e.render("test.pir", src)));
    ir::verify(&mut p).unwrap_or_else(|e| panic!("{}", e.render("test.pir", src)));
    p
}

/// Runs the pass alone on `src`; returns the program and how many
/// functions it rewrote, after checking the output contract: the result
/// prints, re-parses to an equal program, verifies, and a second run
/// changes nothing.
fn rewritten(src: &str) -> (Program, usize) {
    let mut p = prepare(src);
    let n = tailrec::run(&mut p);
    let text = ir::print(&p);
    let mut r = ir::parse(&text).unwrap_or_else(|e| panic!("{}\n{text}", e.render("opt", &text)));
    ir::verify(&mut r).unwrap_or_else(|e| panic!("{}\n{text}", e.render("opt", &text)));
    assert_eq!(r, p, "re-parsed program differs:\n{text}");
    let mut again = p.clone();
    assert_eq!(tailrec::run(&mut again), 0, "not idempotent:\n{text}");
    (p, n)
}

fn kept(src: &str) {
    let (p, n) = rewritten(src);
    assert_eq!(n, 0, "rewritten:\n{}", ir::print(&p));
    assert_eq!(p, prepare(src));
}

/// stdout and end of `src` on the interpreter, at `level`, with a stack of
/// `stack` bytes.
fn interp_run(src: &str, level: u8, stack: u64) -> (String, End, Option<String>) {
    let mut p = prepare(src);
    opt::optimize(&mut p, level);
    let cfg = InterpConfig {
        stack_size: stack,
        ..InterpConfig::default()
    };
    let mut out = Vec::new();
    let o = interp::run_program(&p, &cfg, &mut out);
    (String::from_utf8(out).unwrap(), o.end, o.report)
}

const FIB: &str = "\
func @fib(%n: i64) -> i64 {
    %small = lt %n, 2
    br %small, base, step
base:
    ret %n
step:
    %a = sub %n, 1
    %b = sub %n, 2
    %x = call @fib(%a)
    %y = call @fib(%b)
    %r = add %x, %y
    ret %r
}

func @main() {
    %r = call @fib(20)
    print \"{}\", %r
    ret
}
";

#[test]
fn fib_becomes_a_loop_around_its_first_call() {
    let (p, n) = rewritten(FIB);
    assert_eq!(n, 1);
    let text = ir::print(&p);
    assert!(
        text.starts_with(
            "\
func @fib(%n: i64) -> i64 {
    %tailrec.acc = const 0
    jmp tailrec
tailrec:
    %small = lt %n, 2
    br %small, base, step
base:
    %tailrec.acc = add %tailrec.acc, %n
    ret %tailrec.acc
step:
    %a = sub %n, 1
    %b = sub %n, 2
    %x = call @fib(%a)
    %tailrec.acc = add %tailrec.acc, %x
    %n = copy %b
    jmp tailrec
}
"
        ),
        "{text}"
    );
    // @main calls @fib once, not in tail position of a recursion: kept.
    assert!(text
        .ends_with("func @main() {\n    %r = call @fib(20)\n    print \"{}\", %r\n    ret\n}\n"));
}

#[test]
fn every_accumulating_operation_starts_from_its_identity() {
    for (op, identity) in [("add", 0), ("mul", 1), ("and", -1), ("or", 0), ("xor", 0)] {
        // The call's result on either side of the operation.
        for combine in [format!("{op} %x, %y"), format!("{op} %y, %x")] {
            let src = FIB.replace("add %x, %y", &combine);
            let (p, n) = rewritten(&src);
            assert_eq!(n, 1, "{combine}");
            let text = ir::print(&p);
            assert!(
                text.contains(&format!("%tailrec.acc = const {identity}\n")),
                "{text}"
            );
            assert!(
                text.contains(&format!("%tailrec.acc = {op} %tailrec.acc, %x\n")),
                "{text}"
            );
            // Same result at every level, for a range of arguments.
            for k in [-3, 0, 1, 2, 7, 15] {
                let src = src.replace("@fib(20)", &format!("@fib({k})"));
                let at = |level| interp_run(&src, level, 64 << 20).0;
                assert_eq!(at(0), at(1), "{combine} at {k}");
            }
        }
    }
}

#[test]
fn a_literal_or_an_earlier_register_can_be_the_other_operand() {
    // f(n, k) = f(n - 3, k) * (f(n - 1, k) + n): the other operand of the
    // last call's combination is computed from the parameter before it
    // moves, and a second parameter is passed through unchanged.
    let src = "\
func @f(%n: i64, %k: i64) -> i64 {
    %stop = le %n, 0
    br %stop, base, step
base:
    ret %k
step:
    %a = sub %n, 1
    %b = add %n, -3
    %x = call @f(%a, %k)
    %s = add %x, %n
    %y = call @f(%b, %k)
    %r = mul %y, %s
    ret %r
}

func @main() {
    %r = call @f(12, 3)
    print \"{}\", %r
    ret
}
";
    let (p, n) = rewritten(src);
    assert_eq!(n, 1);
    let text = ir::print(&p);
    assert!(
        text.contains("%tailrec.acc = mul %tailrec.acc, %s\n    %n = copy %b\n    jmp tailrec\n"),
        "{text}"
    );
    assert_eq!(
        interp_run(src, 0, 64 << 20).0,
        interp_run(src, 1, 64 << 20).0
    );
}

#[test]
fn plain_tail_calls_need_no_accumulator() {
    // A value passed through, and a function returning nothing.
    let valued = FIB.replace("    %r = add %x, %y\n    ret %r\n", "    ret %y\n");
    let void = "\
func @walk(%n: i64) {
    %small = gt %n, 2
    br %small, step, base
base:
    ret
step:
    %a = sub %n, 1
    %b = sub %n, 1
    call @walk(%a)
    call @walk(%b)
    ret
}

func @main() {
    call @walk(10)
    print \"walked\"
    ret
}
";
    for src in [valued.as_str(), void] {
        let (p, n) = rewritten(src);
        assert_eq!(n, 1);
        let text = ir::print(&p);
        assert!(!text.contains("tailrec.acc"), "{text}");
        assert!(text.contains("    jmp tailrec\n}\n"), "{text}");
        assert_eq!(
            interp_run(src, 0, 64 << 20).0,
            interp_run(src, 1, 64 << 20).0
        );
    }
}

#[test]
fn the_first_block_keeps_its_label_and_fresh_names_avoid_taken_ones() {
    let src = FIB
        .replace("    %small = lt %n, 2\n", "start:\n    %small = lt %n, 2\n")
        .replace(
            "base:\n    ret %n",
            "base:\n    %tailrec.acc = copy %n\n    ret %tailrec.acc",
        )
        .replace("step:", "tailrec:")
        .replace("base, step", "base, tailrec");
    let (p, n) = rewritten(&src);
    assert_eq!(n, 1);
    let text = ir::print(&p);
    assert!(text.starts_with("func @fib(%n: i64) -> i64 {\nstart:\n    %tailrec.acc.1 = const 0\n    jmp tailrec.1\ntailrec.1:\n"), "{text}");
}

#[test]
fn a_runaway_recursion_stays_a_stack_overflow_with_the_same_frames() {
    // fib of a huge n overflows on its first descent, through the calls
    // the pass keeps: the same report at both levels, but for the number
    // of frames that fit (the frames' sizes differ).
    let src = FIB.replace("@fib(20)", "@fib(1000000000)");
    let elide = |r: String| -> Vec<String> {
        r.lines()
            .filter(|l| !l.ends_with("frames elided..."))
            .map(str::to_string)
            .collect()
    };
    let (out0, end0, r0) = interp_run(&src, 0, 1 << 16);
    let (out1, end1, r1) = interp_run(&src, 1, 1 << 16);
    assert_eq!((out0, &end0), (out1, &end1));
    assert_eq!(end0, End::Faulted(preempt_jit::fault::Fault::StackOverflow));
    let (r0, r1) = (elide(r0.unwrap()), elide(r1.unwrap()));
    assert_eq!(r0, r1);
    assert_eq!(r1[3], "@fib in block entry");
}

// ---------------------------------------------------------------------------
// What keeps a function as it is.

#[test]
fn a_lone_tail_call_keeps_its_frames_so_a_runaway_recursion_overflows() {
    kept(
        "func @f(%n: i64) -> i64 {\n    %m = add %n, 1\n    %r = call @f(%m)\n    ret %r\n}\n\n\
         func @main() {\n    %r = call @f(0)\n    ret\n}\n",
    );
    // With a base case, too: count(n) = count(n - 1) + 1.
    kept(
        "func @count(%n: i64) -> i64 {\n    %z = lt %n, 1\n    br %z, base, step\nbase:\n    ret 0\n\
         step:\n    %a = sub %n, 1\n    %y = call @count(%a)\n    %r = add %y, 1\n    ret %r\n}\n\n\
         func @main() {\n    ret\n}\n",
    );
}

#[test]
fn an_eliminated_call_deeper_than_the_kept_one_would_lose_stack() {
    // f(n-2) first, f(n-1) last: the last call reaches the deeper stack.
    kept(&FIB.replace(
        "    %x = call @fib(%a)\n    %y = call @fib(%b)\n",
        "    %x = call @fib(%b)\n    %y = call @fib(%a)\n",
    ));
}

#[test]
fn anything_that_can_fault_keeps_the_frames_its_traceback_shows() {
    for (what, with) in [
        ("division by a register", "    %q = div 100, %n\n    ret %q"),
        ("remainder by zero", "    %q = rem %n, 0\n    ret %q"),
        ("an assertion", "    assert %n, \"n\"\n    ret %n"),
        ("a panic", "    panic \"base\""),
        ("a runtime operation", "    yield\n    ret %n"),
        (
            "a call of another function",
            "    %q = call @main2()\n    ret %q",
        ),
        ("a print", "    print \"{}\", %n\n    ret %n"),
    ] {
        let src = format!(
            "{}\nfunc @main2() -> i64 {{\n    ret 1\n}}\n",
            FIB.replace("    ret %n\nstep:", &format!("{with}\nstep:"))
        );
        let (p, n) = rewritten(&src);
        assert_eq!(n, 0, "{what}:\n{}", ir::print(&p));
    }
    // Division by a non-zero literal cannot fault: rewritten.
    let (_, n) =
        rewritten(&FIB.replace("    ret %n\nstep:", "    %q = div %n, 7\n    ret %q\nstep:"));
    assert_eq!(n, 1);
}

#[test]
fn a_shape_outside_the_proof_is_kept() {
    let cases = [
        // A parameter written in the body.
        FIB.replace(
            "    %a = sub %n, 1\n",
            "    %n = copy %n\n    %a = sub %n, 1\n",
        ),
        // An argument that does not decrease.
        FIB.replace("%b = sub %n, 2", "%b = add %n, 2"),
        FIB.replace("%b = sub %n, 2", "%b = sub %n, 0"),
        // An argument not derived from the guarded parameter.
        FIB.replace("%b = sub %n, 2", "%b = sub %a, 1"),
        // A guard that is not a comparison of the parameter with a literal.
        FIB.replace("%small = lt %n, 2", "%small = lt 2, %n"),
        FIB.replace("%small = lt %n, 2", "%small = eq %n, 2"),
        // A call in the base case.
        FIB.replace(
            "base:\n    ret %n",
            "base:\n    %q = call @fib(-5)\n    ret %q",
        ),
        // A branch on the step side.
        FIB.replace(
            "    %r = add %x, %y\n    ret %r\n",
            "    %r = add %x, %y\n    br %r, out, out\nout:\n    ret %r\n",
        ),
        // The call's result combined with itself, or by a non-commutative op.
        FIB.replace("add %x, %y", "add %y, %y"),
        FIB.replace("add %x, %y", "sub %x, %y"),
        // Something between the call and its combination.
        FIB.replace(
            "    %r = add %x, %y\n",
            "    %z = add %x, 1\n    %r = add %z, %y\n",
        ),
    ];
    for src in &cases {
        kept(src);
    }
    // An edge back into the first block.
    let back = FIB
        .replace("    %small = lt %n, 2\n", "top:\n    %small = lt %n, 2\n")
        .replace(
            "base:\n    ret %n",
            "base:\n    br %n, out, top\nout:\n    ret %n",
        );
    kept(&back);
}

#[test]
fn level_zero_leaves_the_recursion_alone() {
    let mut p = prepare(FIB);
    opt::optimize(&mut p, 0);
    assert_eq!(p, prepare(FIB));
    opt::optimize(&mut p, 1);
    assert_ne!(p, prepare(FIB));
}
