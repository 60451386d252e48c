//! `preempt soak`: every program that states what it does (its header,
//! [`crate::expect`]) run many times under every preemption mechanism and
//! arming, at one and two Ps, at the default quantum and at 20 us, at
//! `-O0` and `-O1`, each run a fresh `preempt run` process with a
//! watchdog, in parallel up to the CPU count; then a table of runs,
//! failures and hangs per configuration, with the first failure's
//! diagnosis, and the re-requests the runs' statistics counted (each run
//! writes `--stats-json`).
//!
//! A hang is a run the watchdog ended (exit 3 where the program should
//! not hang) or one that even the watchdog did not end (killed by the
//! soak's own timer, 30 s later). A configuration a program cannot run
//! under is left out, as its header says: `coop-hangs` programs under
//! `coop`, `async-only` ones under everything but `async`, `jit-only` ones
//! on the interpreter; and a program that fixes a dimension itself (its
//! Ps, its mode, its quantum, its level) runs once for that dimension,
//! with its own value, counted in the row of the dimension's first value.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::console::{errln, out, outln};
use crate::expect::Expect;
use crate::fail;

pub const HELP: &str = "\
Examples:
  preempt soak                                   every program, every configuration, 3 runs each
  preempt soak --runs 20 --busy 1                longer, with a busy thread beside the runs
  preempt soak --modes patch,trap-mprotect tests/programs/concurrent/gc-vs-spinners.pir
  preempt soak --engine interp --modes coop --procs 2 --runs 1000 \\
               tests/programs/concurrent/yield-until-spinning.pir

Programs: by default every .pir under tests/programs/concurrent and
examples (run from the checkout) whose header states an exit status.

Exit status: 0 every run as its header says, 1 a failure or a hang,
2 bad usage.";

/// Where the default programs are, from the checkout's root.
const PROGRAM_DIRS: [&str; 2] = ["tests/programs/concurrent", "examples"];

#[derive(clap::Args, Debug, Clone)]
pub struct SoakArgs {
    /// Programs to soak (default: see below).
    pub files: Vec<PathBuf>,
    /// Runs of each program in each configuration.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub runs: u64,
    /// Mechanisms and armings, comma-separated: coop, async, async-timer
    /// (the worker's own quantum timer), poll, trap (its page swap),
    /// trap-mprotect, patch.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "coop,async,async-timer,poll,trap,trap-mprotect,patch"
    )]
    pub modes: Vec<String>,
    /// Ps, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub procs: Vec<u64>,
    /// Quanta, comma-separated (`default` is the program's own, else 10ms).
    #[arg(long, value_delimiter = ',', default_value = "default,20us")]
    pub quanta: Vec<String>,
    /// Optimisation levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    pub opt: Vec<u8>,
    /// What runs the programs: jit, interp (modes coop and async only: the
    /// interpreter stops anywhere in every mode but coop), or both.
    #[arg(long, default_value = "jit")]
    pub engine: String,
    /// Runs at a time (default: the number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Each run's watchdog, in seconds (a program's own `--timeout` wins).
    #[arg(long, default_value_t = 20)]
    pub timeout: u64,
    /// Threads spinning beside the runs, for the whole soak (another busy
    /// process on the machine).
    #[arg(long, default_value_t = 0)]
    pub busy: usize,
    /// The `preempt` to run the programs with, as a command (default: this
    /// executable), e.g. an aarch64 build under qemu-user:
    /// "qemu-aarch64-static -L /usr/aarch64-linux-gnu target/aarch64-unknown-linux-gnu/release/preempt".
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,
}

/// One configuration of the matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Config {
    engine: &'static str,
    /// `--preempt` value.
    mode: &'static str,
    /// The variant's name and flags (`trap/mprotect`: `--trap-arm
    /// mprotect`; `async/timer`: `--quantum-timer thread`), or none.
    variant: Option<(&'static str, [&'static str; 2])>,
    procs: u64,
    /// None: the default quantum.
    quantum: Option<String>,
    opt: u8,
}

impl Config {
    fn label(&self) -> String {
        let mode = self.variant.map_or(self.mode, |(name, _)| name);
        let engine = if self.engine == "jit" { "" } else { " interp" };
        format!(
            "{mode:<13} procs {} quantum {:<7} -O{}{engine}",
            self.procs,
            self.quantum.as_deref().unwrap_or("default"),
            self.opt
        )
    }

