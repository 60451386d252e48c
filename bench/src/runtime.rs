//! The runtime benchmarks, preempt and Go side by side in one run: spawn, context switch, channel ping-pong, 100,000 idle goroutines
//! and a sleeper behind a spinner.
//!
//! Both sides run the same programs the same way: each measurement is a
//! fresh child process (`preempt run FILE` for the PIR programs under
//! `bench/src/runtime/`, `bench/peers/go`'s `peers BENCH` for Go) that
//! times its own measured loop with a monotonic clock (`now`,
//! `time.Now`), so compilation and process start-up are not counted. A
//! fresh process per run is what makes the memory figure honest (nothing
//! left in the allocator from an earlier measurement) and keeps goroutines
//! abandoned by one program (the sleeper's spinner never stops) from
//! stealing CPU from the next, as they would inside one process.
//!
//! - time per operation: the best of a few runs, for both sides;
//! - idle goroutines: the program's own peak RSS with N goroutines parked
//!   minus the same program's with none, for both sides, measured by
//!   [`process::run_measured`] (Go also reports its own VmRSS before and
//!   after: a row of its own);
//! - sleeper: every sleep's lateness (actual - 1 ms), percentiles computed
//!   here with the same code for both sides.
//!
//! Nothing here asserts a timing; the goals are printed next to the
//! figures: met, missed, or not measured.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::doc::{Doc, Table};
use crate::peers::{GoPeer, Paths};
use crate::process::{self, Finished};

/// The PIR programs, embedded; each has a `global @n` the harness sets.
pub const SPAWN: &str = include_str!("runtime/spawn.pir");
pub const SWITCH: &str = include_str!("runtime/switch.pir");
pub const PINGPONG: &str = include_str!("runtime/pingpong.pir");
pub const IDLE: &str = include_str!("runtime/idle.pir");
pub const SLEEPER: &str = include_str!("runtime/sleeper.pir");

/// How big each measurement is.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub spawn: u64,
    /// Yields in the timed goroutine (twice as many switches).
    pub switch: u64,
    pub pingpong: u64,
    pub idle: u64,
    pub sleeps: u64,
    /// Runs per timed figure (the best is reported).
    pub repetitions: usize,
}

impl Sizes {
    /// Well under a second per run on a 2-core VM, except the
    /// sleepers (200 sleeps of 1 ms behind a 10 ms quantum, 2-8 s each).
    pub fn full() -> Sizes {
        Sizes {
            spawn: 10_000,
            switch: 500_000,
            pingpong: 200_000,
            idle: 100_000,
            sleeps: 200,
            repetitions: 5,
        }
    }

