//! One child process each: `preempt run` of a kernel timed by itself, of
//! a kernel counted under valgrind, of a spinner stopped by the quantum;
//! and the code size of a kernel's program, compiled here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use preempt_jit::ir::PreemptMode;
use preempt_jit::module::Module;
use serde_json::{json, Value};

use super::stats::per_unit;
use super::{
    kernel_source, suite_kernels, valgrind_instructions, Variant, NO_STOP_FLAG, QUANTUM_FLAG,
};
use crate::kernels::{self, Kernel};
use crate::process::{self, Finished};
use crate::runtime::{self as rt, Options};

/// Runs `preempt run` (under valgrind, when asked) on files this suite
/// writes to `target/bench/mechanisms/`.
pub(super) struct Runner<'a> {
    pub(super) opts: &'a Options,
    pub(super) dir: PathBuf,
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
        crate::progress::step(&format!(
            "{}preempt run {} {}",
            prefix.first().map_or(String::new(), |p| format!("{p} ")),
            file.file_stem().unwrap_or_default().to_string_lossy(),
            flags.get(1).map_or("", String::as_str)
        ));
        let mut words: Vec<std::ffi::OsString> = prefix.iter().map(Into::into).collect();
        words.extend(self.opts.exec_wrapper.iter().map(Into::into));
        words.push(exe.into_os_string());
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..])
            .arg("run")
            .arg(file)
            .args(["--timeout", &timeout.to_string()])
            .args(process::cpus_args())
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
    .chain(&rt::BENCH_RUN_FLAGS)
    .map(|s| s.to_string())
    .collect();
    if let Some(v) = v {
        f.extend(v.flags.iter().map(|s| s.to_string()));
    }
    f
}

/// Whether this build runs `v`: a tiny kernel through `preempt run`.
pub(super) fn probe(r: &Runner<'_>, v: &Variant) -> Result<(), String> {
    let k = &suite_kernels()[0];
    let file = r.write("probe", &kernel_source(k, 1000, 0))?;
    r.run(&[], &file, &flags(Some(v), QUANTUM_FLAG), 10)
        .map(|_| ())
}

/// One time-to-preempt run: the stats of a spinner stopped `sleeps`
/// times by the monitor's quantum.
pub(super) fn ttp_run(r: &Runner<'_>, v: &Variant, sleeps: u64) -> Result<Value, String> {
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
pub(super) fn valgrind(opts: &Options) -> Result<String, String> {
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
pub(super) fn count_instructions(
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
pub(super) fn hung(e: &str) -> bool {
    e.contains("watchdog") || e.starts_with("killed after")
}

/// One timed run of a kernel.
#[derive(Clone, Copy, Debug)]
pub(super) struct KernelRun {
    pub(super) result: i64,
    pub(super) ns: f64,
    /// Goroutine stops of any kind during the run.
    pub(super) stops: u64,
}

/// Runs `k` at size `n` under `v` (None: no preemption at all) in a
/// fresh process, its code moved by `pad` (see [`kernel_source`]).
pub(super) fn time_kernel(
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
        stops: st["details"]["preemptions"]["total"].as_u64().unwrap_or(0),
    })
}

/// Bytes of the functions' code and of the whole published module of
/// `k`'s program compiled for `mode` (compiled here: nothing runs).
pub(super) fn code_size(k: &Kernel, mode: PreemptMode) -> Result<CodeSize, String> {
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

/// The result and elapsed nanoseconds a self-timed kernel prints.
fn kernel_output(stdout: &str) -> Option<(i64, f64)> {
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut w = line.split_whitespace().map(str::parse::<i64>);
    match (w.next(), w.next(), w.next()) {
        (Some(Ok(r)), Some(Ok(ns)), None) => Some((r, ns as f64)),
        _ => None,
    }
}

/// Bytes of the kernel programs' functions, and of their whole modules
/// (stubs and padding included).
pub(super) type CodeSize = (usize, usize);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanisms::VARIANTS;

    #[test]
    fn kernel_output_is_read() {
        assert_eq!(kernel_output("42 1000\n"), Some((42, 1000.0)));
        assert_eq!(kernel_output("noise\n-7 12\n\n"), Some((-7, 12.0)));
        assert_eq!(kernel_output("42\n"), None);
        assert_eq!(kernel_output("1 2 3\n"), None);
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
                "--hang-threshold",
                "0",
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
    fn sizes_reach_their_work() {
        for k in suite_kernels() {
            let n = size_for(&k, 1e6);
            assert!((k.work)(n) >= 1e6, "{}", k.name);
            assert!((k.work)(n) < 4e6, "{}: {}", k.name, (k.work)(n));
        }
    }
}
