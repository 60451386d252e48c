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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use preempt_jit::ir::PreemptMode;
use preempt_jit::module::Module;
use preempt_runtime::stats;
use serde_json::{json, Map, Value};

use crate::kernels::{self, Kernel};
use crate::plot;
use crate::process::{self, Finished};
use crate::runtime::{self as rt, Options};

/// The kernels `kernels` has no twin of, in the same self-timing style.
pub const EMPTY: &str = include_str!("mechanisms/empty.pir");
pub const BARRIER: &str = include_str!("mechanisms/barrier.pir");
pub const CALLS: &str = include_str!("mechanisms/calls.pir");

/// The quantum every mechanism is measured at, as `preempt run` spells it.
pub const QUANTUM: Duration = Duration::from_millis(10);
const QUANTUM_FLAG: &str = "10ms";
/// A quantum no run reaches: no stop is ever requested.
const NO_STOP_FLAG: &str = "3600s";

/// Published figures, printed for orientation (not measured here).
pub const ANCHORS: &[&str] = &[
    "JEP 312 (Thread-Local Handshakes, JDK 10), success metric: the per-thread poll \"does not \
     incur performance overheads larger than 1% in standard benchmarks\"",
    "Go, design doc 24543 (non-cooperative preemption, 2018), on the loop preemption of issue \
     10958: fault-based preemption (one load per back-edge, no branch; CL 43050) slowed a large \
     benchmark suite by 7.8% geomean against the same tree without it (1% against Go 1.9), with \
     significantly worse outliers",
    "wasmtime, PR 12990 (MMU-based epoch interruption; benchmarks in issue 1749, SpiderMonkey): \
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
}

/// How much to measure.
#[derive(Clone, Debug)]
struct Plan {
    /// Signal-floor samples 10 ms apart, and 200 us apart.
    floor: usize,
    floor_hot: usize,
    /// Sleeps (so preemptions) of each time-to-preempt run.
    sleeps: u64,
    /// Each timed kernel run, and how many rounds.
    target: Duration,
    rounds: usize,
    /// The kernels counted under valgrind, and the work of the smaller size.
    counted: Vec<&'static str>,
    counted_units: f64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                floor: 20,
                floor_hot: 100,
                sleeps: 5,
                target: Duration::from_millis(20),
                rounds: 1,
                counted: vec!["empty"],
                counted_units: 20_000.0,
            }
        } else {
            Plan {
                floor: 200,
                floor_hot: 1000,
                sleeps: 200,
                // Many short runs rather than a few long ones: on this VM a
                // process is fast or slow as a whole (the same program, the
                // same placement, 131 to 188 ms), so the fastest of ten
                // processes is far steadier than the fastest of five.
                target: Duration::from_millis(100),
                rounds: 10,
                counted: KERNELS.to_vec(),
                counted_units: 500_000.0,
            }
        }
    }
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

// ---- pure helpers ----

/// The instruction count valgrind reports on stderr: callgrind's
/// `==PID== Collected : N`, else the summary's `==PID== I   refs:  N,NNN`
/// (cachegrind's, and callgrind's last line).
pub fn valgrind_instructions(stderr: &str) -> Option<u64> {
    let after = |tag: &str| {
        stderr.lines().rev().find_map(|l| {
            let (_, rest) = l.split_once(tag)?;
            let digits: String = rest.trim().chars().filter(|c| *c != ',').collect();
            digits.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    after("Collected :").or_else(|| after("I   refs:"))
}

/// Instructions per unit of work from counts at two sizes, (work,
/// instructions) each: the difference cancels start-up, compilation and
/// the timing `@main`.
pub fn per_unit(small: (f64, u64), large: (f64, u64)) -> Option<f64> {
    let (dw, di) = (large.0 - small.0, large.1 as f64 - small.1 as f64);
    (dw > 0.0).then_some(di / dw)
}

/// `mode` against `base`, in percent (positive: slower, or more).
pub fn overhead_pct(mode: f64, base: f64) -> Option<f64> {
    (base > 0.0 && mode.is_finite()).then(|| (mode / base - 1.0) * 100.0)
}

/// Nearest-rank percentile of unsorted samples.
fn pct_u64(samples: &[u64], p: f64) -> Option<f64> {
    let mut v: Vec<i64> = samples.iter().map(|&x| x as i64).collect();
    v.sort_unstable();
    rt::percentile(&v, p).map(|x| x as f64)
}

/// The order of the configurations in round `r`: rotated by one each
/// round, so that no configuration always runs first, or always last.
pub fn rotation(len: usize, r: usize) -> Vec<usize> {
    (0..len).map(|i| (i + r) % len.max(1)).collect()
}

/// The result and elapsed nanoseconds a self-timed kernel prints.
fn kernel_output(stdout: &str) -> Option<(i64, f64)> {
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut w = line.split_whitespace().map(str::parse::<i64>);
    match (w.next(), w.next(), w.next()) {
        (Some(Ok(r)), Some(Ok(ns)), None) => Some((r, ns as f64)),
        _ => None,
    }
}

/// One latency histogram from `--stats-json`, in ns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hist {
    pub count: u64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Hist {
    /// Histogram `name` of a run's stats.
    pub fn from_stats(stats: &Value, name: &str) -> Result<Hist, String> {
        let h = &stats["histograms"][name];
        if h.is_null() {
            return Err(format!("the run recorded no \"{name}\""));
        }
        let f = |k: &str| {
            h[k].as_f64()
                .ok_or_else(|| format!("\"{name}\" has no {k}"))
        };
        Ok(Hist {
            count: h["count"].as_u64().unwrap_or(0),
            min: f("min_ns").unwrap_or(f64::NAN),
            p50: f("p50_ns")?,
            p90: f("p90_ns").unwrap_or(f64::NAN),
            p99: f("p99_ns")?,
            p99_9: f("p99_9_ns")?,
            max: f("max_ns")?,
        })
    }

    /// Nearest-rank percentiles of raw samples (ns).
    fn from_samples(v: &[u64]) -> Result<Hist, String> {
        let p = |q| pct_u64(v, q).ok_or_else(|| "no samples".to_string());
        Ok(Hist {
            count: v.len() as u64,
            min: p(0.0)?,
            p50: p(50.0)?,
            p90: p(90.0)?,
            p99: p(99.0)?,
            p99_9: p(99.9)?,
            max: p(100.0)?,
        })
    }

    /// (percentile, us) points for a latency plot.
    fn points(&self) -> Vec<(f64, f64)> {
        [
            (0.0, self.min),
            (50.0, self.p50),
            (90.0, self.p90),
            (99.0, self.p99),
            (99.9, self.p99_9),
            (100.0, self.max),
        ]
        .into_iter()
        .filter(|p| p.1.is_finite() && p.1 > 0.0)
        .map(|(p, ns)| (p, ns / 1e3))
        .collect()
    }

    fn json(&self) -> Value {
        let n = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        json!({"count": self.count, "min_ns": n(self.min), "p50_ns": self.p50,
               "p90_ns": n(self.p90), "p99_ns": self.p99, "p99_9_ns": self.p99_9,
               "max_ns": self.max})
    }
}

// ---- child processes ----

/// Runs `preempt run` (under valgrind, when asked) on files this suite
/// writes to `target/bench/mechanisms/`.
struct Runner<'a> {
    opts: &'a Options,
    dir: PathBuf,
}

impl Runner<'_> {
    fn write(&self, name: &str, text: &str) -> Result<PathBuf, String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let file = self.dir.join(format!("{}.pir", name.replace('/', "-")));
        std::fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        Ok(file)
    }

    /// A stats file for a run named `name`.
    fn stats_path(&self, name: &str) -> PathBuf {
        self.dir
            .join(format!("{}.stats.json", name.replace('/', "-")))
    }

    /// `preempt run FILE FLAGS` after the words of `prefix` (a tool such
    /// as valgrind), ended by the runtime's watchdog after `timeout`
    /// seconds; an error unless it exits 0.
    fn run(
        &self,
        prefix: &[&str],
        file: &Path,
        flags: &[String],
        timeout: u64,
    ) -> Result<Finished, String> {
        let exe = self
            .opts
            .preempt_exe
            .clone()
            .ok_or("no preempt executable to run")?;
        let mut words: Vec<std::ffi::OsString> = prefix.iter().map(Into::into).collect();
        words.extend(self.opts.exec_wrapper.iter().map(Into::into));
        words.push(exe.into_os_string());
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..])
            .arg("run")
            .arg(file)
            .args(["--timeout", &timeout.to_string()])
            .args(flags);
        let f = process::run(&mut cmd, Duration::from_secs(timeout + 30))
            .map_err(|e| format!("cannot run {}: {e}", words[0].to_string_lossy()))?;
        if f.ok() {
            Ok(f)
        } else {
            Err(why(&f))
        }
    }

    /// Runs with `--stats-json` and returns the run and its stats.
    fn run_with_stats(
        &self,
        name: &str,
        file: &Path,
        flags: &[String],
        timeout: u64,
    ) -> Result<(Finished, Value), String> {
        let path = self.stats_path(name);
        let mut all = flags.to_vec();
        all.extend(["--stats-json".to_string(), path.display().to_string()]);
        let f = self.run(&[], file, &all, timeout)?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let v = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((f, v))
    }
}

