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

#[test]
fn stats_say_where_the_number_of_ps_came_from() {
    // sum.pir has no `set procs`; spin-preempted.pir sets 1.
    // (flags, environment, what the stats' first line says)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 4] = [
        (
            &["--procs", "2"],
            &[("GOMAXPROCS", "1")],
            "2 Ps (from --procs),",
        ),
        (&[], &[("GOMAXPROCS", "3")], "3 Ps (from GOMAXPROCS),"),
        (&[], &[], "Ps (from the CPU count),"),
        (
            &["--timeout", "20"],
            &[("GOMAXPROCS", "2")],
            "1 Ps (from the file's set procs),",
        ),
    ];
    for (i, (flags, env, want)) in cases.iter().enumerate() {
        let file = if i == 3 {
            "examples/spin-preempted.pir"
        } else {
            "examples/sum.pir"
        };
        let mut args = vec!["run", "--stats"];
        args.extend_from_slice(flags);
        args.push(file);
        let r = with_env(&args, env);
        assert_eq!(r.status, Some(0), "{r:?}");
        assert!(header(&r).contains(want), "{want}: {}", header(&r));
    }
    // The default is the CPUs this process may run on.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let r = with_env(&["run", "--stats", "examples/sum.pir"], &[]);
    assert!(
        header(&r).starts_with(&format!("preempt stats: {cpus} Ps (from the CPU count),")),
        "{}",
        header(&r)
    );
}

/// The `key=value` fields of a line, in order, after `prefix`.
fn fields<'a>(line: &'a str, prefix: &str) -> Vec<(&'a str, &'a str)> {
    line.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"))
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect()
}

fn keys<'a>(f: &[(&'a str, &'a str)]) -> Vec<&'a str> {
    f.iter().map(|(k, _)| *k).collect()
}

