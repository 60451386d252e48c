//! Concurrent programs on the scheduler, end to end through the CLI: every
//! program under `tests/programs/concurrent/` runs on the JIT at one and two
//! Ps and on the interpreter, and must give the stdout, exit status and
//! stderr lines its header states:
//!
//! ```text
//! ; flags: --preempt coop            extra `preempt run` flags
//! ; expect-status: 0
//! ; expect-stdout: LINE              stdout is exactly these lines, in order
//! ; expect-stderr: TEXT              stderr contains each of these
//! ; jit-only: REASON                 not run on the interpreter
//! ; async-only: REASON               not run under coop, poll, trap or patch
//! ; coop-hangs: REASON               not run under coop (a loop it cannot stop)
//! ```
//!
//! The JIT also runs every program under the three back-edge mechanisms
//! (`poll`, `trap` with either arming, `patch`) at two Ps with a 20 us
//! quantum, except those that fix their mode or are about signals, and
//! under `coop` at one and two Ps, except those it cannot stop either.
//!
//! Runs go through a subprocess so that a program that ends while other
//! goroutines still run leaves no thread behind in the test process.

use std::path::Path;
use std::time::Duration;

use preempt_tests::{repo_root, run_cli};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");

struct Expect {
    flags: Vec<String>,
    status: i32,
    stdout: String,
    stderr: Vec<String>,
    jit_only: bool,
    async_only: bool,
    coop_hangs: bool,
    sets_procs: bool,
}

fn expectations(text: &str) -> Expect {
    let mut e = Expect {
        flags: Vec::new(),
        status: 0,
        stdout: String::new(),
        stderr: Vec::new(),
        jit_only: false,
        async_only: false,
        coop_hangs: false,
        sets_procs: false,
    };
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("; flags:") {
            e.flags.extend(v.split_whitespace().map(str::to_string));
        } else if let Some(v) = l.strip_prefix("; expect-status:") {
            e.status = v.trim().parse().expect("a status");
        } else if let Some(v) = l.strip_prefix("; expect-stdout:") {
            e.stdout.push_str(v.strip_prefix(' ').unwrap_or(v));
            e.stdout.push('\n');
        } else if let Some(v) = l.strip_prefix("; expect-stderr:") {
            e.stderr.push(v.trim().to_string());
        } else if l.starts_with("; jit-only:") {
            e.jit_only = true;
        } else if l.starts_with("; async-only:") {
            e.async_only = true;
        } else if l.starts_with("; coop-hangs:") {
            e.coop_hangs = true;
        } else if l.starts_with("set procs") {
            e.sets_procs = true;
        }
    }
    e.sets_procs |= e.flags.iter().any(|f| f == "--procs");
    e
}

fn check(path: &Path, engine_args: &[&str]) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap();
    let e = expectations(&text);
    let file = path
        .strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string();
    let mut args: Vec<&str> = vec!["run"];
    args.extend(engine_args);
    args.extend(e.flags.iter().map(String::as_str));
    args.push(&file);
    // The kill timer only keeps a broken build from hanging the suite; the
    // programs take milliseconds, the watchdog ones about a second.
    let r = run_cli(CLI, &args, Duration::from_secs(120));
    let mut problems = Vec::new();
    if r.status != Some(e.status) {
        problems.push(format!(
            "status {:?}, expected {} ({:?} after {:.1?})",
            r.status, e.status, r.end, r.elapsed
        ));
    }
    if r.stdout != e.stdout {
        problems.push(format!("stdout {:?}, expected {:?}", r.stdout, e.stdout));
    }
    for s in &e.stderr {
        if !r.stderr.contains(s.as_str()) {
            problems.push(format!("stderr lacks {s:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "preempt {}: {}\nstderr:\n{}",
            args.join(" "),
            problems.join("; "),
            r.stderr
        ))
    }
}

fn programs() -> Vec<std::path::PathBuf> {
    let dir = repo_root().join("tests/programs/concurrent");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pir"))
        .collect();
    v.sort();
    assert!(
        v.len() >= 15,
        "only {} programs in {}",
        v.len(),
        dir.display()
    );
    v
}

fn run_all(configs: &[&[&str]], include_jit_only: bool) {
    run_matching(configs, |e| include_jit_only || !e.jit_only);
}

fn run_matching(configs: &[&[&str]], wanted: impl Fn(&Expect) -> bool) {
    let mut failures = Vec::new();
    for p in programs() {
        let text = std::fs::read_to_string(&p).unwrap();
        let e = expectations(&text);
        if !wanted(&e) {
            continue;
        }
        for cfg in configs {
            // A program that fixes its Ps runs once per engine, with its Ps.
            let cfg: Vec<&str> = if e.sets_procs {
                if cfg.contains(&"2") {
                    continue;
                }
                cfg.iter()
                    .copied()
                    .filter(|a| *a != "--procs" && *a != "1")
                    .collect()
            } else {
                cfg.to_vec()
            };
            if let Err(msg) = check(&p, &cfg) {
                failures.push(msg);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn jit_at_one_and_two_ps() {
    run_all(
        &[
            &["--procs", "1"],
            &["--procs", "2"],
            &["-O0", "--procs", "2"],
            // A request every 20 us: results of operations that complete
            // as the goroutine is preempted must survive the stop.
            &["--procs", "1", "--quantum", "20us"],
            &["--procs", "2", "--quantum", "20us"],
        ],
        true,
    );
}

#[test]
fn jit_under_the_back_edge_mechanisms() {
    // Requests every 20 us, so that loops are stopped at their back-edges
    // over and over, at one P and at two.
    run_matching(
        &[
            &["--preempt", "poll", "--procs", "2", "--quantum", "20us"],
            &["--preempt", "trap", "--procs", "2", "--quantum", "20us"],
            &[
                "--preempt",
                "trap",
                "--trap-arm",
                "mprotect",
                "--procs",
                "2",
                "--quantum",
                "20us",
            ],
            &["--preempt", "patch", "--procs", "2", "--quantum", "20us"],
            &["--preempt", "patch", "--procs", "1", "--quantum", "20us"],
        ],
        |e| !e.async_only && !e.flags.iter().any(|f| f == "--preempt"),
    );
}

#[test]
fn jit_under_coop() {
    // Requests every 20 us, honoured only at function entries and runtime
    // calls: the programs whose loops all call or block end alike.
    run_matching(
        &[
            &["--preempt", "coop", "--procs", "1", "--quantum", "20us"],
            &["--preempt", "coop", "--procs", "2", "--quantum", "20us"],
        ],
        |e| !e.async_only && !e.coop_hangs && !e.flags.iter().any(|f| f == "--preempt"),
    );
}

#[test]
fn interpreter_on_the_same_scheduler() {
    run_all(
        &[
            &["--engine", "interp", "--procs", "1"],
            &["--engine", "interp", "--procs", "2"],
            &["--engine", "interp", "--procs", "2", "--quantum", "20us"],
        ],
        false,
    );
}