/// Why a child failed, in one line: the first line of its stderr that is
/// not valgrind's own, or how it ended.
fn why(f: &Finished) -> String {
    let line = f
        .stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("=="));
    match line {
        Some(l) if f.status.is_some() && !f.timed_out => l.to_string(),
        _ => f.describe(),
    }
}

/// `preempt run` flags for `v` (None: no preemption at all) at procs 1.
fn flags(v: Option<&Variant>, quantum: &str) -> Vec<String> {
    let mode = v.map_or(PreemptMode::Coop, |v| v.mode);
    let mut f: Vec<String> = [
        "--preempt",
        mode.name(),
        "--procs",
        "1",
        "--quantum",
        quantum,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(v) = v {
        f.extend(v.flags.iter().map(|s| s.to_string()));
    }
    f
}

/// Whether this build runs `v`: a tiny kernel through `preempt run`.
fn probe(r: &Runner<'_>, v: &Variant) -> Result<(), String> {
    let k = &suite_kernels()[0];
    let file = r.write("probe", &kernel_source(k, 1000, 0))?;
    r.run(&[], &file, &flags(Some(v), QUANTUM_FLAG), 10)
        .map(|_| ())
}

/// One time-to-preempt run: the stats of a spinner stopped `sleeps`
/// times by the monitor's quantum.
fn ttp_run(r: &Runner<'_>, v: &Variant, sleeps: u64) -> Result<Value, String> {
    // coop cannot stop a call-free loop: its spinner calls a function.
    let src = if v.mode == PreemptMode::Coop {
        rt::SLEEPER
    } else {
        crate::preempt::SLEEPER_NOCALL
    };
    let name = format!("ttp-{}", v.label);
    let file = r.write(&name, &rt::with_sizes(src, sleeps, None))?;
    r.run_with_stats(&name, &file, &flags(Some(v), QUANTUM_FLAG), 60)
        .map(|(_, st)| st)
}

/// valgrind's version, or why it cannot count here.
fn valgrind(opts: &Options) -> Result<String, String> {
    if !opts.exec_wrapper.is_empty() {
        return Err("runs go through an emulator (PREEMPT_EXEC_WRAPPER)".into());
    }
    let out = Command::new("valgrind")
        .arg("--version")
        .output()
        .map_err(|e| format!("valgrind not found ({e})"))?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !v.is_empty() {
        Ok(v)
    } else {
        Err("valgrind --version failed".into())
    }
}

/// The smallest size of `k` with at least `units` of work.
fn size_for(k: &Kernel, units: f64) -> i64 {
    let mut n = k.start.clamp(1, 1000);
    while (k.work)(n) < units {
        n = (k.grow)(n).max(n + 1);
    }
    n
}

/// Instructions per unit of work of `k` under `v` (None: coop code) with
/// no stop requested, and the raw counts.
fn count_instructions(
    r: &Runner<'_>,
    k: &Kernel,
    v: Option<&Variant>,
    units: f64,
) -> Result<(f64, Value), String> {
    let n1 = size_for(k, units);
    let n2 = size_for(k, (k.work)(n1) * 4.0);
    let prefix = [
        "valgrind",
        "--tool=callgrind",
        "--smc-check=all-non-file",
        "--callgrind-out-file=/dev/null",
    ];
    let label = v.map_or("coop", |v| v.label);
    let mut counts = Vec::new();
    for n in [n1, n2] {
        let file = r.write(
            &format!("count-{}-{label}", k.name),
            &kernel_source(k, n, 0),
        )?;
        let f = r
            .run(&prefix, &file, &flags(v, NO_STOP_FLAG), 100)
            .map_err(|e| format!("valgrind: {e}"))?;
        let i = valgrind_instructions(&f.stderr).ok_or("valgrind printed no instruction count")?;
        counts.push(((k.work)(n), i));
    }
    let pu = per_unit(counts[0], counts[1]).ok_or("no work between the two sizes")?;
    let raw = json!({"n": [n1, n2], "work": [counts[0].0, counts[1].0],
                     "instructions": [counts[0].1, counts[1].1]});
    Ok((pu, raw))
}

/// The watchdog of a timed run (about 100 ms of work, or 20 ms).
const TIMED_TIMEOUT_S: u64 = 10;

/// Whether a child's failure was a hang (the watchdog, or the kill timer).
fn hung(e: &str) -> bool {
    e.contains("watchdog") || e.starts_with("killed after")
}

/// `f` of every item, on up to `threads` threads, in the items' order.
fn parallel<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                done.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// One timed run of a kernel.
#[derive(Clone, Copy, Debug)]
struct KernelRun {
    result: i64,
    ns: f64,
    /// Goroutine stops of any kind during the run.
    stops: u64,
}

/// Runs `k` at size `n` under `v` (None: no preemption at all) in a
/// fresh process, its code moved by `pad` (see [`kernel_source`]).
fn time_kernel(
    r: &Runner<'_>,
    k: &Kernel,
    n: i64,
    pad: usize,
    v: Option<&Variant>,
) -> Result<KernelRun, String> {
    let file = r.write(&format!("time-{}", k.name), &kernel_source(k, n, pad))?;
    let (quantum, label) = match v {
        Some(v) => (QUANTUM_FLAG, v.label),
        None => (NO_STOP_FLAG, "none"),
    };
    let (f, st) = r.run_with_stats(
        &format!("time-{}-{label}", k.name),
        &file,
        &flags(v, quantum),
        TIMED_TIMEOUT_S,
    )?;
    let (result, ns) =
        kernel_output(&f.stdout).ok_or_else(|| format!("unexpected output {:?}", f.stdout))?;
    Ok(KernelRun {
        result,
        ns,
        stops: st["preemptions"]["total"].as_u64().unwrap_or(0),
    })
}

/// Bytes of the functions' code and of the whole published module of
/// `k`'s program compiled for `mode` (compiled here: nothing runs).
fn code_size(k: &Kernel, mode: PreemptMode) -> Result<CodeSize, String> {
    let mut prog = kernels::program(k, 1000);
    preempt_jit::opt::optimize(&mut prog, 1);
    prog.settings.preempt = Some(mode);
    let m = Module::compile(&prog).map_err(|e| format!("compile: {e}"))?;
    let funcs = m
        .tables
        .functions
        .iter()
        .map(|f| f.end.saturating_sub(f.start))
        .sum();
    Ok((funcs, m.code.len()))
}

/// A configuration's timed runs of one kernel.
#[derive(Clone, Debug, Default)]
struct Timing {
    ns: Vec<f64>,
    stops: Vec<u64>,
}

impl Timing {
    fn best(&self) -> f64 {
        self.ns.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// Stops per second of kernel time, over all runs.
    fn stops_per_s(&self) -> f64 {
        let s: f64 = self.ns.iter().sum::<f64>() / 1e9;
        if s > 0.0 {
            self.stops.iter().sum::<u64>() as f64 / s
        } else {
            0.0
        }
    }
}

/// One kernel's timed runs: the baseline and each variant.
#[derive(Debug)]
struct KernelOverhead {
    n: i64,
    work: f64,
    none: Result<Timing, String>,
    variants: Vec<(&'static str, Result<Timing, String>)>,
}

impl KernelOverhead {
    fn timing(&self, label: &str) -> Result<&Timing, String> {
        self.variants
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, t)| t.as_ref().map_err(Clone::clone))
            .unwrap_or_else(|| Err("not run".into()))
    }

    fn pct(&self, label: &str) -> Result<f64, String> {
        let none = self.none.as_ref().map_err(Clone::clone)?;
        let t = self.timing(label)?;
        overhead_pct(t.best(), none.best()).ok_or_else(|| "no baseline".into())
    }
}

/// Calibrates `k` to about `target` with no preemption, then runs the
/// baseline and every variant in `vs`, `rounds` times, interleaved. A
/// variant that has hung twice (here or in an earlier kernel: `hangs`
/// lists a label per hang) is not run again, so a broken one costs the
/// suite two watchdog periods rather than one per kernel.
fn overhead(
    r: &Runner<'_>,
    k: &Kernel,
    vs: &[Variant],
    target: Duration,
    rounds: usize,
    hangs: &mut Vec<&'static str>,
) -> KernelOverhead {
    let target_ns = target.as_nanos() as f64;
    let mut n = k.start;
    let calibrated = loop {
        match time_kernel(r, k, n, 0, None) {
            Ok(run) if run.ns >= target_ns / 4.0 => {
                // Once more: a run slowed by the host would size every
                // later run too small.
                let again = time_kernel(r, k, n, 0, None).map_or(run.ns, |r2| r2.ns.min(run.ns));
                break Ok(((n as f64 * target_ns / again) as i64).max(1));
            }
            Ok(_) => n = (k.grow)(n),
            Err(e) => break Err(e),
        }
    };
    let n = match calibrated {
        Ok(n) => n,
        Err(e) => {
            return KernelOverhead {
                n,
                work: (k.work)(n),
                none: Err(format!("no preemption: {e}")),
                variants: vs
                    .iter()
                    .map(|v| (v.label, Err("no baseline".into())))
                    .collect(),
            }
        }
    };
    // Slot 0 is the baseline, then the variants.
    let mut slots: Vec<Result<Timing, String>> = std::iter::once(Ok(Timing::default()))
        .chain(vs.iter().map(|v| {
            if hangs.iter().filter(|&&l| l == v.label).count() >= 2 {
                Err("not run: it hung twice in earlier kernels".to_string())
            } else {
                Ok(Timing::default())
            }
        }))
        .collect();
    let mut expected: Option<i64> = None;
    for round in 0..rounds.max(1) {
        for i in rotation(slots.len(), round) {
            if slots[i].is_err() {
                continue;
            }
            let v = i.checked_sub(1).map(|j| &vs[j]);
            let run = time_kernel(r, k, n, round_pad(round), v).and_then(|run| match expected {
                Some(e) if e != run.result => Err(format!(
                    "computed {} where no preemption computed {e}",
                    run.result
                )),
                _ => Ok(run),
            });
            match (run, &mut slots[i]) {
                (Ok(run), Ok(t)) => {
                    expected.get_or_insert(run.result);
                    t.ns.push(run.ns);
                    t.stops.push(run.stops);
                }
                (Err(e), slot) => {
                    if let (true, Some(v)) = (hung(&e), v) {
                        hangs.push(v.label);
                    }
                    *slot = Err(e);
                }
                (Ok(_), Err(_)) => {}
            }
        }
    }
    let mut it = slots.into_iter();
    let none = it.next().expect("the baseline's slot");
    KernelOverhead {
        n,
        work: (k.work)(n),
        none,
        variants: vs.iter().map(|v| v.label).zip(it).collect(),
    }
}

// ---- the report ----

/// A table with a left-aligned first column and right-aligned others; a
/// row of two cells (a name and a reason) is printed as one line.
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let cols = head.len();
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        // A reason row sets the first column's width only.
        let n = if r.len() == cols { cols } else { 1 };
        for (w, c) in width.iter_mut().zip(r).take(n) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                let _ = write!(s, "{c:<w$}", w = width[0]);
            } else if cells.len() == cols {
                let _ = write!(s, "  {c:>w$}", w = width[i]);
            } else {
                let _ = write!(s, "  {c}");
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&head.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn signed_pct(v: f64) -> String {
    format!("{v:+.2}%")
}

fn us(ns: f64) -> String {
    if ns.is_finite() {
        format!("{:.1}", ns / 1e3)
    } else {
        "-".to_string()
    }
}

fn json_map<K: ToString>(items: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Object(
        items
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<String, Value>>(),
    )
}

fn fig_json<T: Clone + Into<Value>>(r: &Result<T, String>) -> Value {
    match r {
        Ok(v) => v.clone().into(),
        Err(e) => json!({ "unavailable": e }),
    }
}

/// Bytes of the kernel programs' functions, and of their whole modules
/// (stubs and padding included).
type CodeSize = (usize, usize);

/// Everything the suite measured, before it is printed.
struct Measured {
    plan: Plan,
    kernels: Vec<Kernel>,
    /// Signal-floor samples (ns), 10 ms apart and 200 us apart.
    floor: Result<Vec<u64>, String>,
    floor_hot: Result<Vec<u64>, String>,
    /// Why a variant could not be run (absent: it runs).
    unavailable: Vec<(&'static str, String)>,
    /// Each variant's time-to-preempt run's stats.
    ttp: Vec<(&'static Variant, Result<Value, String>)>,
    /// Each kernel's timed runs, in `kernels` order.
    timed: Vec<KernelOverhead>,
    /// valgrind's version, or why nothing was counted.
    valgrind: Result<String, String>,
    /// (kernel, variant, instructions per unit of work).
    counted: Vec<(&'static str, &'static str, Result<f64, String>)>,
    /// Each variant's code size.
    sizes: Vec<(&'static str, Result<CodeSize, String>)>,
    /// Raw runs, for the JSON.
    runs: Vec<Value>,
}

/// The variants whose code is their own (the others run one of these).
fn own_code() -> impl Iterator<Item = &'static Variant> {
    VARIANTS.iter().filter(|v| v.same_code_as.is_none())
}

/// Measures everything: the floor first, while this process runs nothing
/// else; then which variants this build runs (and their time-to-preempt
/// runs); the timed kernels; the counted kernels; code size.
fn measure(opts: &Options, plan: Plan) -> Measured {
    let runner = Runner {
        opts,
        dir: opts.paths.target.join("bench").join("mechanisms"),
    };
    let mut runs = Vec::new();
    // At the monitor's cadence (the case the runtime is in), and back to
    // back.
    let floor = crate::floor::measure(libc::SIGURG, plan.floor, QUANTUM);
    let floor_hot = crate::floor::measure(libc::SIGURG, plan.floor_hot, Duration::from_micros(200));

    let mut unavailable = Vec::new();
    let mut ttp = Vec::new();
    for v in VARIANTS {
        let t = probe(&runner, v).and_then(|()| {
            ttp_run(&runner, v, plan.sleeps)
                .map_err(|e| format!("its time-to-preempt run failed: {e}"))
        });
        match &t {
            Ok(stats) => {
                runs.push(json!({"bench": "time-to-preempt", "variant": v.label, "stats": stats}))
            }
            // A variant that cannot run a spinner is not measured further.
            Err(e) => unavailable.push((v.label, e.clone())),
        }
        ttp.push((v, t));
    }
    let reason = |label: &str| {
        unavailable
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, e)| e.clone())
    };
    let available: Vec<Variant> = VARIANTS
        .iter()
        .filter(|v| reason(v.label).is_none())
        .copied()
        .collect();

    let kernels = suite_kernels();
    let mut hangs = Vec::new();
    let timed = kernels
        .iter()
        .map(|k| overhead(&runner, k, &available, plan.target, plan.rounds, &mut hangs))
        .collect();

    // Counted: coop's code is the baseline; a variant that runs another's
    // code is counted there. Two at a time: a count does not depend on
    // the wall clock, and most of a valgrind run is its start-up.
    let valgrind = valgrind(opts);
    let mut counted = Vec::new();
    if valgrind.is_ok() {
        let jobs: Vec<(&Kernel, &'static Variant)> = kernels
            .iter()
            .filter(|k| plan.counted.contains(&k.name))
            .flat_map(|k| own_code().map(move |v| (k, v)))
            .collect();
        let results = parallel(&jobs, 2, |(k, v)| match reason(v.label) {
            Some(e) => Err(e),
            None => count_instructions(&runner, k, Some(v), plan.counted_units),
        });
        for ((k, v), r) in jobs.iter().zip(results) {
            let r = r.map(|(per_unit, raw)| {
                runs.push(json!({"bench": "instructions", "kernel": k.name,
                                 "variant": v.label, "raw": raw}));
                per_unit
            });
            counted.push((k.name, v.label, r));
        }
    }

    let sizes = own_code()
        .map(|v| {
            let r = match reason(v.label) {
                Some(e) => Err(e),
                None => kernels.iter().try_fold((0, 0), |(f, m), k| {
                    code_size(k, v.mode).map(|(f2, m2)| (f + f2, m + m2))
                }),
            };
            (v.label, r)
        })
        .collect();

    Measured {
        plan,
        kernels,
        floor,
        floor_hot,
        unavailable,
        ttp,
        timed,
        valgrind,
        counted,
        sizes,
        runs,
    }
}

/// The printed report under construction.
#[derive(Default)]
struct Out {
    text: String,
    notes: Vec<String>,
    /// Figures that were asked for and not obtained, with why.
    failures: Vec<String>,
}

impl Measured {
    fn reason(&self, label: &str) -> Option<String> {
        self.unavailable
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, e)| e.clone())
    }

    fn available(&self) -> impl Iterator<Item = &'static Variant> + '_ {
        VARIANTS.iter().filter(|v| self.reason(v.label).is_none())
    }

    /// The row that stands for `label` in every table when it could not run.
    fn not_measured(&self, label: &str) -> Option<Vec<String>> {
        self.reason(label)
            .map(|e| vec![label.to_string(), format!("not measured: {e}")])
    }

    fn kernel_names(&self) -> Vec<&'static str> {
        self.kernels.iter().map(|k| k.name).collect()
    }

    fn counted_names(&self) -> Vec<&'static str> {
        self.kernel_names()
            .into_iter()
            .filter(|n| self.plan.counted.contains(n))
            .collect()
    }

    fn count(&self, kernel: &str, label: &str) -> Result<f64, String> {
        self.counted
            .iter()
            .find(|(k, l, _)| *k == kernel && *l == label)
            .map(|(_, _, r)| r.clone())
            .unwrap_or_else(|| Err("not run".into()))
    }

    /// Instructions per unit of `label` against coop's code, in percent.
    fn count_pct(&self, kernel: &str, label: &str) -> Result<f64, String> {
        let base = self
            .count(kernel, "coop")
            .map_err(|e| format!("coop: {e}"))?;
        overhead_pct(self.count(kernel, label)?, base).ok_or_else(|| "no baseline".into())
    }

    fn size(&self, label: &str) -> Result<CodeSize, String> {
        self.sizes
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| Err("not compiled".into()))
    }

    fn floor_hist(&self) -> Result<Hist, String> {
        self.floor
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|v| Hist::from_samples(v))
    }

    fn floor_hot_hist(&self) -> Result<Hist, String> {
        self.floor_hot
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|v| Hist::from_samples(v))
    }

    /// Each variant's time-to-preempt histogram, or why there is none.
    fn ttp_hist(&self) -> Vec<(&'static Variant, Result<Hist, String>)> {
        self.ttp
            .iter()
            .map(|(v, t)| {
                let h = match self.reason(v.label) {
                    Some(e) => Err(e),
                    None => t
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(|st| Hist::from_stats(st, stats::ttp_name(v.mode))),
                };
                (*v, h)
            })
            .collect()
    }

    /// 1. Overhead, timed.
    fn timed_table(&self, out: &mut Out) {
        let names = self.kernel_names();
        let _ = writeln!(
            out.text,
            "\noverhead against no preemption at all (coop code, no stop), timed: fastest of {} \
             interleaved runs of ~{} ms each, a fresh process per run",
            self.plan.rounds,
            self.plan.target.as_millis()
        );
        let mut head = vec!["mode"];
        head.extend(&names);
        let mut rows = vec![std::iter::once("none: ns/unit".to_string())
            .chain(self.timed.iter().map(|o| match &o.none {
                Ok(t) => format!("{:.3}", t.best() / o.work),
                Err(_) => "-".into(),
            }))
            .collect::<Vec<_>>()];
        for v in VARIANTS {
            if let Some(r) = self.not_measured(v.label) {
                rows.push(r);
                continue;
            }
            let mut r = vec![v.label.to_string()];
            for (k, o) in names.iter().zip(&self.timed) {
                match o.pct(v.label) {
                    Ok(p) => r.push(signed_pct(p)),
                    Err(e) => {
                        r.push("-".into());
                        if o.none.is_ok() {
                            out.failures.push(format!("{k} under {}: {e}", v.label));
                        }
                    }
                }
            }
            rows.push(r);
        }
        out.text.push_str(&table(&head, &rows));
        for (k, o) in names.iter().zip(&self.timed) {
            if let Err(e) = &o.none {
                out.failures.push(format!("{k}: {e}"));
            }
        }
        let stops: Vec<String> = self
            .available()
            .map(|v| {
                let per: Vec<String> = self
                    .timed
                    .iter()
                    .map(|o| {
                        o.timing(v.label)
                            .map(|t| format!("{:.0}", t.stops_per_s()))
                            .unwrap_or_else(|_| "-".into())
                    })
                    .collect();
                format!("{} {}", v.label, per.join("/"))
            })
            .collect();
        if !stops.is_empty() {
            out.notes.push(format!(
                "stops per second of kernel time ({}; a run's count includes a stop at the \
                 `now` after the kernel): {}",
                names.join("/"),
                stops.join("; ")
            ));
        }
        out.notes.push(
            "coop never stops a call-free kernel: there its code and its runs are the \
             baseline's, so its figures are this machine's run-to-run noise; each round moves \
             every configuration's code by the same 0-56 bytes (a padding function), because \
             the alignment of a loop this small moves its time by up to 2x on this CPU"
                .into(),
        );
    }

    /// 2. Overhead, counted.
    fn counted_table(&self, out: &mut Out) {
        let version = match &self.valgrind {
            Ok(v) => v,
            Err(e) => {
                let _ = writeln!(out.text, "\ninstruction counts: not measured: {e}");
                out.notes.push(format!("instruction counts skipped: {e}"));
                return;
            }
        };
        let names = self.counted_names();
        let _ = writeln!(
            out.text,
            "\noverhead against no preemption at all, counted: instructions per unit of work \
             ({version} callgrind, whole process, two sizes; no stop requested)"
        );
        let mut head = vec!["mode"];
        head.extend(&names);
        let mut rows = vec![std::iter::once("none: instructions/unit".to_string())
            .chain(names.iter().map(|k| {
                self.count(k, "coop")
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_else(|_| "-".into())
            }))
            .collect::<Vec<_>>()];
        for v in own_code().filter(|v| v.label != "coop") {
            if let Some(r) = self.not_measured(v.label) {
                rows.push(r);
                continue;
            }
            let mut r = vec![v.label.to_string()];
            for k in &names {
                match self.count_pct(k, v.label) {
                    Ok(p) => r.push(signed_pct(p)),
                    Err(e) => {
                        r.push("-".into());
                        out.failures
                            .push(format!("instructions, {k} under {}: {e}", v.label));
                    }
                }
            }
            rows.push(r);
        }
        out.text.push_str(&table(&head, &rows));
        out.notes.push(
            "instruction counts request no stop (one-hour quantum): under valgrind a 10 ms \
             quantum would stop a loop every few thousand iterations instead of every few \
             million, and callgrind aborts on the asynchronous path's redirected signal return; \
             they are the cost of the code each mechanism runs (trap/mprotect runs trap's), the \
             stops' cost is in the timed table"
                .into(),
        );
    }

    /// 3. Time-to-preempt, against the floor.
    fn ttp_table(&self, out: &mut Out) {
        let _ = writeln!(
            out.text,
            "\ntime-to-preempt: a spinner at procs 1 stopped by the monitor's quantum, {} stops \
             per mechanism, request to arrival in the scheduler; the signal floor measured here",
            self.plan.sleeps
        );
        let floor = self.floor_hist().ok();
        let head = [
            "",
            "count",
            "p50 us",
            "p99 us",
            "p99.9 us",
            "max us",
            "p50/floor",
            "p99/floor",
        ];
        let row = |name: String, h: &Hist, ratios: bool| -> Vec<String> {
            let ratio = |v: f64, f: Option<f64>| match (ratios, f) {
                (true, Some(f)) if f > 0.0 => format!("{:.2}x", v / f),
                _ => "-".to_string(),
            };
            vec![
                name,
                h.count.to_string(),
                us(h.p50),
                us(h.p99),
                us(h.p99_9),
                us(h.max),
                ratio(h.p50, floor.map(|f| f.p50)),
                ratio(h.p99, floor.map(|f| f.p99)),
            ]
        };
        let mut rows = Vec::new();
        for (name, h) in [
            ("signal floor, 10 ms apart", self.floor_hist()),
            ("signal floor, 200 us apart", self.floor_hot_hist()),
        ] {
            rows.push(match h {
                Ok(h) => row(name.to_string(), &h, false),
                Err(e) => vec![name.to_string(), format!("not measured: {e}")],
            });
        }
        for (v, h) in self.ttp_hist() {
            let label = if v.mode == PreemptMode::Coop {
                format!("{} (spinner calls)", v.label)
            } else {
                v.label.to_string()
            };
            rows.push(match h {
                Ok(h) => row(label, &h, true),
                Err(e) => vec![label, format!("not measured: {e}")],
            });
        }
        out.text.push_str(&table(&head, &rows));
        out.notes.push(
            "coop cannot stop a loop without a call or a runtime operation: its time-to-preempt \
             is measured on the same spinner calling a function (@step), stopped at that \
             function's entry check; every other mechanism's spinner has no call"
                .into(),
        );
    }

    /// 4. Code size and arming; returns the arming figures for the JSON.
    fn code_table(&self, out: &mut Out) -> Value {
        let _ = writeln!(
            out.text,
            "\ncode and arming: bytes of the {} kernel programs' functions and of their whole \
             modules; what arming a goroutine for a stop, and disarming it, cost the requester",
            self.kernels.len()
        );
        let head = [
            "mode",
            "code bytes",
            "vs coop",
            "module bytes",
            "arm p50 ns",
            "arm p99 ns",
            "disarm p50 ns",
            "disarm p99 ns",
        ];
        let mut rows = Vec::new();
        let mut arming = Map::new();
        for (v, t) in &self.ttp {
            if let Some(r) = self.not_measured(v.label) {
                rows.push(r);
                continue;
            }
            let mut r = vec![v.label.to_string()];
            match self.size(v.same_code_as.unwrap_or(v.label)) {
                Ok((f, m)) => {
                    let vs = self
                        .size("coop")
                        .ok()
                        .filter(|_| v.mode != PreemptMode::Coop)
                        .and_then(|(c, _)| overhead_pct(f as f64, c as f64))
                        .map(signed_pct)
                        .unwrap_or_else(|| "-".into());
                    r.extend([f.to_string(), vs, m.to_string()]);
                }
                Err(e) => {
                    r.extend(["-".to_string(), "-".into(), "-".into()]);
                    out.failures.push(format!("code size, {}: {e}", v.label));
                }
            }
            match stats::arm_names(v.mode) {
                None => r.extend(["n/a".to_string(), "n/a".into(), "n/a".into(), "n/a".into()]),
                Some((arm, disarm)) => {
                    let mut js = Map::new();
                    for name in [arm, disarm] {
                        let h = t
                            .as_ref()
                            .map_err(Clone::clone)
                            .and_then(|st| Hist::from_stats(st, name));
                        match h {
                            Ok(h) => {
                                r.extend([format!("{:.0}", h.p50), format!("{:.0}", h.p99)]);
                                js.insert(name.to_string(), h.json());
                            }
                            Err(e) => {
                                r.extend(["-".to_string(), "-".into()]);
                                out.failures.push(format!("{}: {e}", v.label));
                            }
                        }
                    }
                    arming.insert(v.label.to_string(), Value::Object(js));
                }
            }
            rows.push(r);
        }
        out.text.push_str(&table(&head, &rows));
        out.notes.push(
            "coop and async arm nothing but the goroutine's request flag (async then signals \
             its thread: the signal is in time-to-preempt), so they have no arm/disarm figures; \
             trap/mprotect runs trap's code"
                .into(),
        );
        Value::Object(arming)
    }

    /// The two SVG plots.
    fn plots(&self, latency: &Path, overhead: &Path) -> Result<(), String> {
        let mut lines: Vec<plot::Line> = self
            .ttp_hist()
            .into_iter()
            .filter_map(|(v, h)| {
                Some(plot::Line {
                    name: v.label.to_string(),
                    points: h.ok()?.points(),
                    reference: false,
                })
            })
            .collect();
        if let Ok(v) = &self.floor {
            let points = [
                0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0,
            ]
            .iter()
            .filter_map(|&p| pct_u64(v, p).map(|ns| (p, ns / 1e3)))
            .collect();
            lines.push(plot::Line {
                name: "floor (signal, 10 ms apart)".into(),
                points,
                reference: true,
            });
        }
        plot::percentiles(
            latency,
            "time-to-preempt by mechanism (procs 1, quantum 10 ms), and the signal floor",
            &lines,
        )?;
        let mut panels = vec![plot::Bars {
            title: "overhead against no preemption, timed (procs 1, quantum 10 ms)".into(),
            y_desc: "% slower".into(),
            groups: self.kernel_names().iter().map(|s| s.to_string()).collect(),
            series: self
                .available()
                .map(|v| {
                    let vals = self.timed.iter().map(|o| o.pct(v.label).ok()).collect();
                    (v.label.to_string(), vals)
                })
                .collect(),
        }];
        if self.valgrind.is_ok() {
            let names = self.counted_names();
            panels.push(plot::Bars {
                title: "overhead against no preemption, instructions (callgrind, no stop)".into(),
                y_desc: "% more instructions".into(),
                groups: names.iter().map(|s| s.to_string()).collect(),
                series: own_code()
                    .filter(|v| v.label != "coop" && self.reason(v.label).is_none())
                    .map(|v| {
                        let vals = names
                            .iter()
                            .map(|k| self.count_pct(k, v.label).ok())
                            .collect();
                        (v.label.to_string(), vals)
                    })
                    .collect(),
            });
        }
        plot::grouped_bars(overhead, &panels)
    }

    fn json(&self, arming: Value, notes: &[String]) -> Value {
        let hist = |h: Result<Hist, String>| h.ok().map(|h| h.json());
        json!({
            "suite": "mechanisms",
            "machine": crate::machine_description(),
            "quantum_ns": QUANTUM.as_nanos() as u64,
            "procs": 1,
            "plan": {"floor_samples": self.plan.floor, "floor_hot_samples": self.plan.floor_hot,
                     "sleeps": self.plan.sleeps, "target_ms": self.plan.target.as_millis() as u64,
                     "rounds": self.plan.rounds, "counted": self.plan.counted,
                     "counted_units": self.plan.counted_units},
            "variants": json_map(VARIANTS.iter().map(|v| (v.label, json!({
                "mode": v.mode.name(), "flags": v.flags, "same_code_as": v.same_code_as,
                "available": self.reason(v.label).is_none(), "reason": self.reason(v.label),
            })))),
            "floor": {
                "10ms_apart": hist(self.floor_hist()),
                "200us_apart": hist(self.floor_hot_hist()),
                "samples_10ms_apart_ns": self.floor.as_ref().ok(),
            },
            "time_to_preempt": json_map(self.ttp_hist().into_iter()
                .map(|(v, h)| (v.label, fig_json(&h.map(|h| h.json()))))),
            "overhead": json_map(self.kernels.iter().zip(&self.timed).map(|(k, o)| (k.name, json!({
                "unit": k.unit, "n": o.n, "work": o.work,
                "none": fig_json(&o.none.as_ref().map(|t| json!({
                    "ns": t.ns, "best_ns_per_unit": t.best() / o.work})).map_err(Clone::clone)),
                "variants": json_map(o.variants.iter().map(|(l, t)| (*l, fig_json(
                    &t.as_ref().map(|t| json!({
                        "ns": t.ns, "stops": t.stops, "best_ns_per_unit": t.best() / o.work,
                        "overhead_pct": o.pct(l).ok(), "stops_per_s": t.stops_per_s()}))
                    .map_err(Clone::clone))))),
            })))),
            "instructions_per_unit": self.counted.iter().map(|(k, l, r)| json!({
                "kernel": k, "variant": l, "value": fig_json(r),
                "overhead_pct": self.count_pct(k, l).ok(),
            })).collect::<Vec<_>>(),
            "valgrind": fig_json(&self.valgrind),
            "code_size": json_map(self.sizes.iter().map(|(l, r)| (*l, fig_json(&r.as_ref()
                .map(|(f, m)| json!({"function_bytes": f, "module_bytes": m}))
                .map_err(Clone::clone))))),
            "arming": arming,
            "anchors": ANCHORS,
            "notes": notes,
            "runs": self.runs,
        })
    }
}

