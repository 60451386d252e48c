//! `preempt bugs`, the seed's bugs as a measured catalogue: every bug's file
//! reads, a broken file is reported as FILE:LINE:COL with exit status 2,
//! and every outcome a bug's file states as certain (exit status,
//! fatal-error text, output order at one P, a hang the watchdog ends)
//! holds in a short run of the whole catalogue, on preempt and, when the
//! Go toolchain is installed, on Go.
//!
//! Verdicts that depend on timing are printed by the catalogue, never
//! asserted here; what is asserted is that no run missed a certain outcome
//! (`--check`) and that no rule failed to evaluate (a rule naming a figure
//! no run printed is a broken bug file, not a timing question).

use std::time::Duration;

use preempt_tests::{emulated, repo_root, run_cli, Run};
use serde_json::Value;

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");
/// Only keeps a broken build from hanging the suite: the short catalogue
/// takes a minute or two, its hangs end at their own watchdogs.
const KILL_AFTER: Duration = Duration::from_secs(900);

fn bugs(args: &[&str]) -> Run {
    let mut all = vec!["bugs"];
    all.extend_from_slice(args);
    run_cli(CLI, &all, KILL_AFTER)
}

#[test]
fn the_catalogue_lists_the_seeds_sixteen_bugs() {
    let r = bugs(&[]);
    assert_eq!(r.status, Some(0), "{r:?}");
    let numbered = r
        .stdout
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<u32>().is_ok())
        })
        .count();
    assert_eq!(numbered, 16, "{}", r.stdout);
    assert!(r.stdout.contains("The classic hang"), "{}", r.stdout);
}

#[test]
fn a_broken_bug_file_is_reported_where_it_is_broken() {
    let dir = std::env::temp_dir().join(format!("preempt-catalogue-{}", std::process::id()));
    let bug = dir.join("01-x");
    std::fs::create_dir_all(&bug).unwrap();
    std::fs::write(bug.join("main.go"), "package main\n").unwrap();
    std::fs::write(bug.join("x.pir"), "func @main() {\n    ret\n}\n").unwrap();
    std::fs::write(
        bug.join("bug.toml"),
        "number = 1\ntitle = \"t\"\nquestion = \"q\"\ngo = \"main.go\"\npir = \"x.pir\"\n\n[[scenario]]\nname = \"a\"\nabout = \"a\"\npreempt = {}\n\n[[claim]]\nsays = \"s\"\nholds = \"all(b.status == 0)\"\n",
    )
    .unwrap();
    let r = bugs(&["--dir", dir.to_str().unwrap(), "1"]);
    assert_eq!(r.status, Some(2), "{r:?}");
    assert!(
        r.stderr
            .contains("bug.toml:14:14: in a rule: no scenario \"b\""),
        "{}",
        r.stderr
    );
    let r = bugs(&["99"]);
    assert_eq!(r.status, Some(2), "{r:?}");
    assert!(r.stderr.contains("no bug 99"), "{}", r.stderr);
    // An output that cannot be written is found before any run.
    let r = bugs(&["1", "--no-predict", "--report", "/nonexistent/report.md"]);
    assert_eq!(r.status, Some(2), "{r:?}");
    assert!(
        r.stderr.contains("cannot write /nonexistent/report.md"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("run 1/"), "it ran first:\n{}", r.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the whole catalogue, short, on `side`; returns its JSON.
fn short_catalogue(side: &str) -> Value {
    let json =
        std::env::temp_dir().join(format!("preempt-bugs-{side}-{}.json", std::process::id()));
    let r = bugs(&[
        "all",
        "--no-predict",
        "--quick",
        "--check",
        "--side",
        side,
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(
        r.status,
        Some(0),
        "a certain outcome was missed:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    v
}

/// No rule of any claim failed to evaluate on `side`.
fn assert_rules_evaluate(v: &Value, side: &str) {
    // The catalogue's own JSON is the `details` of a result document.
    assert_eq!(v["suite"], "bugs");
    let bugs = v["details"]["bugs"].as_array().expect("bugs");
    assert_eq!(bugs.len(), 16);
    for b in bugs {
        for c in b["claims"].as_array().expect("claims") {
            let d = &c[side];
            let verdict = d["verdict"].as_str().unwrap();
            let why = d["why"].as_str().unwrap_or("");
            assert!(
                verdict != "undecided" || why == "no rule was true of these runs",
                "bug {} claim {}: {why}",
                b["bug"],
                c["id"]
            );
            assert_ne!(
                verdict, "not run",
                "bug {} claim {}: {why}",
                b["bug"], c["id"]
            );
        }
    }
}

#[test]
fn every_certain_outcome_holds_on_preempt() {
    if emulated() {
        // The catalogue starts `preempt run` children of its own
        // executable, which qemu-user does not follow into.
        eprintln!("SKIPPED under qemu-user: the catalogue's child processes are not emulated");
        return;
    }
    let v = short_catalogue("preempt");
    assert_rules_evaluate(&v, "preempt");
}

#[test]
fn every_certain_outcome_holds_on_go_when_go_is_installed() {
    let record = repo_root().join("target/peers/toolchain");
    let recorded = std::fs::read_to_string(&record).unwrap_or_default();
    // The twins' module needs Go 1.22 (Debian's fallback is older).
    let minor = recorded
        .lines()
        .find_map(|l| l.strip_prefix("version=go1."))
        .and_then(|v| v.split('.').next()?.parse::<u32>().ok());
    if emulated() || !recorded.lines().any(|l| l.starts_with("go=")) || minor < Some(22) {
        eprintln!(
            "SKIPPED: no Go 1.22 or later ({}): `make peers` installs one",
            recorded.trim()
        );
        return;
    }
    let v = short_catalogue("go");
    assert_rules_evaluate(&v, "go");
}
