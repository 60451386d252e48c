//! Tight-loop kernels on three engines: the JIT, the reference
//! interpreter, and the same function in Rust.
//!
//! The PIR kernels time themselves: `@main` reads `now` around one call of
//! `@kernel(n)` and prints the result and the elapsed nanoseconds, so
//! compilation, thread start-up and stack mapping are not in the figure.
//! Each engine's size `n` is calibrated to run for about the budget's
//! target; figures are nanoseconds per unit of work (a loop iteration, a
//! list node visited, a call), the fastest of the repetitions.

use std::sync::Arc;
use std::time::Instant;

use preempt_jit::ir::{self, Program};
use preempt_jit::module::Module;
use preempt_runtime::{Observers, Output, RunConfig};

use crate::doc::{Doc, Table};
use crate::{rust_ref, Budget};

/// A kernel: its PIR source, its Rust twin, and how much work `n` means.
#[derive(Debug)]
pub struct Kernel {
    pub name: &'static str,
    pub unit: &'static str,
    pub source: &'static str,
    pub rust: fn(i64) -> i64,
    /// Units of work done by `@kernel(n)`.
    pub work: fn(i64) -> f64,
    /// The smallest meaningful `n` and how it grows during calibration.
    pub start: i64,
    pub grow: fn(i64) -> i64,
}

fn fib_calls(n: i64) -> f64 {
    // fib(n) makes 2*fib(n+1) - 1 calls.
    let (mut a, mut b) = (0f64, 1f64);
    for _ in 0..=n {
        let c = a + b;
        a = b;
        b = c;
    }
    2.0 * a - 1.0
}

pub fn all() -> Vec<Kernel> {
    vec![
        Kernel {
            name: "sum",
            unit: "iteration",
            source: include_str!("kernels/sum.pir"),
            rust: rust_ref::sum,
            work: |n| n as f64,
            start: 100_000,
            grow: |n| n * 2,
        },
        Kernel {
            name: "nested",
            unit: "inner iteration",
            source: include_str!("kernels/nested.pir"),
            rust: rust_ref::nested,
            work: |n| n as f64 * 1000.0,
            start: 100,
            grow: |n| n * 2,
        },
        Kernel {
            name: "heapwalk",
            unit: "node visited",
            source: include_str!("kernels/heapwalk.pir"),
            rust: rust_ref::heapwalk,
            work: |n| (n / 1000) as f64 * 1000.0,
            start: 100_000,
            grow: |n| n * 2,
        },
        Kernel {
            name: "fib",
            unit: "call",
            source: include_str!("kernels/fib.pir"),
            rust: rust_ref::fib,
            work: fib_calls,
            start: 15,
            grow: |n| n + 1,
        },
    ]
}

/// The kernel with a `@main` that times one call of `@kernel(n)`.
pub fn program(k: &Kernel, n: i64) -> Program {
    program_calling(k, n, 1)
}

/// [`program`] with `calls` calls of `@kernel(n)` in the timed region (more
/// than one only for the planted slowdown of [`planted_slowdown`]).
fn program_calling(k: &Kernel, n: i64, calls: usize) -> Program {
    let timed = format!("    %r = call @kernel({n})\n");
    let src = format!(
        "{}\nfunc @main() {{\n    %t0 = now\n{}    %t1 = now\n    %dt = sub %t1, %t0\n    print \"{{}} {{}}\", %r, %dt\n    ret\n}}\n",
        k.source,
        timed.repeat(calls.max(1))
    );
    let mut p =
        ir::parse(&src).unwrap_or_else(|e| panic!("kernel {}: {}", k.name, e.render(k.name, &src)));
    ir::verify(&mut p).unwrap_or_else(|e| panic!("kernel {}: {}", k.name, e.render(k.name, &src)));
    p
}

/// The engines a kernel runs on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Engine {
    Jit,
    Interp,
    Rust,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Jit => "jit",
            Engine::Interp => "interp",
            Engine::Rust => "rust",
        }
    }
}

