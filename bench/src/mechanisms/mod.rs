//! The five preemption mechanisms side by side, in one run on one machine.
//!
//! `coop` stops a goroutine only at function entries and runtime
//! operations; `async` signals its thread and redirects it from the
//! handler; `poll`, `trap` and `patch` instrument loop back-edges (a flag
//! load and a branch; a load from a poll page that faults once armed, by
//! swapping the goroutine's page pointer or, `trap/mprotect`, by
//! protecting one global page; a branch rewritten into a jump to a yield
//! stub when a stop is requested). Each buys its latency with a different
//! cost, and this suite measures both sides:
//!
//! 1. **Overhead on tight loops.** Six kernels (an empty loop, `sum`,
//!    nested loops, a heap walk, a loop whose every iteration stores a ref
//!    through the write barrier, a loop that calls a leaf function), each
//!    under every mechanism at procs 1 with a 10 ms quantum (so every
//!    mechanism that can stop a call-free loop stops it about 100 times a
//!    second), against **no preemption at all**: code compiled for `coop`,
//!    which carries no back-edge instrumentation, run with a one-hour
//!    quantum. The ratio therefore holds both what the instrumentation
//!    costs on every iteration and what the stops cost. Every run is a
//!    fresh `preempt run` process timing its kernel with `now` (so
//!    compilation and start-up are not in the figure, and a mechanism's
//!    process-wide state, such as trap's poll pages and fault handler,
//!    cannot leak into the next run); the configurations are interleaved,
//!    their order rotating each round, and the fastest run of each is
//!    compared.
//! 2. **Instruction counts**, where this VM's timers are too noisy for a
//!    1% question: `valgrind --tool=callgrind` counts every instruction of
//!    a `preempt run` of each kernel at two sizes; the difference over the
//!    difference in work is instructions per unit of work, start-up and
//!    compilation cancelled. These runs request no stop (one-hour
//!    quantum): under valgrind a 10 ms quantum is a stop every few
//!    thousand iterations instead of every few million (everything runs
//!    tens of times slower), and callgrind aborts on the asynchronous
//!    path's redirected signal return. So this table is the steady-state
//!    cost of the code each mechanism runs; the stops' cost is in the
//!    timed ratio and in the arm/disarm figures.
//! 3. **Time-to-preempt**: a spinner at procs 1 behind a goroutine that
//!    sleeps 1 ms at a time, so the monitor asks the spinner to stop once
//!    per quantum; the runtime's per-mechanism histogram (request to
//!    arrival in the scheduler, `preempt run --stats-json`), next to the
//!    raw signal floor measured in this process at the monitor's cadence
//!    and back to back ([`crate::floor`]). The spinner has no call for
//!    every mechanism but `coop`, which can never stop such a loop: it
//!    gets the same spinner calling a function, and says so.
//! 4. **Code size** (bytes of the kernels' functions and of the whole
//!    published module, per mode) and **arming cost** (the `arm (...)` and
//!    `disarm (...)` histograms of the time-to-preempt runs: what a
//!    requester spends setting a poll word, swapping a poll page or
//!    protecting it, rewriting back-edges, and undoing it).
//!
//! A mechanism this build cannot run (its `preempt run` fails) is
//! reported as `not measured: <why>` everywhere and the others are
//! measured as usual; nothing here asserts a timing. The table goes to
//! stdout, every figure and raw run to `target/bench/mechanisms.json`, and
//! two SVG plots (latency percentiles per mechanism; overhead per kernel
//! and mechanism) beside it. Published figures from other runtimes are
//! printed for orientation: they were measured elsewhere, on other
//! benchmarks, and are not reproduced here.
//!
//! Its files: this one (the variants, the kernels, the suite from start to
//! end), [`measure`] (what is measured, in which order, and how often),
//! [`runs`] (one `preempt run` each: timed, counted under valgrind, or
//! stopped by the quantum), [`stats`] (instruction counts, ratios,
//! percentiles, histograms), [`report`] (the tables and the JSON) and
//! [`plots`] (the two SVG plots).

mod measure;
mod plots;
mod report;
mod runs;
mod stats;

pub use measure::rotation;
pub use stats::{overhead_pct, per_unit, valgrind_instructions, Hist};

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use preempt_jit::ir::PreemptMode;
use serde_json::{json, Value};

use crate::doc::Doc;
use crate::kernels::{self, Kernel};
use crate::runtime::Options;
use measure::{measure, Plan};
use report::Out;