    /// Tiny sizes, to check the harness rather than measure.
    pub fn quick() -> Sizes {
        Sizes {
            spawn: 500,
            switch: 5_000,
            pingpong: 2_000,
            idle: 1_000,
            sleeps: 5,
            repetitions: 1,
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub sizes: Sizes,
    /// The `preempt` executable that runs the PIR side (`preempt run`).
    pub preempt_exe: Option<PathBuf>,
    /// Words put before the executable (e.g. a qemu-user runner); also
    /// taken from `PREEMPT_EXEC_WRAPPER`.
    pub exec_wrapper: Vec<String>,
    /// Run the Go side (else its column says it was not asked for).
    pub go: bool,
    pub paths: Paths,
    /// Tiny sizes (`--quick`): every title says the figures are not a
    /// measurement.
    pub quick: bool,
}

impl Options {
    pub fn new(quick: bool, preempt_exe: Option<PathBuf>) -> Options {
        Options {
            sizes: if quick { Sizes::quick() } else { Sizes::full() },
            preempt_exe,
            exec_wrapper: std::env::var("PREEMPT_EXEC_WRAPPER")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            go: true,
            paths: Paths::locate(),
            quick,
        }
    }
}

/// A figure, or why there is none: [`no_twin`] when the other side has
/// no such figure (shown `n/a`), else why it was not measured (shown `not
/// measured`, the reason in a note).
pub type Figure = Result<f64, String>;

/// Why the Go side is not measured when `--no-go` says so.
pub const NO_GO: &str = "--no-go";

/// The reason of a figure the other side has no twin of.
pub fn no_twin(why: &str) -> String {
    format!("n/a: {why}")
}

/// Whether a figure's absence is [`no_twin`]'s.
pub fn is_no_twin(why: &str) -> bool {
    why.starts_with("n/a")
}

/// What a row is measured against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    /// preempt's figure no higher than Go's.
    NoWorseThanGo,
    /// preempt's figure below this many units.
    Below(f64, &'static str),
    /// preempt's figure at most this many units.
    AtMost(f64, &'static str),
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: String,
    pub unit: &'static str,
    pub preempt: Figure,
    pub go: Figure,
    pub goal: Option<Goal>,
}

impl Row {
    pub(crate) fn new(
        name: impl Into<String>,
        unit: &'static str,
        preempt: Figure,
        go: Figure,
    ) -> Row {
        Row {
            name: name.into(),
            unit,
            preempt,
            go,
            goal: None,
        }
    }

    pub(crate) fn goal(mut self, g: Goal) -> Row {
        self.goal = Some(g);
        self
    }

    /// preempt / Go, when both were measured.
    pub fn ratio(&self) -> Option<f64> {
        match (&self.preempt, &self.go) {
            (Ok(p), Ok(g)) if *g > 0.0 => Some(p / g),
            _ => None,
        }
    }

    /// Whether preempt met the row's goal (None: no goal, or not measured:
    /// a limit made from a figure that was not measured is NaN).
    pub fn met(&self) -> Option<bool> {
        let p = *self.preempt.as_ref().ok()?;
        match self.goal? {
            Goal::NoWorseThanGo => Some(p <= *self.go.as_ref().ok()?),
            Goal::Below(limit, _) => limit.is_finite().then_some(p < limit),
            Goal::AtMost(limit, _) => limit.is_finite().then_some(p <= limit),
        }
    }

    /// The goal and its verdict; `busy`: the run drew a warning that the
    /// machine was too busy to trust it, and the verdict says so.
    fn goal_text(&self, busy: bool) -> String {
        let Some(goal) = self.goal else {
            return String::new();
        };
        let what = match goal {
            Goal::NoWorseThanGo => "<= Go".to_string(),
            Goal::Below(_, text) | Goal::AtMost(_, text) => text.to_string(),
        };
        let mark = if busy {
            " (busy machine: see WARNING)"
        } else {
            ""
        };
        match self.met() {
            Some(true) => format!("{what}: met{mark}"),
            Some(false) => format!("{what}: MISSED{mark}"),
            None => format!("{what}: not measured"),
        }
    }
}

/// The suite's result: the table and the figures for tools.
#[derive(Clone, Debug)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Lines printed under the table (how things were measured, failures).
    pub notes: Vec<String>,
    /// Everything, as JSON.
    pub json: Value,
    /// The text for people.
    pub text: String,
    /// The same, for the text and the HTML page.
    pub doc: Doc,
}

/// `src` with its `global @n` set to `n` and, when given, `set procs` set
/// to `procs`.
pub fn with_sizes(src: &str, n: u64, procs: Option<usize>) -> String {
    let mut seen_n = false;
    let mut out = String::with_capacity(src.len() + 16);
    for line in src.lines() {
        if line.starts_with("global @n: i64") {
            seen_n = true;
            writeln!(out, "global @n: i64 = {n}").unwrap();
        } else if let (Some(p), true) = (procs, line.starts_with("set procs")) {
            writeln!(out, "set procs = {p}").unwrap();
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        seen_n,
        "a runtime benchmark program declares `global @n: i64`"
    );
    out
}

/// `key=value` fields of the line that starts with `tag`, as integers.
fn fields(stdout: &str, tag: &str) -> Option<Vec<(String, i64)>> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.split_whitespace().next() == Some(tag))?;
    Some(
        line.split_whitespace()
            .filter_map(|w| {
                let (k, v) = w.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect(),
    )
}

fn field(fs: &[(String, i64)], key: &str) -> Option<i64> {
    fs.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// Nearest-rank percentile `p` (0..=100) of sorted samples.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub(crate) struct Suite {
    pub(crate) opts: Options,
    pub(crate) go: Result<GoPeer, String>,
    pub(crate) json_runs: Vec<Value>,
}

const KILL_AFTER: Duration = Duration::from_secs(120);

/// The diagnosis settings of every `preempt run` a benchmark starts: no
/// report of a goroutine slow to stop (see [`crate::kernels::bench_config`]);
/// the watchdog stays, with each runner's own timeout.
pub const BENCH_RUN_FLAGS: [&str; 2] = ["--hang-threshold", "0"];

impl Suite {
    /// A suite over `opts`, with Go's toolchain prepared if it is asked for.
    pub(crate) fn new(opts: Options) -> Suite {
        let go = if opts.go {
            crate::progress::step("building the Go peers");
            GoPeer::prepare(&opts.paths).map_err(|e| format!("Go is not available: {e}"))
        } else {
            Err(NO_GO.to_string())
        };
        Suite {
            opts,
            go,
            json_runs: Vec::new(),
        }
    }

    /// Runs one PIR program in a fresh `preempt run` process.
    pub(crate) fn run_pir(&mut self, name: &str, text: &str) -> Result<Finished, String> {
        self.run_pir_with(name, text, &[])
    }

    /// Runs one PIR program with extra `preempt run` flags.
    pub(crate) fn run_pir_with(
        &mut self,
        name: &str,
        text: &str,
        flags: &[&str],
    ) -> Result<Finished, String> {
        self.run_pir_as(name, text, flags, false)
    }

    /// The `preempt` executable's command line (after any emulator words):
    /// what runs the PIR side, and the spawner of measured runs.
    fn preempt_words(&self) -> Result<Vec<OsString>, String> {
        let exe = self
            .opts
            .preempt_exe
            .clone()
            .ok_or_else(|| "no preempt executable to run the PIR side".to_string())?;
        let mut words: Vec<OsString> = self.opts.exec_wrapper.iter().map(Into::into).collect();
        words.push(exe.into_os_string());
        Ok(words)
    }

    /// Runs one PIR program, its peak RSS measured when `measured` (through
    /// [`process::run_measured`]).
    fn run_pir_as(
        &mut self,
        name: &str,
        text: &str,
        flags: &[&str],
        measured: bool,
    ) -> Result<Finished, String> {
        crate::progress::step(&format!("preempt run {name}"));
        let words = self.preempt_words()?;
        let dir = self.opts.paths.peers_dir().join("pir");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let file = dir.join(format!("{name}.pir"));
        std::fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..])
            .arg("run")
            .arg(&file)
            .args(["--timeout", "100"])
            .args(process::cpus_args())
            .args(BENCH_RUN_FLAGS)
            .args(flags);
        let f = if measured {
            process::run_measured(&cmd, KILL_AFTER, &words)
        } else {
            process::run(&mut cmd, KILL_AFTER)
        }
        .map_err(|e| format!("cannot run {}: {e}", words[0].to_string_lossy()))?;
        if !f.ok() {
            return Err(format!("preempt run {}: {}", file.display(), f.describe()));
        }
        Ok(f)
    }

    /// ns per op of a self-timed PIR program: the best of the repetitions.
    fn preempt_timed(&mut self, name: &str, src: &str, n: u64, procs: usize) -> Figure {
        let text = with_sizes(src, n, Some(procs));
        let tag = name.split('-').next().unwrap_or(name);
        let mut best = f64::INFINITY;
        for _ in 0..self.opts.sizes.repetitions.max(1) {
            let f = self.run_pir(name, &text)?;
            let fs = fields(&f.stdout, tag)
                .ok_or_else(|| format!("{name}: no '{tag}' line in {:?}", f.stdout))?;
            let (ops, ns) = field(&fs, "ops")
                .zip(field(&fs, "elapsed_ns"))
                .ok_or_else(|| format!("{name}: no ops/elapsed_ns in {:?}", f.stdout))?;
            self.json_runs.push(json!({
                "side": "preempt", "bench": name, "procs": procs, "n": n,
                "ops": ops, "elapsed_ns": ns,
            }));
            best = best.min(ns as f64 / ops.max(1) as f64);
        }
        Ok(best)
    }

    pub(crate) fn go_peer(&self) -> Result<&GoPeer, String> {
        self.go.as_ref().map_err(Clone::clone)
    }

    /// "Go go1.27.3 (source)", or why Go is not measured.
    pub(crate) fn go_name(&self) -> String {
        match &self.go {
            Ok(g) => format!("Go {} ({})", g.version, g.source),
            Err(e) => format!("Go (not measured: {e})"),
        }
    }

    fn go_run(
        &mut self,
        bench: &str,
        n: u64,
        procs: usize,
        godebug: &str,
    ) -> Result<(Value, Finished), String> {
        self.go_run_with(bench, &[], n, procs, godebug, false)
    }

    /// Runs Go's `bench` with extra flags, logging its result; its peak
    /// RSS measured when `measured`.
    pub(crate) fn go_run_with(
        &mut self,
        bench: &str,
        flags: &[&str],
        n: u64,
        procs: usize,
        godebug: &str,
        measured: bool,
    ) -> Result<(Value, Finished), String> {
        crate::progress::step(&format!("Go {bench}"));
        let peer = self.go_peer()?;
        let cmd = peer.command(bench, flags, n, procs, godebug);
        let f = if measured {
            let spawner = self.preempt_words()?;
            process::run_measured(&cmd, KILL_AFTER, &spawner)
        } else {
            process::run(&mut { cmd }, KILL_AFTER)
        }
        .map_err(|e| format!("cannot run {}: {e}", peer.exe.display()))?;
        let (v, f) = GoPeer::result(bench, f)?;
        let mut logged = v.clone();
        if let Some(o) = logged.as_object_mut() {
            o.insert("side".into(), json!("go"));
            o.insert("max_rss_kib".into(), json!(f.max_rss_kib));
        }
        self.json_runs.push(logged);
        Ok((v, f))
    }

    fn go_timed(&mut self, bench: &str, n: u64, procs: usize) -> Figure {
        let mut best = f64::INFINITY;
        for _ in 0..self.opts.sizes.repetitions.max(1) {
            let (v, _) = self.go_run(bench, n, procs, "")?;
            let ns = v["ns_per_op"]
                .as_f64()
                .ok_or_else(|| format!("Go {bench}: no ns_per_op in {v}"))?;
            best = best.min(ns);
        }
        Ok(best)
    }

    /// Peak RSS (KiB) of the idle program with n goroutines, and with none.
    fn preempt_idle(&mut self, n: u64) -> Result<(i64, i64), String> {
        let empty = self.preempt_idle_once(0)?;
        let full = self.preempt_idle_once(n)?;
        self.json_runs.push(json!({
            "side": "preempt", "bench": "idle", "n": n,
            "max_rss_kib": full, "max_rss_kib_without": empty,
        }));
        Ok((full, empty))
    }

    /// Peak RSS (KiB) of one run of the idle program with n goroutines.
    fn preempt_idle_once(&mut self, n: u64) -> Result<i64, String> {
        let name = if n == 0 { "idle-0" } else { "idle" };
        let f = self.run_pir_as(name, &with_sizes(IDLE, n, None), &[], true)?;
        f.max_rss_kib
            .ok_or_else(|| format!("{name}: no peak RSS measured"))
    }

    /// Go's peak RSS (KiB) with n goroutines and with none, and its own
    /// bytes per goroutine (from its VmRSS before and after).
    fn go_idle(&mut self, n: u64) -> Result<(i64, i64, f64), String> {
        let rss = |f: &Finished| {
            f.max_rss_kib
                .ok_or_else(|| "Go idle: no peak RSS measured".to_string())
        };
        let (_, empty) = self.go_run_with("idle", &[], 0, 1, "", true)?;
        let (v, full) = self.go_run_with("idle", &[], n, 1, "", true)?;
        let own = v["bytes_per_goroutine"].as_f64().unwrap_or(f64::NAN);
        Ok((rss(&full)?, rss(&empty)?, own))
    }

    fn preempt_sleeper(&mut self, n: u64) -> Result<Vec<i64>, String> {
        self.sleeper_lateness("sleeper", SLEEPER, n, &[])
    }

    /// Every sleep's lateness printed by a sleeper program, sorted.
    pub(crate) fn sleeper_lateness(
        &mut self,
        name: &str,
        src: &str,
        n: u64,
        flags: &[&str],
    ) -> Result<Vec<i64>, String> {
        let f = self.run_pir_with(name, &with_sizes(src, n, None), flags)?;
        let mut late: Vec<i64> = f
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("late_ns ")?.trim().parse().ok())
            .collect();
        if late.len() as u64 != n {
            return Err(format!(
                "sleeper: {} lateness lines for {n} sleeps",
                late.len()
            ));
        }
        self.json_runs.push(json!({
            "side": "preempt", "bench": name, "procs": 1, "flags": flags,
            "n": n, "late_ns": late,
        }));
        late.sort_unstable();
        Ok(late)
    }

