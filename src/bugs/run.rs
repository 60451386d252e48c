//! Running a bug's scenarios: each run a fresh process with a time bound,
//! preempt's side as `preempt run` children of this executable, Go's as
//! the bug's Go twin built with the Go toolchain, one after the other
//! (never side by side, so that neither measures the other's load).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use preempt_bench::peers::{self, Paths};
use preempt_bench::process::{self, Finished};

use super::catalogue::{Bug, Expect, Invocation, Scenario, Side};
use super::rules::{Run, Runs};

/// The Go side: a toolchain, or why there is none.
#[derive(Clone, Debug)]
pub enum Go {
    Ready {
        go: PathBuf,
        version: String,
        source: String,
    },
    Unavailable(String),
}

impl Go {
    /// `--go PATH`, else the toolchain `make peers` installed (or
    /// `$PREEMPT_GO`, or `go` on the PATH).
    pub fn find(paths: &Paths, explicit: Option<&Path>) -> Go {
        let found = match explicit {
            Some(p) => Ok((p.to_path_buf(), "--go".to_string())),
            None => peers::find_toolchain(paths),
        };
        match found.and_then(|(go, source)| Ok((peers::go_version(&go)?, go, source))) {
            Ok((version, go, source)) => Go::Ready {
                go,
                version,
                source,
            },
            Err(why) => Go::Unavailable(why),
        }
    }

    pub fn version(&self) -> Option<&str> {
        match self {
            Go::Ready { version, .. } => Some(version),
            Go::Unavailable(_) => None,
        }
    }
}

/// What a bug's runs gave.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Each side's runs, by scenario.
    pub runs: BTreeMap<Side, Runs>,
    /// Why Go's side did not run (no toolchain, the twin did not build).
    pub go_missing: Option<String>,
    /// Expectations a run did not meet: (side, scenario, run, what).
    pub unexpected: Vec<(Side, String, usize, String)>,
}

/// How a catalogue run goes.
#[derive(Debug)]
pub struct Options {
    pub quick: bool,
    pub paths: Paths,
    pub go: Go,
    /// Runs only these sides.
    pub sides: Vec<Side>,
}

/// Runs every scenario of `bug`; `progress` hears of each run as it ends.
pub fn run_bug(bug: &Bug, opts: &Options, progress: &mut dyn FnMut(&str)) -> Outcome {
    let mut out = Outcome::default();
    // The twin is built once per set of build flags.
    let mut builds: BTreeMap<Vec<String>, Result<PathBuf, String>> = BTreeMap::new();
    if !opts.sides.contains(&Side::Go) {
        out.go_missing = Some("not asked for (--side preempt)".into());
    }
    for s in &bug.scenarios {
        let n = if opts.quick { s.quick_runs } else { s.runs };
        for side in [Side::Preempt, Side::Go] {
            let Some(inv) = s.side(side) else { continue };
            if !opts.sides.contains(&side) {
                continue;
            }
            let mut runs = Vec::new();
            for i in 0..n {
                let r = match side {
                    Side::Preempt => run_preempt(s, inv),
                    Side::Go => {
                        let bin = builds
                            .entry(inv.build.clone())
                            .or_insert_with(|| build_twin(bug, &inv.build, opts));
                        match (&*bin, &opts.go) {
                            (Ok(bin), Go::Ready { go, .. }) => run_go(s, inv, bin, go, &opts.paths),
                            (Err(why), _) => {
                                out.go_missing.get_or_insert_with(|| why.clone());
                                break;
                            }
                            (Ok(_), Go::Unavailable(why)) => Err(why.clone()),
                        }
                    }
                };
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        out.unexpected.push((
                            side,
                            s.name.clone(),
                            i as usize,
                            format!("did not run: {e}"),
                        ));
                        break;
                    }
                };
                if let Some(e) = &inv.expect {
                    for what in unmet(e, &r) {
                        out.unexpected
                            .push((side, s.name.clone(), i as usize, what));
                    }
                }
                progress(&format!(
                    "{} {} run {}/{n}: {}",
                    side.name(),
                    s.name,
                    i + 1,
                    one_line(&r)
                ));
                runs.push(r);
            }
            if !runs.is_empty() {
                out.runs
                    .entry(side)
                    .or_default()
                    .insert(s.name.clone(), runs);
            }
        }
    }
    out
}