    /// The `preempt run` arguments for `program` (whose header may fix
    /// some of them), or None if the program is not run in this
    /// configuration.
    fn args(&self, e: &Expect, first: &Config) -> Option<Vec<String>> {
        let mode_excluded = !e.fixes_mode
            && ((e.coop_hangs && self.mode == "coop") || (e.async_only && self.mode != "async"));
        if mode_excluded || (e.jit_only && self.engine != "jit") {
            return None;
        }
        // A dimension the program fixes runs once, at the matrix's first
        // value, without the configuration's flag.
        if (e.fixes_procs && self.procs != first.procs)
            || (e.fixes_mode && (self.mode, self.variant) != (first.mode, first.variant))
            || (e.has_flag("--quantum") && self.quantum != first.quantum)
            || (e.has_flag("-O0") || e.has_flag("-O1")) && self.opt != first.opt
        {
            return None;
        }
        let mut a = vec!["run".to_string(), "--engine".into(), self.engine.into()];
        if !e.fixes_mode {
            a.extend(["--preempt".into(), self.mode.into()]);
            if let Some((_, flags)) = self.variant {
                a.extend(flags.map(String::from));
            }
        }
        if !e.fixes_procs {
            a.extend(["--procs".into(), self.procs.to_string()]);
        }
        if let (Some(q), false) = (&self.quantum, e.has_flag("--quantum")) {
            a.extend(["--quantum".into(), q.clone()]);
        }
        if !e.has_flag("-O0") && !e.has_flag("-O1") {
            a.push(format!("-O{}", self.opt));
        }
        Some(a)
    }
}

/// The matrix the arguments ask for.
fn configs(a: &SoakArgs) -> Result<Vec<Config>, String> {
    let engines: &[&'static str] = match a.engine.as_str() {
        "jit" => &["jit"],
        "interp" => &["interp"],
        "both" => &["jit", "interp"],
        other => {
            return Err(format!(
                "preempt soak: unknown engine '{other}' (jit, interp, both)"
            ))
        }
    };
    let mut modes = Vec::new();
    for m in &a.modes {
        modes.push(match m.as_str() {
            "coop" => ("coop", None),
            "async" => ("async", None),
            "async-timer" => (
                "async",
                Some(("async/timer", ["--quantum-timer", "thread"])),
            ),
            "poll" => ("poll", None),
            "trap" => ("trap", None),
            "trap-mprotect" => ("trap", Some(("trap/mprotect", ["--trap-arm", "mprotect"]))),
            "patch" => ("patch", None),
            other => {
                return Err(format!(
                    "preempt soak: unknown mode '{other}' (coop, async, async-timer, poll, trap, trap-mprotect, patch)"
                ))
            }
        });
    }
    let mut quanta = Vec::new();
    for q in &a.quanta {
        quanta.push(match q.as_str() {
            "default" => None,
            q => {
                crate::parse_duration(q).map_err(|e| format!("preempt soak: --quanta: {e}"))?;
                Some(q.to_string())
            }
        });
    }
    if a.procs.contains(&0) || a.opt.iter().any(|&o| o > 1) {
        return Err("preempt soak: --procs must be at least 1, --opt 0 or 1".into());
    }
    let mut v = Vec::new();
    for &engine in engines {
        for &(mode, variant) in &modes {
            // The interpreter honours a request at every boundary in every
            // mode but coop: poll, trap and patch would only repeat async.
            if engine == "interp" && !matches!(mode, "coop" | "async") {
                continue;
            }
            for &procs in &a.procs {
                for quantum in &quanta {
                    for &opt in &a.opt {
                        v.push(Config {
                            engine,
                            mode,
                            variant,
                            procs,
                            quantum: quantum.clone(),
                            opt,
                        });
                    }
                }
            }
        }
    }
    if v.is_empty() {
        return Err("preempt soak: no configuration to run".into());
    }
    Ok(v)
}