/// The kernels `kernels` has no twin of, in the same self-timing style.
pub const EMPTY: &str = include_str!("empty.pir");
pub const BARRIER: &str = include_str!("barrier.pir");
pub const CALLS: &str = include_str!("calls.pir");

/// The quantum every mechanism is measured at, as `preempt run` spells it.
pub const QUANTUM: Duration = Duration::from_millis(10);
const QUANTUM_FLAG: &str = "10ms";
/// A quantum no run reaches: no stop is ever requested.
const NO_STOP_FLAG: &str = "3600s";

/// Published figures, printed for orientation (not measured here).
pub const ANCHORS: &[&str] = &[
    "JEP 312 (Thread-Local Handshakes, JDK 10), success metric: the per-thread poll \"does not \
     incur performance overheads larger than 1% in standard benchmarks\"",
    "Go, design doc 24543 (non-cooperative preemption, 2018), on the loop preemption of \
     golang/go#10958: fault-based preemption (one load per back-edge, no branch; CL 43050) slowed a large \
     benchmark suite by 7.8% geomean against the same tree without it (1% against Go 1.9), with \
     significantly worse outliers",
    "wasmtime, PR 12990 (MMU-based epoch interruption; benchmarks in wasmtime#1749, SpiderMonkey): \
     epoch interruption's compare-against-a-deadline check costs 14.4% against no check; dead \
     loads from a page unmapped on interrupt, in function prologues and loop headers, 2.8%",
];

/// One way of stopping goroutines that the suite measures: a mode and the
/// flags that select a variant of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    pub label: &'static str,
    pub mode: PreemptMode,
    pub flags: &'static [&'static str],
    /// Runs the code of the variant of this label (so its code is sized
    /// and counted there).
    pub same_code_as: Option<&'static str>,
}

const fn variant(label: &'static str, mode: PreemptMode) -> Variant {
    Variant {
        label,
        mode,
        flags: &[],
        same_code_as: None,
    }
}

/// Every variant, in table order.
pub const VARIANTS: &[Variant] = &[
    variant("coop", PreemptMode::Coop),
    variant("async", PreemptMode::Async),
    variant("poll", PreemptMode::Poll),
    variant("trap", PreemptMode::Trap),
    Variant {
        label: "trap/mprotect",
        mode: PreemptMode::Trap,
        flags: &["--trap-arm", "mprotect"],
        same_code_as: Some("trap"),
    },
    variant("patch", PreemptMode::Patch),
];

/// The suite's result.
#[derive(Clone, Debug)]
pub struct Report {
    pub text: String,
    pub json: Value,
    /// The files written (JSON, plots).
    pub files: Vec<PathBuf>,
    /// The text's blocks, for the HTML page.
    pub doc: Doc,
}

/// The suite's kernels, in table order.
pub const KERNELS: &[&str] = &["empty", "sum", "nested", "heapwalk", "barrier", "calls"];

fn empty_ref(n: i64) -> i64 {
    n.max(1)
}

fn barrier_ref(n: i64) -> i64 {
    (0..n.max(1)).fold(0i64, |s, i| s.wrapping_add(i))
}

fn calls_ref(n: i64) -> i64 {
    (0..n.max(1)).fold(1i64, |x, _| {
        x.wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
    })
}

/// The six kernels: `sum`, `nested` and `heapwalk` from [`kernels`], the
/// others from `mechanisms/`.
pub fn suite_kernels() -> Vec<Kernel> {
    let mut from_kernels = kernels::all();
    let mut take = |name: &str| {
        let i = from_kernels
            .iter()
            .position(|k| k.name == name)
            .expect("the kernels suite has sum, nested and heapwalk");
        from_kernels.swap_remove(i)
    };
    let (sum, nested, heapwalk) = (take("sum"), take("nested"), take("heapwalk"));
    let linear = |name, unit, source, rust| Kernel {
        name,
        unit,
        source,
        rust,
        work: |n| n.max(1) as f64,
        start: 100_000,
        grow: |n| n * 2,
    };
    vec![
        linear("empty", "iteration", EMPTY, empty_ref),
        sum,
        nested,
        heapwalk,
        linear("barrier", "iteration", BARRIER, barrier_ref),
        linear("calls", "call", CALLS, calls_ref),
    ]
}