/// The run configuration of a benchmark's kernel run of `file`: no
/// watchdog and no hang report. A benchmark chooses its diagnosis
/// settings: a call-free kernel under `coop` never stops for the monitor's
/// requests, by design, and the runtime's report of a goroutine that has
/// not stopped (100 ms after a request, by default) would otherwise print
/// between the figures and cost the monitor time during the measurement.
pub fn bench_config(file: impl Into<String>) -> RunConfig {
    RunConfig {
        file: file.into(),
        timeout: None,
        hang_threshold: std::time::Duration::ZERO,
        ..RunConfig::default()
    }
}

/// Runs `k` once on `engine` with size `n`: (result, nanoseconds).
pub fn run_once(k: &Kernel, engine: Engine, n: i64) -> (i64, f64) {
    run_with(k, engine, n, &bench_config(format!("{}.pir", k.name)))
}

/// [`run_once`] with a given run configuration (preemption mode, quantum;
/// start from [`bench_config`]).
pub fn run_with(k: &Kernel, engine: Engine, n: i64, cfg: &RunConfig) -> (i64, f64) {
    run_calling(k, engine, n, cfg, 1)
}

/// [`run_with`], the kernel called `calls` times in the timed region.
fn run_calling(k: &Kernel, engine: Engine, n: i64, cfg: &RunConfig, calls: usize) -> (i64, f64) {
    if engine == Engine::Rust {
        let t = Instant::now();
        let mut r = 0;
        for _ in 0..calls.max(1) {
            r = (k.rust)(std::hint::black_box(n));
        }
        return (r, t.elapsed().as_nanos() as f64);
    }
    let mut prog = program_calling(k, n, calls);
    let (out, captured) = Output::capture();
    let outcome = match engine {
        Engine::Jit => {
            preempt_jit::opt::optimize(&mut prog, 1);
            // The mode decides what the back-edges carry (poll, trap, patch).
            prog.settings.preempt = Some(cfg.mode);
            let m = Module::compile(&prog).expect("compile the kernel");
            preempt_runtime::run(Arc::new(m), cfg, &Observers::default(), out)
        }
        _ => preempt_runtime::interp::run(&prog, 1, cfg, &Observers::default(), out),
    };
    assert_eq!(
        outcome.status, 0,
        "kernel {} on {engine:?}: {}",
        k.name, outcome.stderr
    );
    let text = captured.text();
    let mut words = text
        .split_whitespace()
        .map(|w| w.parse::<i64>().unwrap_or(0));
    (words.next().unwrap_or(0), words.next().unwrap_or(0) as f64)
}

/// One kernel's figures on one engine.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub engine: Engine,
    pub n: i64,
    pub result: i64,
    /// The fastest repetition.
    pub ns_per_unit: f64,
    /// Every repetition's ns per unit (`ns_per_unit` is the smallest).
    pub samples: Vec<f64>,
}

