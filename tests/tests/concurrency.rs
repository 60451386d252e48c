//! Concurrent programs on the scheduler, end to end through the CLI: every
//! program under `tests/programs/concurrent/` runs on the JIT at one and two
//! Ps and on the interpreter, and must give the stdout, exit status and
//! stderr lines its header states:
//!
//! (the header's lines are described in `preempt::expect`; `preempt soak`
//! runs the same programs many more times).
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

use preempt::expect::Expect;
use preempt_tests::{repo_root, run_cli};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");

fn expectations(text: &str) -> Expect {
    Expect::parse(text).expect("every concurrent program states its exit status")
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
    e.check(r.status, &r.stdout, &r.stderr).map_err(|problems| {
        format!(
            "preempt {}: {problems} ({:?} after {:.1?})\nstderr:\n{}",
            args.join(" "),
            r.end,
            r.elapsed,
            r.stderr
        )
    })
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
            let cfg: Vec<&str> = if e.fixes_procs {
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
        |e| !e.async_only && !e.fixes_mode,
    );
}

#[test]
fn jit_under_the_quantum_timer() {
    // Each worker's own timer ends its slices (`--quantum-timer thread`):
    // it fires at threads in foreign code (ccall-handoff.pir: a short
    // retry there restarted the foreign sleep for ever), its signal is one
    // `notify` must see (notify-preempt-signal.pir), and one may still
    // arrive after its worker stopped (async-preempt-signal-usr1.pir:
    // passed on to SIGUSR1's default, it ended the process).
    run_matching(
        &[
            &["--quantum-timer", "thread", "--procs", "1"],
            &[
                "--quantum-timer",
                "thread",
                "--procs",
                "1",
                "--quantum",
                "20us",
            ],
            &[
                "--quantum-timer",
                "thread",
                "--procs",
                "2",
                "--quantum",
                "20us",
            ],
        ],
        |e| !e.fixes_mode,
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
        |e| !e.async_only && !e.coop_hangs && !e.fixes_mode,
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