    pub(crate) fn go_sleeper(
        &mut self,
        n: u64,
        godebug: &str,
        flags: &[&str],
    ) -> Result<Vec<i64>, String> {
        let (v, _) = self.go_run_with("sleeper", flags, n, 1, godebug, false)?;
        let mut late: Vec<i64> = v["late_ns"]
            .as_array()
            .ok_or_else(|| format!("Go sleeper: no late_ns in {v}"))?
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        late.sort_unstable();
        Ok(late)
    }
}

/// Peak RSS (KiB) of the idle program with `n` goroutines parked, in a
/// fresh `preempt run` process measured as the suite measures it (the
/// program's own peak, whatever this process's: see [`process`]).
pub fn idle_peak_rss_kib(mut opts: Options, n: u64) -> Result<i64, String> {
    opts.go = false;
    Suite::new(opts).preempt_idle_once(n)
}

fn kib_to_mib(k: i64) -> f64 {
    k as f64 / 1024.0
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// Measures everything and builds the report.
pub fn run(opts: Options) -> Report {
    let sizes = opts.sizes;
    let mut s = Suite::new(opts);
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    for procs in [1, 2] {
        let name = if procs == 1 { "spawn" } else { "spawn-2" };
        let p = s.preempt_timed(name, SPAWN, sizes.spawn, procs);
        let g = s.go_timed("spawn", sizes.spawn, procs);
        rows.push(
            Row::new(
                format!("spawn + run + exit (procs {procs})"),
                "ns/goroutine",
                p,
                g,
            )
            .goal(Goal::NoWorseThanGo),
        );
    }

    let p = s.preempt_timed("switch", SWITCH, sizes.switch, 1);
    let g = s.go_timed("switch", sizes.switch, 1);
    rows.push(
        Row::new("context switch: yield/Gosched (procs 1)", "ns/switch", p, g)
            .goal(Goal::NoWorseThanGo),
    );

    for procs in [1, 2] {
        let name = if procs == 1 { "pingpong" } else { "pingpong-2" };
        let p = s.preempt_timed(name, PINGPONG, sizes.pingpong, procs);
        let g = s.go_timed("pingpong", sizes.pingpong, procs);
        let row = Row::new(
            format!("channel ping-pong, unbuffered (procs {procs})"),
            "ns/round trip",
            p,
            g,
        );
        rows.push(row.goal(Goal::NoWorseThanGo));
    }

    // Idle goroutines at the full size; when preempt cannot hold that
    // many, once more at a quarter of it so there is still a per-goroutine
    // figure (both sides at the smaller size, like for like).
    let mut n = sizes.idle;
    loop {
        let p = s.preempt_idle(n);
        let g = s.go_idle(n);
        idle_rows(&mut rows, &mut notes, n, &p, &g);
        if p.is_ok() || n < 4 || n < sizes.idle {
            break;
        }
        notes.push(format!(
            "preempt could not park {n} goroutines; measured again with {}",
            n / 4
        ));
        n /= 4;
    }

    let n = sizes.sleeps;
    let p = s.preempt_sleeper(n);
    let coop = s.go_sleeper(n, "asyncpreemptoff=1", &[]);
    let async_ = s.go_sleeper(n, "", &[]);
    let pct = |r: &Result<Vec<i64>, String>, q: f64| -> Figure {
        r.clone()
            .and_then(|v| percentile(&v, q).ok_or_else(|| "no samples".to_string()))
            .map(ms)
    };
    for (label, q) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        let row = Row::new(
            if label == "p50" {
                "sleep 1 ms behind a spinner: late p50".to_string()
            } else {
                format!("  late {label}")
            },
            "ms",
            pct(&p, q),
            pct(&coop, q),
        );
        rows.push(if label == "p99" {
            row.goal(Goal::AtMost(11.0, "<= 11 ms"))
        } else {
            row
        });
    }
    for (label, q) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        rows.push(Row::new(
            format!("  Go, default GODEBUG (async): late {label}"),
            "ms",
            Err(no_twin(
                "preempt's sleeper under async is in the preempt suite",
            )),
            pct(&async_, q),
        ));
    }

    let machine = crate::machine_description();
    let mut doc = Doc::new("runtime");
    doc.title(
        format!(
            "runtime: preempt (jit) vs {}, same run, each figure a fresh process",
            s.go_name()
        ),
        s.opts.quick,
    );
    doc.line(format!("machine: {machine}"));
    doc.line(format!(
        "sleeper: procs 1; preempt `set preempt = coop`, quantum 10 ms; Go GOMAXPROCS=1 \
         GODEBUG=asyncpreemptoff=1 (default GODEBUG below); {n} sleeps"
    ));
    if let (Err(e), true) = (&s.go, s.opts.go) {
        doc.warning(format!("Go is not measured: {e}"));
    }
    let busy = crate::noise::warnings(&crate::noise::Seen {
        load: crate::noise::load_at_start(),
        ..Default::default()
    });
    for w in &busy {
        doc.warning(w.clone());
    }
    doc.table(table(&rows, !busy.is_empty()));
    absent_notes(&rows, &mut notes);
    for n in &notes {
        doc.note(n.clone());
    }
    let text = doc.text();

    let json = json!({
        "suite": "runtime",
        "machine": machine,
        "go": match &s.go {
            Ok(g) => json!({ "version": g.version, "source": g.source, "go": g.go, "exe": g.exe }),
            Err(e) => json!({ "unavailable": e }),
        },
        "preempt": { "exe": s.opts.preempt_exe },
        "sizes": {
            "spawn": sizes.spawn, "switch": sizes.switch, "pingpong": sizes.pingpong,
            "idle": sizes.idle, "sleeps": sizes.sleeps, "repetitions": sizes.repetitions,
        },
        "rows": rows_json(&rows),
        "notes": notes,
        "runs": s.json_runs,
    });
    Report {
        rows,
        notes,
        json,
        text,
        doc,
    }
}