/// A run in a few words.
pub fn one_line(r: &Run) -> String {
    let mut s = if r.hung {
        "hung (ended by the time bound)".to_string()
    } else {
        format!("exit {}", r.status)
    };
    let out = r.out();
    if r.disasm {
        s.push_str(&format!(
            ", {} lines of machine code",
            r.stdout.lines().count()
        ));
    } else if !out.is_empty() {
        let short: String = out.chars().take(60).collect();
        s.push_str(&format!(
            ", \"{short}{}\"",
            if short.len() < out.len() { "..." } else { "" }
        ));
    }
    for (k, v) in &r.measures {
        s.push_str(&format!(", {k} {}", super::rules::number(*v)));
    }
    s
}

/// What `r` does not meet of `e`.
pub fn unmet(e: &Expect, r: &Run) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(st) = e.status {
        if r.status != st {
            v.push(format!("exit status {} (expected {st})", r.status));
        }
    }
    if let Some(h) = e.hung {
        if r.hung != h {
            v.push(if h {
                "ended by itself (expected a hang)".into()
            } else {
                "hung (expected it to end)".into()
            });
        }
    }
    if let Some(o) = &e.out {
        if r.out() != *o {
            v.push(format!("printed {:?} (expected {o:?})", r.out()));
        }
    }
    for t in &e.stderr {
        if !r.stderr.contains(t.as_str()) {
            v.push(format!("stderr lacks {t:?}"));
        }
    }
    v
}

fn finished(f: Finished, hung_status: Option<i32>) -> Run {
    let status = f.status.unwrap_or(-1);
    let mut r = Run {
        status,
        hung: f.timed_out || (hung_status.is_some() && f.status == hung_status),
        stdout: f.stdout,
        stderr: f.stderr,
        wall_ms: f.wall.as_secs_f64() * 1e3,
        ..Run::default()
    };
    r.read_measures();
    r
}

/// `preempt run --timeout T --stats ARGS PROGRAM` (or `preempt disasm`).
fn run_preempt(s: &Scenario, inv: &Invocation) -> Result<Run, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let program = inv.program.as_ref().ok_or("no program")?;
    let mut cmd = Command::new(exe);
    if let Some(func) = &inv.disasm {
        cmd.arg("disasm").args(&inv.args).arg(program);
        let f = process::run(&mut cmd, kill_after(s)).map_err(|e| e.to_string())?;
        let mut r = finished(f, None);
        r.stdout = function_of(&r.stdout, func)
            .ok_or_else(|| format!("no function {func} in the disassembly"))?;
        r.disasm = true;
        return Ok(r);
    }
    cmd.arg("run")
        .arg("--timeout")
        .arg(format!("{}", s.timeout))
        .arg("--stats")
        .args(&inv.args)
        .arg(program)
        .envs(&inv.env);
    let f = process::run(&mut cmd, kill_after(s)).map_err(|e| e.to_string())?;
    let mut r = finished(f, Some(3));
    r.stats = stats_of(&r.stderr);
    Ok(r)
}

/// The watchdog ends a hung preempt run at the scenario's timeout; this
/// bound only keeps a broken build from hanging the catalogue.
fn kill_after(s: &Scenario) -> Duration {
    Duration::from_secs_f64(s.timeout * 3.0 + 30.0)
}

/// The section of `preempt disasm` output for `@func`.
fn function_of(disasm: &str, func: &str) -> Option<String> {
    let head = format!("{func}(");
    let mut lines = disasm.lines().skip_while(|l| !l.starts_with(&head));
    let first = lines.next()?;
    let mut s = format!("{first}\n");
    for l in lines.take_while(|l| !l.starts_with('@')) {
        s.push_str(l);
        s.push('\n');
    }
    Some(s)
}

/// The figures of `--stats`: each line `NAME  NUMBER ...` after the
/// `preempt stats:` header.
pub fn stats_of(stderr: &str) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let Some(at) = stderr.find("preempt stats:") else {
        return m;
    };
    for line in stderr[at..].lines().skip(1) {
        let Some(gap) = line.find("  ") else { continue };
        let name = line[..gap].trim();
        let Some(v) = line[gap..]
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<f64>().ok())
        else {
            continue;
        };
        if !name.is_empty() {
            m.entry(name.to_string()).or_insert(v);
        }
    }
    m
}

