//! `preempt stress` end to end, through the CLI.
//!
//! Where the host can single-step (x86-64), each example under
//! `examples/stress/` is preempted at every one of its instruction
//! boundaries, at -O0 and -O1, with no mismatch; the counts in the summary
//! must add up (every boundary tried is either redirected or unsafe) and
//! show real redirects. A negative control proves the harness can fail: a
//! redirect that loses the condition flags (`--inject-fault flags`) must
//! be reported at the boundaries between a compare and its consumer.
//!
//! On aarch64 (under qemu-user in the aarch64 lane) `--every-instruction`
//! runs the signal storm, on longer runs of the same programs. qemu
//! delivers signals only between translated blocks unless
//! `QEMU_SINGLESTEP=1`; the negative control needs a signal between a
//! compare and its branch, so there it runs only with it (the lane runs
//! this file a second time with it set).

use std::time::Duration;

use preempt_jit::ir::PreemptMode;
use preempt_runtime::preempt::trap::TrapArm;
use preempt_signals::context::SINGLE_STEP;
use preempt_tests::{emulated, figure, mode_args, run_cli, temp_pir, Run, MODES};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");
/// Only a kill timer: the slowest case takes well under a minute.
const KILL_AFTER: Duration = Duration::from_secs(900);

fn cli(args: &[&str]) -> Run {
    run_cli(CLI, args, KILL_AFTER)
}

fn qemu_singlestep() -> bool {
    std::env::var("QEMU_SINGLESTEP").is_ok_and(|v| v != "0")
}

/// `--global rounds=N` for a storm run, long enough for a few hundred
/// signals under qemu-user: `rounds`, or `singlestep` with
/// `QEMU_SINGLESTEP` (every instruction a translated block of its own,
/// the runtime's code included, runs many times slower).
fn storm_rounds(rounds: u64, singlestep: u64) -> String {
    let n = if qemu_singlestep() {
        singlestep
    } else {
        rounds
    };
    format!("rounds={n}")
}

/// Stresses `examples/stress/NAME.pir` at -O0 and -O1 with no mismatch.
/// Stepping: the whole program, `rounds` rounds of it. Storm: a few runs
/// of `storm` rounds each (see [`storm_rounds`]).
fn clean(name: &str, rounds: u64, storm: (u64, u64)) {
    clean_with(name, rounds, storm, &[]);
}

/// `preempt stress FILE OPT --every-instruction` and `extra`: stepping,
/// the first `limit` boundaries of `rounds` rounds of the program; storm,
/// a few runs of `storm` rounds each (see [`storm_rounds`]).
fn every_instruction(
    file: &str,
    opt: &str,
    rounds: u64,
    storm: (u64, u64),
    limit: &str,
    extra: &[&str],
) -> Run {
    let globals = if SINGLE_STEP {
        format!("rounds={rounds}")
    } else {
        storm_rounds(storm.0, storm.1)
    };
    let runs = if emulated() { "3" } else { "10" };
    let mut args = vec!["stress", file, opt, "--every-instruction"];
    if SINGLE_STEP {
        args.extend(["--limit", limit]);
    } else {
        args.extend(["--runs", runs, "--timeout", "300"]);
    }
    args.extend(["--global", &globals]);
    args.extend_from_slice(extra);
    cli(&args)
}

/// [`clean`] with more `preempt stress` arguments.
fn clean_with(name: &str, rounds: u64, storm: (u64, u64), extra: &[&str]) {
    let file = format!("examples/stress/{name}.pir");
    for opt in ["-O0", "-O1"] {
        let r = every_instruction(&file, opt, rounds, storm, "800", extra);
        let out = &r.stdout;
        assert_eq!(r.status, Some(0), "{file} {opt}: {r:?}");
        assert_eq!(figure(out, "mismatches:"), 0, "{out}");
        let mode = out.lines().nth(1).unwrap_or("");
        if SINGLE_STEP {
            assert!(mode.contains("single-stepped"), "{out}");
            let tried = figure(out, "boundaries tried:");
            let executed = figure(out, "JIT instruction boundaries executed:");
            let redirected = figure(out, "redirected:");
            let unsafe_ = figure(out, "unsafe:");
            assert!(
                !out.contains("or more"),
                "{file}: the whole program is covered: {out}"
            );
            assert_eq!(tried, executed, "{out}");
            assert!(tried > 300, "{out}");
            assert_eq!(redirected + unsafe_, tried, "{out}");
            assert!(redirected * 3 > tried, "a third at least redirected: {out}");
            assert_eq!(figure(out, "diverged:"), 0, "{out}");
        } else {
            assert!(mode.contains("signal storm"), "{out}");
            assert!(figure(out, "signals sent:") > 0, "{out}");
        }
        println!("{file} {opt}:\n{out}");
    }
}

