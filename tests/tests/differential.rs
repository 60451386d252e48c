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