#[test]
fn schedtrace_prints_go_style_lines_and_scheddetail_the_ps_ms_and_gs() {
    // spin-preempted.pir runs about a second and a half (a hundred 1 ms
    // sleeps, each behind a 10 ms quantum): a line every 200 ms gives a
    // few, whatever the machine's speed.
    let r = with_env(
        &["run", "examples/spin-preempted.pir"],
        &[("PREEMPTDEBUG", "schedtrace=200")],
    );
    assert_eq!(r.status, Some(0), "{r:?}");
    assert!(r.stdout.contains("main woke 100 times"), "{r:?}");
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("SCHED "))
        .collect();
    assert!(lines.len() >= 2, "{}", r.stderr);
    assert!(lines[0].starts_with("SCHED 0ms: "), "{}", lines[0]);
    for l in &lines {
        let ms = l["SCHED ".len()..].split("ms:").next().unwrap();
        assert!(ms.parse::<u64>().is_ok(), "{l}");
        let f = fields(l.split_once("ms: ").unwrap().1, "");
        // Go's fields, in Go's order (its needspinning has no
        // counterpart here, and is left out).
        assert_eq!(
            keys(&f),
            [
                "gomaxprocs",
                "idleprocs",
                "threads",
                "spinningthreads",
                "idlethreads",
                "runqueue",
                "schedticks"
            ],
            "{l}"
        );
        assert_eq!(f[0].1, "1", "{l}");
        assert!(f[..6].iter().all(|(_, v)| v.parse::<u64>().is_ok()), "{l}");
        // Per-P queue lengths and schedticks, one each: `[ 0 ] schedticks=[ 12 ]`.
        let tail = l.split_once("runqueue=").unwrap().1;
        let mut parts = tail.split(" schedticks=");
        let queues = parts.next().unwrap();
        let ticks = parts.next().unwrap();
        for list in [queues.split_once(' ').unwrap().1, ticks] {
            let inner = list.strip_prefix("[ ").and_then(|s| s.strip_suffix(" ]"));
            let n: Vec<&str> = inner.unwrap_or_else(|| panic!("{l}")).split(' ').collect();
            assert_eq!(n.len(), 1, "{l}");
            assert!(n[0].parse::<u64>().is_ok(), "{l}");
        }
    }

    // Two Ps; @masked, locked to its thread, spins for 100 ms (until @main
    // wakes) while reports come every 20 ms.
    let r = with_env(
        &[
            "run",
            "--quantum",
            "1ms",
            "--hang-threshold",
            "0",
            "tests/programs/trace/masked-then-unmasked.pir",
        ],
        &[("PREEMPTDEBUG", "schedtrace=20,scheddetail=1")],
    );
    assert_eq!(r.status, Some(0), "{r:?}");
    let err = &r.stderr;
    let head: Vec<&str> = err.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(head.len() >= 2, "{err}");
    let f = fields(head[0].split_once("ms: ").unwrap().1, "");
    assert_eq!(
        keys(&f)[6..],
        ["gcwaiting", "stopwait", "sysmonwait"],
        "{}",
        head[0]
    );
    let ps: Vec<&str> = err.lines().filter(|l| l.starts_with("  P")).collect();
    let ms: Vec<&str> = err.lines().filter(|l| l.starts_with("  M")).collect();
    let gs: Vec<&str> = err.lines().filter(|l| l.starts_with("  G")).collect();
    assert_eq!(ps.len(), 2 * head.len(), "two Ps a report: {err}");
    assert!(
        ps[0].starts_with("  P0: ") && ps[1].starts_with("  P1: "),
        "{err}"
    );
    for p in &ps {
        let f = fields(p.split_once(": ").unwrap().1, "");
        assert_eq!(keys(&f), ["status", "schedtick", "m", "runqsize"], "{p}");
        // Go's P status numbers: idle 0, running 1, syscall 2, gcstop 3.
        assert!(["0", "1", "2", "3"].contains(&f[0].1), "{p}");
    }
    assert!(!ms.is_empty(), "{err}");
    for m in &ms {
        let f = fields(m.split_once(": ").unwrap().1, "");
        assert_eq!(
            keys(&f),
            ["p", "curg", "spinning", "blocked", "lockedg"],
            "{m}"
        );
    }
    // @main, and @masked while it spins locked to its M; Go's G status
    // numbers with the wait reason in parentheses.
    assert!(gs.iter().any(|g| g.starts_with("  G1: status=")), "{err}");
    let masked = gs
        .iter()
        .find(|g| g.starts_with("  G2: status=2() m="))
        .unwrap_or_else(|| panic!("G2 never seen running: {err}"));
    let lockedm = masked.split("lockedm=").nth(1).unwrap();
    assert!(lockedm.parse::<u64>().is_ok(), "{masked}");
    assert!(
        ms.iter()
            .any(|m| m.starts_with(&format!("  M{lockedm}: ")) && m.ends_with("lockedg=2")),
        "{err}"
    );
    for g in &gs {
        let status = g.split("status=").nth(1).unwrap();
        let (n, rest) = status.split_once('(').unwrap();
        assert!(["1", "2", "3", "4", "6"].contains(&n), "{g}");
        let rest = rest.split_once(')').unwrap().1;
        let f = fields(rest, "");
        assert_eq!(keys(&f), ["m", "lockedm"], "{g}");
    }
}

