//! Differential testing: random well-formed programs (see
//! `preempt_tests::gen`) must give identical stdout, exit status and
//! report on the reference interpreter, the JIT at -O0 and the JIT at -O1.

use std::sync::Arc;

use preempt_jit::ir;
use preempt_jit::module::Module;
use preempt_runtime::{Observers, Output, RunConfig};
use preempt_tests::gen::{program, Shape};
use proptest::prelude::*;

/// What one engine made of a program.
#[derive(Debug, PartialEq, Eq)]
struct Result {
    status: i32,
    stdout: String,
    stderr: String,
}

fn cfg() -> RunConfig {
    RunConfig {
        file: "gen.pir".into(),
        // Generated programs finish in milliseconds; the bound only turns
        // a miscompiled infinite loop into a failure instead of a hang.
        timeout: Some(std::time::Duration::from_secs(60)),
        stack_size: 1 << 20,
        ..RunConfig::default()
    }
}

fn jit(text: &str, level: u8) -> Result {
    jit_with(text, level, &cfg())
}

/// The JIT's run of `text` at `level` with `cfg`, its code compiled for
/// `cfg.mode` (what the back-edges carry depends on it).
fn jit_with(text: &str, level: u8, cfg: &RunConfig) -> Result {
    let mut p = ir::parse(text).expect("parses");
    ir::verify(&mut p).expect("verifies");
    preempt_jit::opt::optimize(&mut p, level);
    p.settings.preempt = Some(cfg.mode);
    let m = Module::compile(&p).expect("compiles");
    let (out, captured) = Output::capture();
    let o = preempt_runtime::run(Arc::new(m), cfg, &Observers::default(), out);
    Result {
        status: o.status,
        stdout: captured.text(),
        stderr: o.stderr,
    }
}

fn interp(text: &str) -> Result {
    let mut p = ir::parse(text).expect("parses");
    ir::verify(&mut p).expect("verifies");
    let (out, captured) = Output::capture();
    let o = preempt_runtime::interp::run(&p, 0, &cfg(), &Observers::default(), out);
    Result {
        status: o.status,
        stdout: captured.text(),
        stderr: o.stderr,
    }
}

fn check(seed: u64, shape: Shape) {
    let text = program(seed, shape);
    let reference = interp(&text);
    for level in [0, 1] {
        let got = jit(&text, level);
        assert_eq!(
            reference, got,
            "seed {seed}, JIT at -O{level} differs from the interpreter\n{text}"
        );
    }
}

proptest! {
    // PREEMPT_PROPTEST_DIVISOR=N runs 1/N of the cases (the aarch64 lane, under qemu).
    #![proptest_config(ProptestConfig {
        cases: (300 / std::env::var("PREEMPT_PROPTEST_DIVISOR")
            .map_or(1, |d| d.parse().expect("PREEMPT_PROPTEST_DIVISOR: a positive integer")))
        .max(1),
        ..ProptestConfig::default()
    })]

    #[test]
    fn jit_agrees_with_the_interpreter(seed in any::<u64>()) {
        check(seed, Shape::default());
    }

    #[test]
    fn jit_agrees_under_register_pressure(seed in any::<u64>()) {
        check(seed, Shape { int_vars: 24, statements: 24, ..Shape::default() });
    }

    #[test]
    fn jit_agrees_under_every_other_mode(seed in any::<u64>()) {
        check_mechanisms(seed);
    }
}

/// The program of `seed` on the JIT under poll, trap (both armings) and
/// patch, its loops stopped at their back-edges every 20 us, and under
/// coop, stopped at its calls, against the interpreter.
fn check_mechanisms(seed: u64) {
    use preempt_jit::ir::PreemptMode;
    let text = program(seed, Shape::default());
    let reference = interp(&text);
    // async is `jit_agrees_with_the_interpreter`'s.
    for (mode, trap_arm) in preempt_tests::MODES
        .into_iter()
        .filter(|&(m, _)| m != PreemptMode::Async)
    {
        let c = RunConfig {
            mode,
            trap_arm,
            quantum: std::time::Duration::from_micros(20),
            ..cfg()
        };
        let level = (seed % 2) as u8;
        let got = jit_with(&text, level, &c);
        assert_eq!(
            reference, got,
            "seed {seed}, JIT at -O{level} under {mode:?} ({trap_arm:?}) differs from the interpreter\n{text}"
        );
    }
}

#[test]
fn generated_programs_reach_every_outcome() {
    // The generator is only useful if it produces both clean runs and each
    // kind of fault; check a fixed range of seeds covers them.
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..400 {
        let r = jit(&program(seed, Shape::default()), 1);
        let kind = match r.stderr.lines().next() {
            None => "ok".to_string(),
            Some(l) => l.split(':').take(3).collect::<Vec<_>>().join(":"),
        };
        seen.insert(kind);
    }
    for want in [
        "ok",
        "panic: runtime error: index out of range [",
        "panic: runtime error: integer divide by zero",
    ] {
        assert!(
            seen.iter()
                .any(|s| s.starts_with(want.split('[').next().unwrap())),
            "{want} never produced: {seen:?}"
        );
    }
}