/// The kernels the test hook `PREEMPT_BENCH_SLOWDOWN` (a comma-separated
/// list of kernel names) slows down: each of their timed runs calls the
/// kernel twice while the work counted is one call's, so their ns/unit
/// doubles on every engine. For testing `preempt compare`; a result made
/// with it says so in its provenance.
pub fn planted_slowdown() -> Vec<String> {
    std::env::var(crate::results::provenance::SLOWDOWN_VAR)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Grows `n` until one run takes a quarter of the target, then measures
/// at a size scaled to the target.
pub fn measure(k: &Kernel, engine: Engine, budget: Budget) -> Measurement {
    crate::progress::step(&format!("{} on {}", k.name, engine.name()));
    let target = budget.target.as_nanos() as f64;
    let calls = if planted_slowdown().iter().any(|s| s == k.name) {
        2
    } else {
        1
    };
    let cfg = bench_config(format!("{}.pir", k.name));
    let run_once = |k: &Kernel, engine, n| run_calling(k, engine, n, &cfg, calls);
    let mut n = k.start;
    loop {
        let (_, ns) = run_once(k, engine, n);
        if ns >= target / 4.0 {
            break;
        }
        let next = (k.grow)(n);
        // Jump ahead for linear kernels once a timing is meaningful.
        n = if ns > 1e6 && next == n * 2 {
            ((n as f64) * (target / ns)).max(next as f64) as i64
        } else {
            next
        };
    }
    let mut samples = Vec::new();
    let mut result = 0;
    for _ in 0..budget.repetitions.max(1) {
        let (r, ns) = run_once(k, engine, n);
        result = r;
        samples.push(ns / (k.work)(n));
    }
    Measurement {
        engine,
        n,
        result,
        ns_per_unit: samples.iter().copied().fold(f64::INFINITY, f64::min),
        samples,
    }
}

/// Measures every kernel on every engine: the table and the JSON.
pub fn run(budget: Budget) -> Report {
    let mut measured = Vec::new();
    let mut doc = Doc::new("kernels");
    doc.title(
        format!(
            "kernels: nanoseconds per unit of work, fastest of {} per engine",
            crate::runs(budget.repetitions)
        ),
        budget.quick,
    );
    let mut t = Table::new(&[
        "kernel",
        "unit",
        "jit ns/unit",
        "interp ns/unit",
        "rust ns/unit",
        "jit/rust",
        "interp/jit",
    ])
    .left(&[1]);
    let mut seen = crate::noise::Seen {
        load: crate::noise::load_at_start(),
        ..Default::default()
    };
    let kernels = all();
    for k in &kernels {
        let [jit, interp, rust] =
            [Engine::Jit, Engine::Interp, Engine::Rust].map(|e| measure(k, e, budget));
        t.row(&[
            k.name.to_string(),
            k.unit.to_string(),
            format!("{:.3}", jit.ns_per_unit),
            format!("{:.2}", interp.ns_per_unit),
            format!("{:.3}", rust.ns_per_unit),
            format!("{:.2}x", jit.ns_per_unit / rust.ns_per_unit),
            format!("{:.1}x", interp.ns_per_unit / jit.ns_per_unit),
        ]);
        for m in [&jit, &interp, &rust] {
            seen.baselines.push((
                format!("{} on {}", k.name, m.engine.name()),
                m.samples.clone(),
            ));
        }
        measured.push((k, vec![jit, interp, rust]));
    }
    for w in crate::noise::warnings(&seen) {
        doc.warning(w);
    }
    doc.table(t);
    Report {
        json: details(budget, &measured),
        doc,
    }
}

/// The suite's result: the table, and every measurement for tools.
#[derive(Clone, Debug)]
pub struct Report {
    pub doc: Doc,
    pub json: serde_json::Value,
}

/// Every measurement as JSON: per kernel its unit and, per engine, the
/// size, the result and every repetition's ns per unit.
fn details(budget: Budget, measured: &[(&Kernel, Vec<Measurement>)]) -> serde_json::Value {
    let kernels: Vec<serde_json::Value> = measured
        .iter()
        .map(|(k, ms)| {
            let engines: serde_json::Map<String, serde_json::Value> = ms
                .iter()
                .map(|m| {
                    (
                        m.engine.name().to_string(),
                        serde_json::json!({"n": m.n, "result": m.result,
                            "ns_per_unit": m.ns_per_unit, "samples": m.samples}),
                    )
                })
                .collect();
            serde_json::json!({"kernel": k.name, "unit": k.unit, "engines": engines})
        })
        .collect();
    serde_json::json!({
        "target_ms": budget.target.as_millis() as u64,
        "repetitions": budget.repetitions,
        "planted_slowdown": planted_slowdown(),
        "kernels": kernels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jit_and_rust_kernels_agree() {
        for k in all() {
            let n = if k.name == "fib" { 15 } else { 3000 };
            let (jit, _) = run_once(&k, Engine::Jit, n);
            assert_eq!(jit, (k.rust)(n), "{}", k.name);
        }
    }

    #[test]
    fn fib_call_counts() {
        assert_eq!(fib_calls(0), 1.0);
        assert_eq!(fib_calls(1), 1.0);
        assert_eq!(fib_calls(2), 3.0);
        assert_eq!(fib_calls(5), 15.0);
    }
}