/// Measures everything and builds the report: the table, the JSON
/// (`target/bench/mechanisms.json`) and the plots beside it.
pub fn run(opts: Options, quick: bool) -> Report {
    let started = Instant::now();
    let m = measure(&opts, Plan::new(quick));
    let mut out = Out::default();
    let _ = writeln!(
        out.text,
        "mechanisms: {} on the JIT, procs 1, quantum 10 ms, same run",
        VARIANTS
            .iter()
            .map(|v| v.label)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(out.text, "machine: {}", crate::machine_description());
    m.timed_table(&mut out);
    m.counted_table(&mut out);
    m.ttp_table(&mut out);
    let arming = m.code_table(&mut out);
    let _ = writeln!(
        out.text,
        "\npublished figures, for orientation (measured elsewhere, not here):"
    );
    for a in ANCHORS {
        let _ = writeln!(out.text, "  - {a}");
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
    match std::fs::write(&json_path, format!("{json:#}\n")) {
        Ok(()) => files.push(json_path),
        Err(e) => notes.push(format!("cannot write {}: {e}", json_path.display())),
    }
    let mut text = out.text;
    for n in &notes {
        let _ = writeln!(text, "note: {n}");
    }
    for f in &files {
        let _ = writeln!(text, "wrote {}", f.display());
    }
    let _ = writeln!(
        text,
        "(suite time {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Report { text, json, files }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preempt_runtime::RunConfig;

    #[test]
    fn valgrind_counts_are_read() {
        let callgrind = "==6129== For interactive control, run 'callgrind_control -h'.\n\
                         ==6129== \n==6129== Events    : Ir\n==6129== Collected : 4990824\n\
                         ==6129== \n==6129== I   refs:      4,990,824\n";
        assert_eq!(valgrind_instructions(callgrind), Some(4_990_824));
        let cachegrind = "==6340== I   refs:      5,047,602\n";
        assert_eq!(valgrind_instructions(cachegrind), Some(5_047_602));
        assert_eq!(
            valgrind_instructions("==1== Callgrind: assertion failed\n"),
            None
        );
        assert_eq!(valgrind_instructions(""), None);
    }

    #[test]
    fn ratios() {
        assert_eq!(per_unit((1e6, 5_000_000), (4e6, 17_000_000)), Some(4.0));
        assert_eq!(per_unit((1e6, 5), (1e6, 5)), None);
        assert!((overhead_pct(1.02, 1.0).unwrap() - 2.0).abs() < 1e-9);
        assert!((overhead_pct(0.99, 1.0).unwrap() + 1.0).abs() < 1e-9);
        assert_eq!(overhead_pct(1.0, 0.0), None);
        assert_eq!(overhead_pct(f64::INFINITY, 1.0), None);
        let t = Timing {
            ns: vec![3e8, 2e8, 5e8],
            stops: vec![30, 20, 50],
        };
        assert_eq!(t.best(), 2e8);
        assert!((t.stops_per_s() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn rounds_rotate() {
        assert_eq!(rotation(3, 0), vec![0, 1, 2]);
        assert_eq!(rotation(3, 1), vec![1, 2, 0]);
        assert_eq!(rotation(3, 5), vec![2, 0, 1]);
        assert_eq!(rotation(0, 3), Vec::<usize>::new());
    }

    #[test]
    fn kernel_output_is_read() {
        assert_eq!(kernel_output("42 1000\n"), Some((42, 1000.0)));
        assert_eq!(kernel_output("noise\n-7 12\n\n"), Some((-7, 12.0)));
        assert_eq!(kernel_output("42\n"), None);
        assert_eq!(kernel_output("1 2 3\n"), None);
    }

    #[test]
    fn histograms_are_read_from_stats_and_samples() {
        let st = json!({"histograms": {"time-to-preempt (poll)": {
            "count": 3, "min_ns": 100, "mean_ns": 2.0, "p50_ns": 200, "p90_ns": 300,
            "p99_ns": 400, "p99_9_ns": 500, "max_ns": 600}}});
        let h = Hist::from_stats(&st, "time-to-preempt (poll)").unwrap();
        assert_eq!((h.count, h.p50, h.p99_9, h.max), (3, 200.0, 500.0, 600.0));
        assert_eq!(h.points().len(), 6);
        assert!(Hist::from_stats(&st, "time-to-preempt (trap)")
            .unwrap_err()
            .contains("no \"time-to-preempt (trap)\""));
        let samples: Vec<u64> = (1..=1000).rev().collect();
        let h = Hist::from_samples(&samples).unwrap();
        assert_eq!((h.min, h.p50, h.p99, h.max), (1.0, 500.0, 990.0, 1000.0));
        assert!(h.p99_9 >= 999.0 && h.count == 1000);
        assert!(Hist::from_samples(&[]).is_err());
    }

    #[test]
    fn tables_align_and_keep_reasons_whole() {
        let t = table(
            &["mode", "a", "bb"],
            &[
                vec!["none".into(), "1.0".into(), "22.0".into()],
                vec!["poll/mprotect".into(), "not measured: why".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("mode{}a    bb", " ".repeat(13)));
        assert_eq!(lines[1], format!("none{}1.0  22.0", " ".repeat(11)));
        assert_eq!(lines[2], "poll/mprotect  not measured: why");
    }

    #[test]
    fn variants_select_their_mode() {
        let v = VARIANTS
            .iter()
            .find(|v| v.label == "trap/mprotect")
            .unwrap();
        assert_eq!(
            flags(Some(v), "10ms"),
            [
                "--preempt",
                "trap",
                "--procs",
                "1",
                "--quantum",
                "10ms",
                "--trap-arm",
                "mprotect"
            ]
        );
        assert_eq!(flags(None, "3600s")[1], "coop");
        for v in VARIANTS {
            if let Some(other) = v.same_code_as {
                let o = VARIANTS.iter().find(|o| o.label == other).unwrap();
                assert_eq!(o.mode, v.mode);
            }
        }
    }

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
                let cfg = RunConfig {
                    timeout: None,
                    ..RunConfig::default()
                };
                let (r, _) = kernels::run_with(&k, kernels::Engine::Jit, n, &cfg);
                assert_eq!(r, (k.rust)(n), "{} at {n}", k.name);
            }
        }
    }

    /// A build that runs coop and async only, and no valgrind: every
    /// section prints, the others are "not measured" with the reason, and
    /// the JSON and plots are written.
    #[test]
    fn unavailable_mechanisms_are_reported_not_measured() {
        let why = "preempt: --preempt poll is not available in this build yet";
        let stats = |mode: PreemptMode| {
            json!({"histograms": {stats::ttp_name(mode): {
                "count": 5, "min_ns": 1000, "p50_ns": 2000, "p90_ns": 3000, "p99_ns": 4000,
                "p99_9_ns": 5000, "max_ns": 6000}}})
        };
        let ok = |label: &str| label == "coop" || label == "async";
        let kernels = suite_kernels();
        let timing = |ns: f64| {
            Ok(Timing {
                ns: vec![ns, ns * 1.5],
                stops: vec![10, 10],
            })
        };
        let m = Measured {
            plan: Plan::new(true),
            floor: Ok((1..=20).map(|i| i * 1000).collect()),
            floor_hot: Err("no handler".into()),
            unavailable: VARIANTS
                .iter()
                .filter(|v| !ok(v.label))
                .map(|v| (v.label, why.to_string()))
                .collect(),
            ttp: VARIANTS
                .iter()
                .map(|v| {
                    (
                        v,
                        if ok(v.label) {
                            Ok(stats(v.mode))
                        } else {
                            Err(why.into())
                        },
                    )
                })
                .collect(),
            timed: kernels
                .iter()
                .map(|_| KernelOverhead {
                    n: 100_000_000,
                    work: 1e8,
                    none: timing(1e8),
                    variants: vec![("coop", timing(1e8)), ("async", timing(1.01e8))],
                })
                .collect(),
            kernels,
            valgrind: Err("valgrind not found".into()),
            counted: Vec::new(),
            sizes: vec![("coop", Ok((100, 200))), ("async", Ok((100, 200)))],
            runs: Vec::new(),
        };
        let mut out = Out::default();
        m.timed_table(&mut out);
        m.counted_table(&mut out);
        m.ttp_table(&mut out);
        let arming = m.code_table(&mut out);
        let t = &out.text;
        assert!(
            t.lines()
                .any(|l| l.starts_with("async ") && l.ends_with("+1.00%")),
            "{t}"
        );
        for label in ["poll", "trap", "trap/mprotect", "patch"] {
            let line = format!("not measured: {why}");
            let rows = t
                .lines()
                .filter(|l| l.starts_with(&format!("{label} ")) && l.ends_with(&line));
            // Timed, time-to-preempt and code tables (counting is off).
            assert_eq!(rows.count(), 3, "{label}: {t}");
        }
        assert!(t.contains("instruction counts: not measured: valgrind not found"));
        assert!(t.contains("signal floor, 200 us apart  not measured: no handler"));
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        let notes: Vec<String> = out.notes.clone();
        let j = m.json(arming, &notes);
        assert_eq!(j["variants"]["poll"]["available"], json!(false));
        assert_eq!(j["time_to_preempt"]["async"]["p50_ns"], json!(2000.0));
        let dir = std::env::temp_dir().join(format!("preempt-mech-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        m.plots(&dir.join("l.svg"), &dir.join("o.svg")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sizes_reach_their_work() {
        for k in suite_kernels() {
            let n = size_for(&k, 1e6);
            assert!((k.work)(n) >= 1e6, "{}", k.name);
            assert!((k.work)(n) < 4e6, "{}: {}", k.name, (k.work)(n));
        }
    }
}