/// [`clean`] under a mode other than `async`: the harness's stops go
/// through the mode's own mechanism (`(m, arm)`, given to the CLI as
/// `--preempt` and `--trap-arm`). Stepping: every boundary of the whole program
/// armed once, each run's output the reference's, and each arm accounted
/// for (stopped at a back-edge, by itself, or the run ended first); under
/// `poll`, `trap` and `patch` at least `yields` of them at a back-edge
/// (under `coop`, none: it has no mechanism there). Storm: arms made and
/// stops seen (at back-edges or by themselves).
fn clean_under(
    name: &str,
    rounds: u64,
    storm: (u64, u64),
    (m, arm): (PreemptMode, TrapArm),
    yields: f64,
) {
    let file = format!("examples/stress/{name}.pir");
    let coop = m == PreemptMode::Coop;
    let args = mode_args(m, arm);
    let mode: Vec<&str> = args.iter().map(String::as_str).collect();
    let mode = mode.as_slice();
    for opt in ["-O0", "-O1"] {
        let r = every_instruction(&file, opt, rounds, storm, "2500", mode);
        let out = &r.stdout;
        let what = format!("{file} {opt} {mode:?}");
        assert_eq!(r.status, Some(0), "{what}: {r:?}");
        assert_eq!(figure(out, "mismatches:"), 0, "{what}: {out}");
        assert!(!out.contains("ARM TIMEOUTS"), "{what}: {out}");
        if SINGLE_STEP {
            let tried = figure(out, "boundaries tried:");
            let armed = figure(out, "armed:");
            let (yielded, itself, never) = (
                figure(out, "at a back-edge:"),
                figure(out, "by itself:"),
                figure(out, "never:"),
            );
            assert!(!out.contains("or more"), "{what}: the whole program: {out}");
            assert_eq!(tried, figure(out, "JIT instruction boundaries executed:"));
            assert!(tried > 300, "{what}: {out}");
            assert_eq!(armed, tried, "{what}: every boundary armed: {out}");
            assert_eq!(yielded + itself + never, armed, "{what}: {out}");
            assert_eq!(figure(out, "diverged:"), 0, "{what}: {out}");
            if coop {
                assert_eq!(yielded, 0, "{what}: coop has no yield path: {out}");
                assert!(itself > 0, "{what}: {out}");
            } else {
                assert!(
                    yielded as f64 >= yields * armed as f64,
                    "{what}: {yields} of the arms at least stop at a back-edge: {out}"
                );
            }
        } else if !coop {
            // Every arm counts; where the stops came is up to timing (a
            // short run under QEMU_SINGLESTEP may see a handful of arms,
            // all honoured at function entries).
            assert!(figure(out, "arms:") > 0, "{what}: {out}");
            let stops = figure(out, "at back-edges:") + figure(out, "stopped by themselves:");
            assert!(stops > 0, "{what}: {out}");
        }
        println!("{what}:\n{out}");
    }
}

/// The modes other than `async` (whose runs are `clean`'s), with each
/// arming.
fn mechanisms() -> impl Iterator<Item = (PreemptMode, TrapArm)> {
    MODES.into_iter().filter(|&(m, _)| m != PreemptMode::Async)
}

#[test]
fn every_mechanism_stops_a_loop_armed_at_any_boundary() {
    // The request made at boundary k through the mode's own mechanism (the
    // poll word, the poll page, the function's back-edges patched from the
    // armer thread, never from the handler): in this loop-heavy program
    // most arms are honoured at the next back-edge (two thirds at -O0,
    // where more of the program is calls and prologues; nearly all at -O1).
    for mode in mechanisms() {
        clean_under("live-values", 1, (1_000_000, 100_000), mode, 0.5);
    }
}

#[test]
fn every_mechanism_stops_calls_armed_at_any_boundary() {
    // Arms that land in a callee, a prologue or an epilogue: `patch` must
    // move its patch to the function the goroutine returns to (the
    // harness follows it as the monitor does); most arms here are
    // honoured by the next function entry instead.
    for mode in mechanisms() {
        clean_under("calls", 1, (200_000, 20_000), mode, 0.1);
    }
}

#[test]
fn every_mechanism_keeps_atomics_channels_and_heap_objects() {
    // The other examples under every mode: stopped at a back-edge between
    // an atomic's load and its retry, around channel hand-offs and
    // selects, between a heap store and its barrier; the same output.
    for mode in mechanisms() {
        clean_under("atomics", 5, (1_000_000, 100_000), mode, 0.3);
        clean_under("channels", 5, (5_000, 200), mode, 0.1);
        clean_under("heap", 1, (10_000, 500), mode, 0.1);
    }
}

#[test]
fn live_values_are_kept_at_every_boundary() {
    clean("live-values", 1, (1_000_000, 100_000));
}

#[test]
fn calls_prologues_and_epilogues() {
    clean("calls", 1, (200_000, 20_000));
}

#[test]
fn atomics_are_not_done_twice() {
    clean("atomics", 5, (1_000_000, 100_000));
}

#[test]
fn channel_operations() {
    clean("channels", 5, (5_000, 200));
}

#[test]
fn heap_objects_and_ref_stores() {
    clean("heap", 1, (10_000, 500));
}