/// The kernel with the `@main` of [`kernels::program`], as text (for
/// `preempt run`), after a function of `pad` instructions that nothing
/// calls: each one moves the kernel's code by 7 bytes (x86-64), so the
/// same loop can be timed at several alignments.
fn kernel_source(k: &Kernel, n: i64, pad: usize) -> String {
    let mut s = String::from("; moves the code below; never called\nfunc @pad(%x: i64) -> i64 {\n");
    for _ in 0..pad {
        s.push_str("    %x = add %x, 1\n");
    }
    let _ = write!(
        s,
        "    ret %x\n}}\n\n{}\nfunc @main() {{\n    %t0 = now\n    %r = call @kernel({n})\n    \
         %t1 = now\n    %dt = sub %t1, %t0\n    print \"{{}} {{}}\", %r, %dt\n    ret\n}}\n",
        k.source
    );
    s
}

/// The padding of round `r` (see [`kernel_source`]): 0, 14, 28, 42, 56
/// bytes, then again; every configuration of a round gets the same.
fn round_pad(r: usize) -> usize {
    (r % 5) * 2
}

/// Measures everything and builds the report: the table, the JSON
/// (`target/bench/mechanisms.json`) and the plots beside it.
pub fn run(opts: Options, quick: bool) -> Report {
    let started = Instant::now();
    let m = measure(&opts, Plan::new(quick));
    let mut out = Out {
        doc: Doc::new("mechanisms"),
        ..Out::default()
    };
    out.doc.title(
        format!(
            "mechanisms: {} on the JIT, procs 1, quantum 10 ms, same run",
            VARIANTS
                .iter()
                .map(|v| v.label)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        quick,
    );
    out.doc
        .line(format!("machine: {}", crate::machine_description()));
    for w in crate::noise::warnings(&m.seen()) {
        out.doc.warning(w);
    }
    m.timed_table(&mut out);
    m.counted_table(&mut out);
    m.ttp_table(&mut out);
    let arming = m.code_table(&mut out);
    out.doc.title(
        "published figures, for orientation (measured elsewhere, not here):",
        false,
    );
    for a in ANCHORS {
        out.doc.line(format!("  - {a}"));
    }

    let dir = opts.paths.target.join("bench");
    let (latency, overhead, json_path) = (
        dir.join("mechanisms-latency.svg"),
        dir.join("mechanisms-overhead.svg"),
        dir.join("mechanisms.json"),
    );
    let mut files = Vec::new();
    let plotted = std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
        .and_then(|()| m.plots(&latency, &overhead));
    match plotted {
        Ok(()) => files.extend([latency, overhead]),
        Err(e) => out.notes.push(format!("plots not written: {e}")),
    }
    let mut notes = out.notes;
    notes.extend(out.failures.iter().map(|f| format!("not measured: {f}")));
    let mut json = m.json(arming, &notes);
    json["elapsed_s"] = json!(started.elapsed().as_secs_f64());
    let result = crate::results::Document::one(
        &crate::results::Provenance::here(quick),
        crate::results::Section {
            suite: "mechanisms".into(),
            figures: crate::results::figures::mechanisms(&json),
            details: json.clone(),
        },
    );
    let json_written = result.write(&json_path);
    if let Err(e) = &json_written {
        notes.push(e.clone());
    }
    let mut doc = out.doc;
    for n in &notes {
        doc.note(n.clone());
    }
    for (f, caption) in files.iter().zip(PLOT_CAPTIONS) {
        doc.plot(caption, f.clone());
    }
    if json_written.is_ok() {
        doc.line(format!("wrote {}", json_path.display()));
        files.push(json_path);
    }
    doc.line(format!(
        "(suite time {:.0} s)",
        started.elapsed().as_secs_f64()
    ));
    Report {
        text: doc.text(),
        json,
        files,
        doc,
    }
}

/// What the two plots show, in the order they are written.
const PLOT_CAPTIONS: [&str; 2] = [
    "time-to-preempt by mechanism, against the signal floor",
    "overhead per kernel and mechanism, against no preemption",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_verify_and_agree_with_their_references() {
        for k in suite_kernels() {
            let text = kernel_source(&k, 10, 3);
            let mut p = preempt_jit::ir::parse(&text).expect("parses");
            preempt_jit::ir::verify(&mut p).expect("verifies");
            // The do-while edge (n of 0 or 1 still runs the body once)
            // where the reference follows it; heapwalk walks n / 1000 rounds.
            let sizes: &[i64] = match k.name {
                "heapwalk" => &[1000, 3000],
                "nested" => &[1, 2, 30],
                _ => &[0, 1, 2, 3000],
            };
            for &n in sizes {
                let cfg = kernels::bench_config(format!("{}.pir", k.name));
                let (r, _) = kernels::run_with(&k, kernels::Engine::Jit, n, &cfg);
                assert_eq!(r, (k.rust)(n), "{} at {n}", k.name);
            }
        }
    }
}