/// Builds the bug's Go twin (a cache hit when nothing changed).
fn build_twin(bug: &Bug, flags: &[String], opts: &Options) -> Result<PathBuf, String> {
    let (go, version) = match &opts.go {
        Go::Ready { go, version, .. } => (go, version),
        Go::Unavailable(why) => return Err(format!("Go was not run: {why}")),
    };
    let name = bug
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix: String = flags
        .iter()
        .map(|f| f.trim_start_matches('-'))
        .collect::<Vec<_>>()
        .join("-");
    let bin = opts
        .paths
        .target
        .join("bugs")
        .join("go")
        .join(if suffix.is_empty() {
            name
        } else {
            format!("{name}-{suffix}")
        });
    let mut cmd = peers::go_command(go, &opts.paths.peers_dir(), true);
    cmd.arg("build")
        .args(flags)
        .arg("-o")
        .arg(&bin)
        .arg(".")
        .current_dir(&bug.dir);
    let built = process::run(&mut cmd, Duration::from_secs(600))
        .map_err(|e| format!("cannot run {}: {e}", go.display()))?;
    if !built.ok() {
        return Err(format!(
            "{version} cannot build {}: {}",
            bug.go.display(),
            built.describe()
        ));
    }
    Ok(bin)
}

/// Runs the Go twin (or disassembles it).
fn run_go(
    s: &Scenario,
    inv: &Invocation,
    bin: &Path,
    go: &Path,
    paths: &Paths,
) -> Result<Run, String> {
    if let Some(pattern) = &inv.disasm {
        let mut cmd = peers::go_command(go, &paths.peers_dir(), true);
        cmd.args(["tool", "objdump", "-s", pattern]).arg(bin);
        let f = process::run(&mut cmd, Duration::from_secs(120)).map_err(|e| e.to_string())?;
        let mut r = finished(f, None);
        r.disasm = true;
        return Ok(r);
    }
    let mut cmd = Command::new(bin);
    cmd.args(&inv.args).envs(&inv.env);
    let f =
        process::run(&mut cmd, Duration::from_secs_f64(s.timeout)).map_err(|e| e.to_string())?;
    Ok(finished(f, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_become_figures() {
        let text = "out\n\npreempt stats: 2 Ps, async preemption, quantum 10ms\ncontext switches                 7\nthreads created (Ms)             2\nre-requests                      0  (requests applied again after a back-off)\n";
        let m = stats_of(text);
        assert_eq!(m["context switches"], 7.0);
        assert_eq!(m["threads created (Ms)"], 2.0);
        assert_eq!(m["re-requests"], 0.0);
        assert!(stats_of("no stats here").is_empty());
    }

    #[test]
    fn a_function_is_cut_out_of_a_disassembly() {
        let d = "; header\n@a():\n  x\n@b(%n: i64):\n  y\n  z\n";
        assert_eq!(
            function_of(d, "@b").as_deref(),
            Some("@b(%n: i64):\n  y\n  z\n")
        );
        assert_eq!(function_of(d, "@a").as_deref(), Some("@a():\n  x\n"));
        assert_eq!(function_of(d, "@c"), None);
    }

    #[test]
    fn expectations_name_what_a_run_missed() {
        let r = Run {
            status: 3,
            hung: true,
            stdout: "B1\nmeasure x 1\n".into(),
            stderr: "watchdog".into(),
            ..Run::default()
        };
        let e = Expect {
            status: Some(0),
            out: Some("B1 A1".into()),
            stderr: vec!["watchdog".into(), "deadlock".into()],
            hung: Some(false),
        };
        assert_eq!(
            unmet(&e, &r),
            vec![
                "exit status 3 (expected 0)".to_string(),
                "hung (expected it to end)".into(),
                "printed \"B1\" (expected \"B1 A1\")".into(),
                "stderr lacks \"deadlock\"".into(),
            ]
        );
        let ok = Expect {
            status: Some(3),
            hung: Some(true),
            out: Some("B1".into()),
            stderr: vec!["watchdog".into()],
        };
        assert!(unmet(&ok, &r).is_empty());
    }
}