/// A note per side and reason for the figures that were not measured,
/// once each (a figure with no twin is not missing).
pub(crate) fn absent_notes(rows: &[Row], notes: &mut Vec<String>) {
    for row in rows {
        for (side, fig) in [("preempt", &row.preempt), ("Go", &row.go)] {
            if let Err(e) = fig {
                let note = format!("{side}: not measured: {e}");
                if !is_no_twin(e) && !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
    }
}

fn fig_json(f: &Figure) -> Value {
    match f {
        Ok(v) => json!(v),
        Err(e) => json!({ "unavailable": e }),
    }
}

/// The rows as JSON, for tools.
pub fn rows_json(rows: &[Row]) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            json!({
                "name": r.name.trim(),
                "unit": r.unit,
                "preempt": fig_json(&r.preempt),
                "go": fig_json(&r.go),
                "ratio": r.ratio(),
                "goal": r.goal.map(|g| match g {
                    Goal::NoWorseThanGo => "<= Go".to_string(),
                    Goal::Below(_, t) | Goal::AtMost(_, t) => t.to_string(),
                }),
                "goal_met": r.met(),
            })
        })
        .collect()
}

/// The rows for one size of the idle-goroutines benchmark.
fn idle_rows(
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
    n: u64,
    p: &Result<(i64, i64), String>,
    g: &Result<(i64, i64, f64), String>,
) {
    // Parked goroutines cost memory: a program with them that peaked no
    // higher than without is a broken measurement, not a figure.
    let checked = |r: Result<(i64, i64), String>| {
        r.and_then(|(full, empty)| {
            if full > empty {
                Ok((full, empty))
            } else {
                Err(format!(
                    "{n} idle goroutines peaked at {full} KiB, no higher than none ({empty} KiB): \
                     a broken measurement"
                ))
            }
        })
    };
    let p = &checked(p.clone());
    let g2 = checked(g.clone().map(|(f, e, _)| (f, e)));
    let growth = |r: &Result<(i64, i64), String>| r.clone().map(|(full, empty)| full - empty);
    let row = Row::new(
        format!("{n} idle goroutines (recv): peak RSS"),
        "MiB",
        p.clone().map(|(f, _)| kib_to_mib(f)),
        g2.clone().map(|(f, _)| kib_to_mib(f)),
    );
    rows.push(if n >= 100_000 {
        row.goal(Goal::Below(1024.0, "< 1 GiB"))
    } else {
        row
    });
    rows.push(Row::new(
        "  RSS growth over the same program with none",
        "MiB",
        growth(p).map(kib_to_mib),
        growth(&g2).map(kib_to_mib),
    ));
    rows.push(Row::new(
        "  per goroutine",
        "bytes",
        growth(p).map(|k| k as f64 * 1024.0 / n.max(1) as f64),
        growth(&g2).map(|k| k as f64 * 1024.0 / n.max(1) as f64),
    ));
    rows.push(Row::new(
        "  per goroutine, Go's own count (VmRSS, GC'd)",
        "bytes",
        Err(no_twin("Go's own count")),
        g.clone().map(|(_, _, own)| own),
    ));
    if g.is_ok() {
        notes.push(format!(
            "Go's own count at {n} idle goroutines: its VmRSS before and after starting them, in \
             process, after runtime.GC; the peak RSS rows are each program's own peak, from a \
             spawner that forks it (as /usr/bin/time does)"
        ));
    }
}