/// The programs to soak: the named ones, or every program with a header
/// under the default directories.
fn programs(files: &[PathBuf]) -> Result<Vec<(PathBuf, Expect)>, String> {
    let mut paths = files.to_vec();
    if paths.is_empty() {
        for dir in PROGRAM_DIRS {
            collect_pir(Path::new(dir), &mut paths).map_err(|e| {
                format!("preempt soak: cannot read {dir} ({e}); run it from the checkout, or name the programs")
            })?;
        }
        paths.sort();
    }
    let mut v = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| format!("preempt soak: cannot read {}: {e}", p.display()))?;
        match Expect::parse(&text) {
            Some(e) => v.push((p, e)),
            None if !files.is_empty() => {
                return Err(format!(
                    "preempt soak: {} states no `; expect-status:` in its header",
                    p.display()
                ))
            }
            None => {}
        }
    }
    if v.is_empty() {
        return Err("preempt soak: no program to soak".into());
    }
    Ok(v)
}

fn collect_pir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect_pir(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "pir") {
            out.push(p);
        }
    }
    Ok(())
}

/// One run to make.
struct Job {
    config: usize,
    program: usize,
    args: Vec<String>,
}

/// What the runs of one configuration came to.
#[derive(Default)]
struct Tally {
    runs: u64,
    failures: u64,
    hangs: u64,
    re_requests: u64,
    programs: std::collections::BTreeSet<usize>,
    /// The first failure: the command and what went wrong.
    first: Option<String>,
}

