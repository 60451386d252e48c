//! Goroutine stacks that start small and grow by copying, end to end
//! through the CLI: deep recursion through many copies under every
//! preemption mechanism at one and two Ps, with collections scanning the
//! grown stacks (`--gc-verify` reports any object they failed to keep),
//! goroutines that park on a grown stack and are woken, and the limit of
//! `--stack-size`.
//!
//! Runs go through a subprocess (and `PREEMPT_EXEC_WRAPPER`, e.g. qemu).

use std::time::Duration;

use preempt_tests::{repo_root, run_cli, temp_pir};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");

/// Only keeps a broken build from hanging the suite: the runs take well
/// under a second natively, a few seconds under qemu.
const KILL_AFTER: Duration = Duration::from_secs(300);

#[test]
fn deep_recursion_grows_and_keeps_its_objects_under_every_mechanism() {
    let program = repo_root().join("tests/programs/concurrent/stack-growth.pir");
    let program = program.to_str().expect("a UTF-8 path");
    let mut failures = Vec::new();
    for mode in ["async", "coop", "poll", "trap", "patch"] {
        for procs in ["1", "2"] {
            // A stop request every 20 us lands in the middle of the
            // recursions and of the copies' runtime calls.
            let args = [
                "run",
                "--preempt",
                mode,
                "--procs",
                procs,
                "--quantum",
                "20us",
                "--gc-verify",
                // The watchdog's default 10 s is too short under qemu with
                // every instruction stepped; it only bounds a hang here.
                "--timeout",
                "120",
                program,
            ];
            let r = run_cli(CLI, &args, KILL_AFTER);
            if r.status != Some(0) || r.stdout != "sum 1800090000\n" {
                failures.push(format!("{args:?}: {r:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A goroutine (not main) recursing `depth` deep, each frame holding an
/// object; main waits for its sum.
fn recursion_in_a_goroutine(depth: u32) -> String {
    format!(
        "func @down(%n: i64) -> i64 {{\n    %z = eq %n, 0\n    br %z, bottom, rec\nbottom:\n    ret 0\nrec:\n    %o = new 1\n    set %o, 0, %n\n    %m = sub %n, 1\n    %r = call @down(%m)\n    %v = get %o, 0\n    %s = add %r, %v\n    ret %s\n}}\nfunc @g(%c: chan) {{\n    %r = call @down({depth})\n    send %c, %r\n    ret\n}}\nfunc @main() {{\n    %c = chan 0\n    spawn @g(%c)\n    %r = recv %c\n    print \"{{}}\", %r\n    ret\n}}\n"
    )
}

#[test]
fn the_stack_grows_up_to_the_limit_and_overflows_past_it() {
    // About 48 bytes a frame: 3,000 frames fit in 1 MiB, not in 64 KiB.
    let f = temp_pir("stack-limit", &recursion_in_a_goroutine(3000));
    let f = f.to_str().expect("a UTF-8 path");
    let fits = run_cli(CLI, &["run", "--stack-size", "1m", f], KILL_AFTER);
    assert_eq!(fits.status, Some(0), "{fits:?}");
    assert_eq!(fits.stdout, "4501500\n");
    let over = run_cli(CLI, &["run", "--stack-size", "64k", f], KILL_AFTER);
    assert_eq!(over.status, Some(1), "{over:?}");
    assert!(
        over.stderr.starts_with("fatal error: stack overflow\n"),
        "{}",
        over.stderr
    );
    assert!(
        over.stderr.contains("@down in block rec"),
        "{}",
        over.stderr
    );
}

#[test]
fn unbounded_recursion_is_a_fatal_overflow_at_every_limit() {
    let f = temp_pir("stack-unbounded", &recursion_in_a_goroutine(u32::MAX));
    let f = f.to_str().expect("a UTF-8 path");
    for limit in ["64k", "100k", "8m"] {
        let r = run_cli(CLI, &["run", "--stack-size", limit, f], KILL_AFTER);
        assert_eq!(r.status, Some(1), "--stack-size {limit}: {r:?}");
        assert!(
            r.stderr.starts_with("fatal error: stack overflow\n"),
            "--stack-size {limit}: {}",
            r.stderr
        );
    }
}