#[test]
fn the_storm_runs_on_request_where_stepping_is_the_default() {
    let r = cli(&[
        "stress",
        "examples/stress/live-values.pir",
        "--storm",
        "--runs",
        "3",
        "--timeout",
        "300",
        "--global",
        &storm_rounds(1_000_000, 100_000),
    ]);
    assert_eq!(r.status, Some(0), "{r:?}");
    let out = &r.stdout;
    assert!(out.lines().nth(1).unwrap_or("").contains("signal storm"));
    assert_eq!(figure(out, "mismatches:"), 0, "{out}");
    assert!(figure(out, "signals sent:") > 0, "{out}");
    assert!(figure(out, "redirected:") > 0, "{out}");
}

/// The negative control runs where a preemption can land between a
/// compare and its branch: stepping, real hardware, or qemu with one
/// instruction per translated block.
fn fine_grained() -> bool {
    if SINGLE_STEP || !emulated() || qemu_singlestep() {
        return true;
    }
    println!(
        "skipped: under qemu-user without QEMU_SINGLESTEP, signals land only between \
         translated blocks, never between a compare and its branch"
    );
    false
}

#[test]
fn an_early_request_breaks_nothing() {
    if !SINGLE_STEP {
        println!("skipped: --request-lead is a stepping option");
        return;
    }
    // The request made some boundaries before the handler's decision, as
    // the monitor's request precedes its signal: the instructions in
    // between run with the guard poisoned (a prologue's check then calls
    // the runtime), and a function entry or a runtime call may honour the
    // request before the boundary.
    for lead in ["1", "3"] {
        let r = cli(&[
            "stress",
            "examples/stress/calls.pir",
            "--request-lead",
            lead,
            "--limit",
            "600",
            "--global",
            "rounds=1",
        ]);
        assert_eq!(r.status, Some(0), "{r:?}");
        let out = &r.stdout;
        assert_eq!(figure(out, "mismatches:"), 0, "{out}");
        let tried = figure(out, "boundaries tried:");
        let redirected = figure(out, "redirected:");
        let unsafe_ = figure(out, "unsafe:");
        let before = figure(out, "stopped before the boundary:");
        assert_eq!(redirected + unsafe_ + before, tried, "{out}");
        assert!(redirected > 0 && before > 0, "{out}");
    }
}

#[test]
fn losing_the_flags_at_a_redirect_is_found() {
    if !fine_grained() {
        return;
    }
    let rounds = if SINGLE_STEP {
        "rounds=1".to_string()
    } else {
        storm_rounds(1_000_000, 100_000)
    };
    let r = cli(&[
        "stress",
        "examples/stress/live-values.pir",
        "--inject-fault",
        "flags",
        "--limit",
        "400",
        "--runs",
        "30",
        "--max-mismatches",
        if SINGLE_STEP { "100" } else { "1" },
        "--timeout",
        "300",
        "--global",
        &rounds,
    ]);
    assert_eq!(r.status, Some(1), "{r:?}");
    let out = &r.stdout;
    assert!(out
        .lines()
        .next()
        .unwrap_or("")
        .contains("FAULT INJECTED: flags"));
    assert!(figure(out, "mismatches:") > 0, "{out}");
    if SINGLE_STEP {
        // Each one is at an instruction that reads the flags.
        for block in out.split("MISMATCH at boundary").skip(1) {
            let at = block.lines().nth(1).unwrap_or("");
            assert!(
                [": set", ": j", ": cmov"].iter().any(|m| at.contains(m)),
                "{at}"
            );
        }
    }
}

#[test]
fn bad_input_exits_2_and_names_the_place() {
    let f = temp_pir(
        "stress-bad",
        "func @main() {\n    %x = add %y, 1\n    ret\n}\n",
    );
    let r = cli(&["stress", f.to_str().unwrap()]);
    assert_eq!(r.status, Some(2), "{r:?}");
    assert!(
        r.stderr.contains(&format!("{}:2:", f.display())),
        "{}",
        r.stderr
    );
    let r = cli(&[
        "stress",
        "examples/stress/calls.pir",
        "--global",
        "nosuch=1",
    ]);
    assert_eq!(r.status, Some(2), "{r:?}");
    assert!(r.stderr.contains("no global @nosuch"), "{}", r.stderr);
    // A program that does not end cannot be compared.
    let hang = temp_pir(
        "stress-hang",
        "global @g: i64\nfunc @main() {\nloop:\n    %v = load @g\n    br %v, out, loop\nout:\n    ret\n}\n",
    );
    let r = cli(&["stress", hang.to_str().unwrap(), "--timeout", "1"]);
    assert_eq!(r.status, Some(2), "{r:?}");
    assert!(r.stderr.contains("did not finish in time"), "{}", r.stderr);
    for bad in [
        &["--limit", "0"][..],
        &["--global", "rounds"],
        &["--every-instruction", "--storm"],
    ] {
        let mut args = vec!["stress", "examples/stress/calls.pir"];
        args.extend(bad);
        let r = cli(&args);
        assert_eq!(r.status, Some(2), "{bad:?}: {r:?}");
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}