pub fn main(a: &SoakArgs) -> ExitCode {
    let configs = match configs(a) {
        Ok(c) => c,
        Err(m) => return fail(m),
    };
    let programs = match programs(&a.files) {
        Ok(p) => p,
        Err(m) => return fail(m),
    };
    let exe: Vec<String> = match &a.exec {
        Some(cmd) if !cmd.trim().is_empty() => cmd.split_whitespace().map(str::to_string).collect(),
        Some(_) => return fail("preempt soak: --exec needs a command".into()),
        None => match std::env::current_exe() {
            Ok(e) => vec![e.display().to_string()],
            Err(e) => return fail(format!("preempt soak: cannot find this executable: {e}")),
        },
    };
    let mut jobs = VecDeque::new();
    for (ci, c) in configs.iter().enumerate() {
        for (pi, (_, e)) in programs.iter().enumerate() {
            if let Some(args) = c.args(e, &configs[0]) {
                for _ in 0..a.runs {
                    jobs.push_back(Job {
                        config: ci,
                        program: pi,
                        args: args.clone(),
                    });
                }
            }
        }
    }
    let total = jobs.len();
    let width = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallel = a.jobs.unwrap_or(width).max(1);
    outln!(
        "preempt soak: {} programs, {} configurations, {} run(s) each where the program can run: {total} runs, {parallel} at a time{}{}",
        programs.len(),
        configs.len(),
        a.runs,
        if a.exec.is_some() {
            format!(", with {}", exe.join(" "))
        } else {
            String::new()
        },
        if a.busy > 0 {
            format!(", {} busy thread(s) beside them", a.busy)
        } else {
            String::new()
        }
    );
    let started = Instant::now();
    let stop_busy = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..a.busy)
        .map(|_| {
            let stop = stop_busy.clone();
            std::thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005));
                    }
                }
            })
        })
        .collect();
    let queue = Mutex::new(jobs);
    let tallies: Mutex<Vec<Tally>> = Mutex::new(configs.iter().map(|_| Tally::default()).collect());
    // Per program: runs with a re-request, and re-requests.
    let again: Mutex<Vec<(u64, u64)>> = Mutex::new(vec![(0, 0); programs.len()]);
    let done = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let tmp = std::env::temp_dir().join(format!("preempt-soak-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&tmp) {
        return fail(format!(
            "preempt soak: cannot create {}: {e}",
            tmp.display()
        ));
    }
    std::thread::scope(|s| {
        for worker in 0..parallel {
            let (queue, tallies, again, done, failed, tmp, exe) =
                (&queue, &tallies, &again, &done, &failed, &tmp, &exe);
            let (programs, configs) = (&programs, &configs);
            s.spawn(move || {
                let stats = tmp.join(format!("stats-{worker}.json"));
                loop {
                    let Some(job) = lock(queue).pop_front() else {
                        return;
                    };
                    let (path, expect) = &programs[job.program];
                    let r = run_one(exe, &job.args, expect, path, a.timeout, &stats);
                    if r.re_requests > 0 {
                        let mut g = lock(again);
                        g[job.program].0 += 1;
                        g[job.program].1 += r.re_requests;
                    }
                    let mut t = lock(tallies);
                    let tally = &mut t[job.config];
                    tally.runs += 1;
                    tally.programs.insert(job.program);
                    tally.re_requests += r.re_requests;
                    if let Err(what) = &r.verdict {
                        tally.failures += 1;
                        tally.hangs += u64::from(r.hang);
                        failed.fetch_add(1, Ordering::Relaxed);
                        tally.first.get_or_insert_with(|| {
                            format!(
                                "{}: preempt {} {}\n  {what}\n{}",
                                configs[job.config].label().trim_end(),
                                job.args.join(" "),
                                path.display(),
                                indent(&r.stderr)
                            )
                        });
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Progress, every 10 s, on stderr.
        let mut last = Instant::now();
        while done.load(Ordering::Relaxed) < total {
            std::thread::sleep(Duration::from_millis(100));
            if last.elapsed() >= Duration::from_secs(10) {
                last = Instant::now();
                errln!(
                    "soak: {}/{total} runs, {} failed, {:.0} s",
                    done.load(Ordering::Relaxed),
                    failed.load(Ordering::Relaxed),
                    started.elapsed().as_secs_f64()
                );
            }
        }
    });
    stop_busy.store(true, Ordering::Relaxed);
    for b in busy {
        let _ = b.join();
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let tallies = tallies.into_inner().unwrap_or_else(|e| e.into_inner());
    out!("{}", table(&configs, &tallies));
    outln!("time: {:.0} s", started.elapsed().as_secs_f64());
    let again = again.into_inner().unwrap_or_else(|e| e.into_inner());
    if again.iter().any(|&(n, _)| n > 0) {
        outln!(
            "\nre-requests (a request applied again because its goroutine had not stopped a quantum after it), by program:"
        );
        for ((path, e), &(runs, n)) in programs.iter().zip(&again) {
            if runs > 0 {
                outln!(
                    "  {:<56} {n:>6} in {runs} run(s){}",
                    path.display(),
                    if e.status == 3 {
                        " (a program that hangs on purpose)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    let firsts: Vec<&String> = tallies.iter().filter_map(|t| t.first.as_ref()).collect();
    if firsts.is_empty() {
        return crate::console::exit(0);
    }
    outln!("\nthe first failure of each configuration that had one:");
    for f in firsts {
        outln!("\n{f}");
    }
    crate::console::exit(1)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The table of tallies, one row per configuration and a total.
fn table(configs: &[Config], tallies: &[Tally]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<44}{:>9}{:>7}{:>10}{:>7}{:>13}",
        "configuration", "programs", "runs", "failures", "hangs", "re-requests"
    );
    let mut sum = Tally::default();
    for (c, t) in configs.iter().zip(tallies) {
        if t.runs == 0 {
            continue;
        }
        let _ = writeln!(
            s,
            "{:<44}{:>9}{:>7}{:>10}{:>7}{:>13}",
            c.label(),
            t.programs.len(),
            t.runs,
            t.failures,
            t.hangs,
            t.re_requests
        );
        sum.runs += t.runs;
        sum.failures += t.failures;
        sum.hangs += t.hangs;
        sum.re_requests += t.re_requests;
    }
    let _ = writeln!(
        s,
        "{:<44}{:>9}{:>7}{:>10}{:>7}{:>13}",
        "total", "", sum.runs, sum.failures, sum.hangs, sum.re_requests
    );
    s
}

/// How one run went.
struct RunResult {
    verdict: Result<(), String>,
    hang: bool,
    stderr: String,
    re_requests: u64,
}

fn run_one(
    exe: &[String],
    args: &[String],
    e: &Expect,
    path: &Path,
    timeout: u64,
    stats: &Path,
) -> RunResult {
    let mut cmd = Command::new(&exe[0]);
    cmd.args(&exe[1..]).args(args);
    if !e.has_flag("--timeout") {
        cmd.args(["--timeout", &timeout.to_string()]);
    }
    cmd.args(&e.flags);
    cmd.arg("--stats-json").arg(stats).arg(path);
    let _ = std::fs::remove_file(stats);
    // The soak's own timer, far past any watchdog: only a run that even
    // the watchdog could not end meets it.
    let kill_after = Duration::from_secs(timeout.max(watchdog_of(e)) + 30);
    let f = match preempt_bench::process::run(&mut cmd, kill_after) {
        Ok(f) => f,
        Err(err) => {
            return RunResult {
                verdict: Err(format!("cannot start {}: {err}", exe.join(" "))),
                hang: false,
                stderr: String::new(),
                re_requests: 0,
            }
        }
    };
    let re_requests = std::fs::read_to_string(stats)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("details")?.get("re_requests")?.as_u64())
        .unwrap_or(0);
    let hang = f.timed_out || (f.status == Some(3) && e.status != 3);
    let verdict = if f.timed_out {
        Err(format!(
            "not ended by its watchdog: killed after {:.0} s",
            f.wall.as_secs_f64()
        ))
    } else {
        e.check(f.status, &f.stdout, &f.stderr)
    };
    RunResult {
        verdict,
        hang,
        stderr: f.stderr,
        re_requests,
    }
}

/// The `--timeout` a program's flags set, in whole seconds (0: none).
fn watchdog_of(e: &Expect) -> u64 {
    e.flags
        .iter()
        .position(|f| f == "--timeout")
        .and_then(|i| e.flags.get(i + 1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v.ceil() as u64)
}

/// `text`'s first 40 lines, indented.
fn indent(text: &str) -> String {
    let lines: Vec<String> = text.lines().take(40).map(|l| format!("    {l}")).collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cli: &[&str]) -> SoakArgs {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: SoakArgs,
        }
        use clap::Parser;
        P::parse_from(std::iter::once("soak").chain(cli.iter().copied())).a
    }

    #[test]
    fn the_default_matrix_is_every_mode_procs_quantum_and_level() {
        let c = configs(&args(&[])).unwrap();
        assert_eq!(c.len(), 7 * 2 * 2 * 2);
        assert!(c.iter().any(|c| c.label().starts_with("trap/mprotect")));
        let timer = c
            .iter()
            .find(|c| c.label().starts_with("async/timer"))
            .expect("the quantum timer is soaked");
        let e = Expect::default();
        let a = timer.args(&e, &c[0]).expect("runs");
        assert!(a.windows(2).any(|w| w == ["--quantum-timer", "thread"]));
        assert!(a.windows(2).any(|w| w == ["--preempt", "async"]));
        let both = configs(&args(&["--engine", "both", "--modes", "coop,patch"])).unwrap();
        // The interpreter runs coop only of these two.
        assert_eq!(both.len(), 2 * 8 + 8);
        assert!(configs(&args(&["--modes", "spin"])).is_err());
        assert!(configs(&args(&["--quanta", "fast"])).is_err());
    }

    #[test]
    fn a_program_runs_only_where_its_header_lets_it() {
        let all = configs(&args(&[])).unwrap();
        let first = &all[0];
        let coop = all.iter().find(|c| c.mode == "coop").unwrap();
        let hangs = Expect::parse("; expect-status: 0\n; coop-hangs: a loop\n").unwrap();
        assert_eq!(coop.args(&hangs, first), None);
        let patch = all
            .iter()
            .find(|c| c.mode == "patch" && c.procs == 2 && c.quantum.is_some() && c.opt == 0)
            .unwrap();
        let a = patch.args(&hangs, first).unwrap();
        assert_eq!(
            a,
            [
                "run",
                "--engine",
                "jit",
                "--preempt",
                "patch",
                "--procs",
                "2",
                "--quantum",
                "20us",
                "-O0"
            ]
        );
        // A program that fixes its Ps runs at the first procs only, with
        // its own.
        let fixed = Expect::parse("; expect-status: 0\nset procs = 2\n").unwrap();
        assert_eq!(patch.args(&fixed, first), None);
        let p1 = all
            .iter()
            .find(|c| c.mode == "patch" && c.procs == 1 && c.quantum.is_some() && c.opt == 0)
            .unwrap();
        assert!(!p1
            .args(&fixed, first)
            .unwrap()
            .contains(&"--procs".to_string()));
        let async_only = Expect::parse("; expect-status: 0\n; async-only: signals\n").unwrap();
        assert_eq!(patch.args(&async_only, first), None);
    }

    #[test]
    fn a_programs_own_watchdog_is_read() {
        let e = Expect::parse("; flags: --timeout 1.5 --procs 1\n; expect-status: 3\n").unwrap();
        assert_eq!(watchdog_of(&e), 2);
        assert_eq!(watchdog_of(&Expect::default()), 0);
    }
}