fn cell(f: &Figure, unit: &str) -> String {
    match f {
        Ok(v) => match unit {
            "ms" | "%" => format!("{v:.2}"),
            "MiB" => format!("{v:.1}"),
            "bytes" => format!("{v:.0}"),
            _ => format!("{v:.1}"),
        },
        Err(e) if is_no_twin(e) => "n/a".to_string(),
        Err(_) => "not measured".to_string(),
    }
}

/// The table: benchmark, unit, preempt, Go, preempt/Go (when both were
/// measured), goal; `busy`: the run drew a busy-machine warning, and
/// every verdict says so.
pub fn table(rows: &[Row], busy: bool) -> Table {
    let mut t =
        Table::new(&["benchmark", "unit", "preempt", "Go", "preempt/Go", "goal"]).left(&[1, 5]);
    for r in rows {
        let ratio = r
            .ratio()
            .map(|x| format!("{x:.2}x"))
            .unwrap_or_else(|| "-".to_string());
        t.row(&[
            r.name.clone(),
            r.unit.to_string(),
            cell(&r.preempt, r.unit),
            cell(&r.go, r.unit),
            ratio,
            r.goal_text(busy),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_procs_are_substituted() {
        let t = with_sizes(PINGPONG, 7, Some(2));
        assert!(t.contains("global @n: i64 = 7\n"), "{t}");
        assert!(t.contains("set procs = 2\n"), "{t}");
        let t = with_sizes(SLEEPER, 3, None);
        assert!(t.contains("set procs = 1\n") && t.contains("global @n: i64 = 3\n"));
    }

    #[test]
    fn every_program_verifies() {
        for src in [SPAWN, SWITCH, PINGPONG, IDLE, SLEEPER] {
            let text = with_sizes(src, 10, None);
            let mut p = preempt_jit::ir::parse(&text).expect("parses");
            preempt_jit::ir::verify(&mut p).expect("verifies");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=200).collect();
        assert_eq!(percentile(&v, 50.0), Some(100));
        assert_eq!(percentile(&v, 99.0), Some(198));
        assert_eq!(percentile(&v, 100.0), Some(200));
        assert_eq!(percentile(&[5], 99.0), Some(5));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn result_lines_are_read() {
        let fs = fields("noise\nswitch n=3 ops=6 elapsed_ns=600\n", "switch").unwrap();
        assert_eq!(field(&fs, "ops"), Some(6));
        assert_eq!(field(&fs, "elapsed_ns"), Some(600));
        assert!(fields("x=1", "switch").is_none());
    }

    #[test]
    fn goals_and_ratios() {
        let r = Row::new("a", "ns", Ok(1.0), Ok(2.0)).goal(Goal::NoWorseThanGo);
        assert_eq!(r.ratio(), Some(0.5));
        assert_eq!(r.met(), Some(true));
        let r = Row::new("b", "ms", Ok(12.0), Err("x".into())).goal(Goal::AtMost(11.0, "<= 11 ms"));
        assert_eq!(r.met(), Some(false));
        assert_eq!(r.ratio(), None);
        assert!(r.goal_text(false).ends_with("MISSED"));
        assert!(r
            .goal_text(true)
            .ends_with("MISSED (busy machine: see WARNING)"));
        // A limit made from a figure that was not measured.
        let r =
            Row::new("d", "us", Ok(1.0), Err(NO_GO.into())).goal(Goal::AtMost(f64::NAN, "<= Go/2"));
        assert_eq!(r.met(), None);
        assert_eq!(r.goal_text(true), "<= Go/2: not measured");
        let t = table(&[r], false).text();
        assert!(t.contains("not measured") && !t.contains("MISSED"), "{t}");
        let mut rows = Vec::new();
        idle_rows(
            &mut rows,
            &mut Vec::new(),
            1000,
            &Ok((524_390, 524_390)),
            &Err(NO_GO.into()),
        );
        assert!(
            rows[1]
                .preempt
                .as_ref()
                .is_err_and(|e| e.contains("broken")),
            "{rows:?}"
        );
        assert!(rows[2].preempt.is_err(), "no bytes per goroutine from it");
        let r = Row::new("c", "ns", Err("x".into()), Ok(1.0)).goal(Goal::NoWorseThanGo);
        assert_eq!(r.met(), None);
    }
}