/// A recursion of the shape accumulator recursion elimination rewrites
/// (see `preempt_jit::opt::tailrec`): guard `CMP %n, K`, a kept call
/// `f(n - dk)`, an eliminated call `f(n - de)` (`de >= dk`) whose result is
/// combined with `op`, or returned as it is, and a second parameter passed
/// through. Returns the program text; `main` prints `f(arg, 3)`.
#[allow(clippy::too_many_arguments)]
fn recursion(
    cmp: &str,
    k: i64,
    dk: i64,
    de: i64,
    op: Option<(&str, bool)>,
    base: &str,
    arg: i64,
    negated_add: bool,
) -> String {
    // lt/le take the base case when true, gt/ge when false.
    let (then_, else_) = if cmp == "lt" || cmp == "le" {
        ("base", "step")
    } else {
        ("step", "base")
    };
    let next = if negated_add {
        format!("add %n, {}", -de)
    } else {
        format!("sub %n, {de}")
    };
    let tail = match op {
        Some((op, swap)) => {
            let args = if swap { "%y, %s" } else { "%s, %y" };
            format!("    %r = {op} {args}\n    ret %r\n")
        }
        None => "    ret %y\n".to_string(),
    };
    format!(
        "func @f(%n: i64, %k: i64) -> i64 {{
    %g = {cmp} %n, {k}
    br %g, {then_}, {else_}
base:
    %b = {base}
    ret %b
step:
    %a = sub %n, {dk}
    %e = {next}
    %x = call @f(%a, %k)
    %s = xor %x, %k
    %y = call @f(%e, %k)
{tail}}}

func @main() {{
    %r = call @f({arg}, 3)
    print \"f = {{}}\", %r
    ret
}}
"
    )
}

/// The interpreter on the unoptimised text against the interpreter and
/// the JIT on the optimised one (and the JIT at -O0), after checking that
/// the pass did rewrite it.
fn check_recursion(text: &str) {
    let mut p = ir::parse(text).expect("parses");
    ir::verify(&mut p).expect("verifies");
    assert_eq!(
        preempt_jit::opt::tailrec::run(&mut p),
        1,
        "not rewritten:\n{text}"
    );
    let reference = interp(text);
    assert_eq!(reference.status, 0, "{reference:?}\n{text}");
    for level in [0, 1] {
        let got = jit(text, level);
        assert_eq!(reference, got, "JIT at -O{level} differs\n{text}");
    }
    let mut p = ir::parse(text).expect("parses");
    ir::verify(&mut p).expect("verifies");
    let (out, captured) = Output::capture();
    let o = preempt_runtime::interp::run(&p, 1, &cfg(), &Observers::default(), out);
    let optimised = Result {
        status: o.status,
        stdout: captured.text(),
        stderr: o.stderr,
    };
    assert_eq!(reference, optimised, "interpreter at -O1 differs\n{text}");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: (200 / std::env::var("PREEMPT_PROPTEST_DIVISOR")
            .map_or(1, |d| d.parse().expect("PREEMPT_PROPTEST_DIVISOR: a positive integer")))
        .max(1),
        ..ProptestConfig::default()
    })]

    #[test]
    fn recursion_turned_loop_agrees_with_the_interpreter(
        cmp in prop::sample::select(vec!["lt", "le", "gt", "ge"]),
        k in -3i64..4,
        dk in 1i64..3,
        extra in 0i64..3,
        op in prop::option::weighted(0.8, (prop::sample::select(vec!["add", "mul", "and", "or", "xor"]), any::<bool>())),
        base in prop::sample::select(vec!["copy %n", "mul %n, 7", "add %n, %k", "const -2", "div %n, 3", "rem %n, -2", "shl %n, 61"]),
        arg in -4i64..16,
        negated_add in any::<bool>(),
    ) {
        check_recursion(&recursion(cmp, k, dk, dk + extra, op, base, arg, negated_add));
    }
}

#[test]
fn recursion_turned_loop_overflows_the_stack_as_the_recursion_did() {
    // fib of a huge argument runs out of stack on its first descent,
    // through the call the pass keeps: same status, same frames (the
    // number that fit differs between engines and levels, since their
    // frames differ in size, so the elision line is left out).
    let text = recursion(
        "lt",
        2,
        1,
        2,
        Some(("add", false)),
        "copy %n",
        1 << 40,
        false,
    );
    let frames = |r: Result| -> (i32, String, Vec<String>) {
        let lines = r
            .stderr
            .lines()
            .filter(|l| !l.ends_with("frames elided..."))
            .map(str::to_string)
            .collect();
        (r.status, r.stdout, lines)
    };
    let reference = frames(interp(&text));
    assert_eq!(reference.0, 1);
    assert_eq!(reference.2[0], "fatal error: stack overflow");
    assert_eq!(reference.2[3], "@f in block entry");
    assert_eq!(reference.2[5], "@f in block step");
    for level in [0, 1] {
        assert_eq!(reference, frames(jit(&text, level)), "-O{level}\n{text}");
    }
}

#[test]
fn recursion_turned_loop_agrees_under_every_mechanism() {
    let text = recursion("lt", 2, 1, 2, Some(("add", false)), "copy %n", 24, false);
    fn f(n: i64) -> i64 {
        if n < 2 {
            n
        } else {
            (f(n - 1) ^ 3).wrapping_add(f(n - 2))
        }
    }
    let reference = interp(&text);
    assert_eq!(reference.stdout, format!("f = {}\n", f(24)));
    for (mode, trap_arm) in preempt_tests::MODES {
        let c = RunConfig {
            mode,
            trap_arm,
            quantum: std::time::Duration::from_micros(20),
            ..cfg()
        };
        assert_eq!(reference, jit_with(&text, 1, &c), "{mode:?} ({trap_arm:?})");
    }
}