#[test]
fn preemptdebug_knows_schedtrace_and_says_what_does_nothing() {
    let r = with_env(
        &["run", "examples/sum.pir"],
        &[("PREEMPTDEBUG", "scheddetail=1,schedtrace=x")],
    );
    assert_eq!(r.status, Some(0), "{r:?}");
    assert!(r.stderr.contains("'schedtrace=x' ignored"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("scheddetail=1 does nothing without schedtrace=MS"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("SCHED"), "{}", r.stderr);
    let r = with_env(&["run", "examples/sum.pir"], &[("PREEMPTDEBUG", "nope=1")]);
    assert!(
        r.stderr
            .contains("(known: asyncpreemptoff=0|1, schedtrace=MS, scheddetail=0|1)"),
        "{}",
        r.stderr
    );
}

/// One `--log-stops` line: its time, its kind (`Stop` or
/// `Stop-the-world`), what it was for, and its `Name: value` fields.
struct StopLine<'a> {
    kind: &'a str,
    what: &'a str,
    fields: Vec<(&'a str, &'a str)>,
    text: &'a str,
}

fn stop_lines(stderr: &str) -> Vec<StopLine<'_>> {
    stderr
        .lines()
        .filter(|l| l.contains("][stops] "))
        .map(|l| {
            let (time, rest) = l.split_once("][stops] ").unwrap();
            let secs = time.strip_prefix('[').and_then(|t| t.strip_suffix('s'));
            assert!(secs.is_some_and(|s| s.parse::<f64>().is_ok()), "{l}");
            let (kind, rest) = rest.split_once(" \"").unwrap();
            let (what, rest) = rest.split_once("\", ").unwrap();
            let fields = rest
                .split(", ")
                .filter_map(|f| f.split_once(": "))
                .collect();
            StopLine {
                kind,
                what,
                fields,
                text: l,
            }
        })
        .collect()
}

fn field<'a>(s: &StopLine<'a>, name: &str) -> &'a str {
    s.fields
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no {name} in {}", s.text))
}

fn ns(v: &str) -> u64 {
    v.strip_suffix(" ns")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{v:?} is not a time in ns"))
}

#[test]
fn log_stops_prints_a_line_per_stop_and_per_stop_of_the_world() {
    let r = with_env(
        &[
            "run",
            "--log-stops",
            "--stats",
            "--procs",
            "2",
            "--preempt",
            "async",
            "tests/programs/concurrent/gc-vs-spinners.pir",
        ],
        &[],
    );
    assert_eq!(r.status, Some(0), "{r:?}");
    let lines = stop_lines(&r.stderr);
    // Forty `gc` calls, two stops of the world each.
    let world: Vec<&StopLine<'_>> = lines
        .iter()
        .filter(|l| l.kind == "Stop-the-world")
        .collect();
    assert_eq!(world.len(), 80, "{}", r.stderr);
    for w in &world {
        assert!(
            ["GC mark start", "GC mark termination"].contains(&w.what),
            "{}",
            w.text
        );
        let parts = ["Own P", "Reaching safepoint", "At safepoint"].map(|k| ns(field(w, k)));
        assert_eq!(
            parts.iter().sum::<u64>(),
            ns(field(w, "Total")),
            "{}",
            w.text
        );
        ns(field(w, "Time since last"));
    }
    // The spinners' stops: who, how, how long, where, signals and declines.
    let stops: Vec<&StopLine<'_>> = lines
        .iter()
        .filter(|l| l.kind == "Stop" && l.text.contains(" on M"))
        .collect();
    assert!(!stops.is_empty(), "{}", r.stderr);
    let mut in_spin = 0;
    for s in &stops {
        assert!(
            ["quantum", "stop-the-world"].contains(&s.what),
            "{}",
            s.text
        );
        assert!(
            s.text.contains(", async on M") || s.text.contains(", coop on M"),
            "{}",
            s.text
        );
        ns(field(s, "Requested->stopped"));
        field(s, "Signals").parse::<u32>().unwrap();
        let declines = field(s, "Declines");
        let n: u32 = declines.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(n > 0, declines.contains('('), "{}", s.text);
        let at = field(s, "At");
        if at.starts_with("@spin+0x") {
            in_spin += 1;
        }
    }
    assert!(in_spin > 0, "no stop in @spin: {}", r.stderr);
    // Each stop of a spinner in the stats is a line (the stats count a
    // goroutine that stopped by itself with a request in effect too: those
    // are the `withdrawn (yield)` and `withdrawn (blocked)` lines).
    let by_itself = lines
        .iter()
        .filter(|l| l.text.contains("withdrawn (yield)") || l.text.contains("withdrawn (blocked)"))
        .count();
    let preemptions = r
        .stderr
        .lines()
        .find(|l| l.starts_with("preemptions "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert_eq!(stops.len() + by_itself, preemptions, "{}", r.stderr);
}
