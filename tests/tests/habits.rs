//! Go's habits on preempt's command line: `GOMAXPROCS` honoured when
//! `--procs` is not given, `PREEMPTDEBUG` never silent (an unknown key is
//! named, an explicit flag wins over it and a line says so), `--arch`
//! taking GOARCH names, `--timeout` taking units and `none`, and output
//! files checked before a run instead of after it.

use std::time::Duration;

use preempt_tests::{run_cli, run_cli_env, Run};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");
/// Kill timer: every run here takes well under a second on hardware.
const GENEROUS: Duration = Duration::from_secs(60);

fn with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_cli_env(CLI, args, env, GENEROUS)
}

/// The Ps and mode of a run, from its `--stats` header.
fn header(r: &Run) -> &str {
    r.stderr
        .lines()
        .find(|l| l.starts_with("preempt stats:"))
        .unwrap_or_else(|| panic!("no stats header:\n{}", r.stderr))
}

#[test]
fn gomaxprocs_sets_the_ps_unless_a_flag_or_the_file_does() {
    let r = with_env(
        &["run", "--stats", "examples/sum.pir"],
        &[("GOMAXPROCS", "1")],
    );
    assert_eq!(r.status, Some(0), "{r:?}");
    assert!(
        header(&r).starts_with("preempt stats: 1 Ps (from GOMAXPROCS),"),
        "{}",
        header(&r)
    );
    let r = with_env(
        &["run", "--stats", "--procs", "3", "examples/sum.pir"],
        &[("GOMAXPROCS", "1")],
    );
    assert!(
        header(&r).starts_with("preempt stats: 3 Ps (from --procs),"),
        "{}",
        header(&r)
    );
    let r = with_env(&["run", "examples/sum.pir"], &[("GOMAXPROCS", "lots")]);
    assert_eq!(r.status, Some(2), "{r:?}");
    assert!(r.stderr.contains("GOMAXPROCS=lots"), "{}", r.stderr);
}

#[test]
fn preemptdebug_names_what_it_ignores_and_never_beats_a_flag() {
    let off = [("PREEMPTDEBUG", "asyncpreemptoff=1")];
    let r = with_env(&["run", "--stats", "examples/sum.pir"], &off);
    assert!(header(&r).contains("coop preemption"), "{}", header(&r));
    let r = with_env(
        &["run", "--stats", "--preempt", "poll", "examples/sum.pir"],
        &off,
    );
    assert!(header(&r).contains("poll preemption"), "{}", header(&r));
    assert!(
        r.stderr
            .contains("PREEMPTDEBUG=asyncpreemptoff=1 ignored: --preempt poll was given"),
        "{}",
        r.stderr
    );
    let r = with_env(
        &["run", "examples/sum.pir"],
        &[("PREEMPTDEBUG", "gctrace=1")],
    );
    assert_eq!(r.status, Some(0), "{r:?}");
    assert!(
        r.stderr.contains("'gctrace=1' is not supported"),
        "{}",
        r.stderr
    );
}

#[test]
fn arch_takes_goarch_names() {
    for (name, head) in [("arm64", "; aarch64 code"), ("amd64", "; x86_64 code")] {
        let r = run_cli(
            CLI,
            &["disasm", "--arch", name, "examples/sum.pir"],
            GENEROUS,
        );
        assert_eq!(r.status, Some(0), "{r:?}");
        assert!(
            r.stdout.starts_with(head),
            "{name}: {}",
            &r.stdout[..60.min(r.stdout.len())]
        );
    }
}

#[test]
fn timeout_takes_units_and_none() {
    for t in ["2s", "1500ms", "3", "none"] {
        let r = run_cli(CLI, &["run", "--timeout", t, "examples/sum.pir"], GENEROUS);
        assert_eq!(r.status, Some(0), "--timeout {t}: {r:?}");
    }
    // A unit is honoured: 300ms ends a program that never finishes.
    let r = run_cli(
        CLI,
        &[
            "run",
            "--timeout",
            "300ms",
            "--preempt",
            "coop",
            "examples/bugs/01-classic-hang/waiting-main.pir",
        ],
        GENEROUS,
    );
    assert_eq!(r.status, Some(3), "{r:?}");
    assert!(
        r.stderr.contains("did not finish within 0.300s"),
        "{}",
        r.stderr
    );
    let r = run_cli(
        CLI,
        &["run", "--timeout", "2x", "examples/sum.pir"],
        GENEROUS,
    );
    assert_eq!(r.status, Some(2), "{r:?}");
    assert!(r.stderr.contains("is not a timeout"), "{}", r.stderr);
}

#[test]
fn an_output_that_cannot_be_written_is_found_before_the_run() {
    for flag in ["--trace", "--stats-json"] {
        let r = run_cli(
            CLI,
            &["run", flag, "/nonexistent/out.json", "examples/sum.pir"],
            GENEROUS,
        );
        assert_eq!(r.status, Some(2), "{flag}: {r:?}");
        assert!(r.stdout.is_empty(), "{flag}: the program ran: {}", r.stdout);
        assert!(
            r.stderr.contains("cannot write /nonexistent/out.json"),
            "{}",
            r.stderr
        );
    }
}
