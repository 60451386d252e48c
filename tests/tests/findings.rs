//! Regression tests, one or more per finding of a red-team pass over the
//! runtime and the command line (programs that hung under load, values
//! that wrapped, output and input without bounds, write errors that were
//! panics). Each says what used to happen.
//!
//! Nothing here is timed: where a run must end, a kill timer of a minute
//! or more only turns a hang into a failure.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Duration;

use preempt_tests::{emulated, repo_root, run_cli, temp_pir, Run};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");
const GENEROUS: Duration = Duration::from_secs(120);

fn cli(args: &[&str]) -> Run {
    run_cli(CLI, args, GENEROUS)
}

/// Runs `program` `runs` times with `args`: the runs that did not print
/// `want` and exit 0, with how they ended.
fn failures(program: &str, args: &[&str], runs: usize, want: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for i in 0..runs {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        a.push(program);
        let r = cli(&a);
        if r.status != Some(0) || r.stdout != want {
            bad.push(format!(
                "run {i}: preempt {}: {:?} {:?}\n{}",
                a.join(" "),
                r.status,
                r.stdout,
                r.stderr
            ));
        }
    }
    bad
}

// ---- lost arming: the stop of the world waited for ever -------------------

#[test]
fn the_collector_stops_two_spinners_of_one_function_under_patch_and_mprotect() {
    // Before the stop request was one word, 7 of 20 runs of this program
    // hung under `patch` and 1 of 20 under `trap --trap-arm mprotect`: a
    // spinner's stop undid the arming of the other's request.
    let runs = if emulated() { 3 } else { 15 };
    let file = "tests/programs/concurrent/gc-vs-spinners.pir";
    let want = "checksum 19900 + 79800 = 99700\n";
    let mut bad = Vec::new();
    for mode in [
        &["--preempt", "patch"][..],
        &["--preempt", "trap", "--trap-arm", "mprotect"],
    ] {
        for opt in ["-O0", "-O1"] {
            let mut args = mode.to_vec();
            args.extend([opt, "--procs", "2", "--timeout", "20"]);
            bad.extend(failures(file, &args, runs, want));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

#[test]
fn two_spinners_of_one_function_let_a_sleeper_run_under_patch() {
    // 13 of 20 runs hung at a 20 us quantum, both spinners "not armed".
    let runs = if emulated() { 3 } else { 15 };
    let bad = failures(
        "tests/programs/concurrent/spinners-and-sleeper.pir",
        &[
            "--preempt",
            "patch",
            "--procs",
            "2",
            "--quantum",
            "20us",
            "--timeout",
            "20",
        ],
        runs,
        "main woke 100 times behind two spinners\n",
    );
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

// ---- a runnable goroutine stranded while a P was idle ---------------------

#[test]
fn a_goroutine_that_yields_as_the_other_p_goes_idle_is_run() {
    // 7 of 200 runs hung under coop (6 of 100 on the interpreter): @main
    // yielded onto the spinner's P as the other P's M gave up, and waited
    // for ever with a P idle.
    let runs = if emulated() { 10 } else { 100 };
    let file = "tests/programs/concurrent/yield-until-spinning.pir";
    let mut bad = failures(
        file,
        &["--preempt", "coop", "--timeout", "20"],
        runs,
        "main woke\n",
    );
    bad.extend(failures(
        file,
        &["--engine", "interp", "--preempt", "coop", "--timeout", "20"],
        runs,
        "main woke\n",
    ));
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

// ---- the interpreter ignored the preemption mode ---------------------------

#[test]
fn the_interpreter_stops_a_call_free_loop_in_every_mode_but_coop() {
    // It accepted --preempt async|poll|trap|patch and never stopped a
    // loop: the spinner of spin-preempted.pir held the only P for ever.
    for mode in ["async", "poll", "trap", "patch"] {
        let r = cli(&[
            "run",
            "--engine",
            "interp",
            "--preempt",
            mode,
            "--quantum",
            "1ms",
            "--timeout",
            "60",
            "examples/spin-preempted.pir",
        ]);
        assert_eq!(r.status, Some(0), "{mode}: {r:?}");
        assert_eq!(
            r.stdout, "main woke 100 times behind a call-free spinner\n",
            "{mode}"
        );
    }
    let r = cli(&[
        "run",
        "--engine",
        "interp",
        "--preempt",
        "coop",
        "--timeout",
        "1",
        "examples/spin-preempted.pir",
    ]);
    assert_eq!(r.status, Some(3), "coop cannot stop it: {r:?}");
}

// ---- time values that wrapped ----------------------------------------------

#[test]
fn huge_sleeps_and_timers_saturate_instead_of_wrapping() {
    // `sleep 9223372036854775807` returned after 0.2 ms, and `after` of it
    // fired after 62 us: anything from 18446744073709552 us up wrapped.
    for us in ["9223372036854775807", "18446744073709552"] {
        let f = temp_pir(
            &format!("sleep-{us}"),
            &format!("func @main() {{\n    sleep {us}\n    print \"woke\"\n    ret\n}}\n"),
        );
        let r = cli(&["run", "--timeout", "1", f.to_str().unwrap()]);
        assert_eq!(r.status, Some(3), "sleep {us}: {r:?}");
        assert_eq!(r.stdout, "", "sleep {us}");
        let f = temp_pir(
            &format!("after-{us}"),
            &format!(
                "func @main() {{\n    %c = after {us}\n    sleep 20000\n    select recv %c -> fired, default -> waiting\nfired:\n    print \"fired\"\n    ret\nwaiting:\n    print \"waiting\"\n    ret\n}}\n"
            ),
        );
        let r = cli(&["run", f.to_str().unwrap()]);
        assert_eq!(
            (r.status, r.stdout.as_str()),
            (Some(0), "waiting\n"),
            "after {us}: {r:?}"
        );
    }
}

// ---- output and input without bounds ---------------------------------------

#[test]
fn the_goroutine_dump_is_capped_and_says_how_many_it_left_out() {
    // A million goroutines made a 38.6 MB report, and the exit 8 s late.
    let f = temp_pir(
        "many-blocked",
        "func @block(%c: chan) {\n    %v = recv %c\n    ret\n}\n\nfunc @main() {\n    %c = chan 0\n    %i = const 0\nagain:\n    spawn @block(%c)\n    %i = add %i, 1\n    %more = lt %i, 500\n    br %more, again, done\ndone:\n    %v = recv %c\n    ret\n}\n",
    );
    let r = cli(&[
        "run",
        "--procs",
        "1",
        "--stack-size",
        "64k",
        f.to_str().unwrap(),
    ]);
    assert_eq!(r.status, Some(1), "{r:?}");
    assert!(
        r.stderr
            .starts_with("fatal error: all goroutines are asleep - deadlock!"),
        "{}",
        r.stderr
    );
    let listed = r.stderr.matches("\ngoroutine ").count();
    assert_eq!(listed, 100, "{}", r.stderr);
    assert!(
        r.stderr.contains("... and 401 more goroutine(s) not shown"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_endless_input_file_is_refused() {
    // /dev/zero as the input was read until memory ran out.
    let r = cli(&["check", "/dev/zero"]);
    assert_eq!(r.status, Some(2), "{r:?}");
    assert!(r.stderr.contains("is larger than 64 MiB"), "{}", r.stderr);
}

/// The command that runs the CLI (through `PREEMPT_EXEC_WRAPPER`, e.g.
/// qemu-user, when there is one), from the checkout.
fn cli_command() -> Command {
    let wrapper = std::env::var("PREEMPT_EXEC_WRAPPER").unwrap_or_default();
    let mut words: Vec<String> = wrapper.split_whitespace().map(str::to_string).collect();
    words.push(CLI.to_string());
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]).current_dir(repo_root());
    cmd
}

/// Runs the CLI with `args` from the checkout, its stdout and stderr
/// going to `stdout` and `stderr`; the exit status, or the signal.
fn run_to(args: &[&str], stdout: Stdio, stderr: Stdio) -> (Option<i32>, Option<i32>) {
    let st = cli_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .expect("run the CLI");
    (st.code(), st.signal())
}

fn dev_full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full"),
    )
}

#[test]
fn write_errors_end_with_the_status_they_would_have_had_never_a_panic() {
    // Every case below exited 101 with "failed printing to stdout", and
    // `run` with its output on /dev/full exited 0, the output silently
    // dropped.
    let hang = temp_pir(
        "hang",
        "set procs = 1\nfunc @spin() {\n    %i = const 0\nloop:\n    %i = add %i, 1\n    jmp loop\n}\nfunc @main() {\n    spawn @spin()\n    sleep 1000\n    ret\n}\n",
    );
    let bad = temp_pir("bad", "func @main() {\n    %x = add %y, 1\n    ret\n}\n");
    let panics = temp_pir("panics", "func @main() {\n    panic \"boom\"\n}\n");
    let (hang, bad, panics) = (
        hang.to_str().unwrap(),
        bad.to_str().unwrap(),
        panics.to_str().unwrap(),
    );
    // stdout lost: 1.
    assert_eq!(
        run_to(&["check", "examples/sum.pir"], dev_full(), Stdio::null()),
        (Some(1), None)
    );
    assert_eq!(
        run_to(&["run", "examples/sum.pir"], dev_full(), Stdio::null()),
        (Some(1), None)
    );
    // stderr lost: the status still says what happened.
    assert_eq!(
        run_to(&["check", bad], Stdio::null(), dev_full()),
        (Some(2), None)
    );
    assert_eq!(
        run_to(&["run", panics], Stdio::null(), dev_full()),
        (Some(1), None)
    );
    assert_eq!(
        run_to(
            &["run", "--preempt", "coop", "--timeout", "1", hang],
            Stdio::null(),
            dev_full()
        ),
        (Some(3), None)
    );
}

#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    // `disasm | head -1` exited 101 with a panic message. The listing here
    // is far larger than a pipe's buffer, so the reader closes the pipe
    // while it is written.
    let mut text = String::from("func @main() {\n    %r0 = const 0\n");
    for i in 1..5_000 {
        text.push_str(&format!("    %r{i} = add %r{}, 1\n", i - 1));
    }
    text.push_str("    print \"{}\", %r4999\n    ret\n}\n");
    let f = temp_pir("long-listing", &text);
    let mut child = cli_command()
        .args(["disasm", f.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the CLI");
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .as_mut()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let st = child.wait().unwrap();
    assert_eq!(err, "", "quietly");
    assert_eq!(
        st.signal(),
        Some(libc::SIGPIPE),
        "as a closed pipe ends a C program: {st:?}"
    );
}

// ---- an allocation failure aborted ------------------------------------------

#[test]
fn running_out_of_memory_is_a_fatal_error_not_an_abort() {
    // Under an address-space limit, an allocation that failed ended in
    // SIGABRT ("memory allocation of N bytes failed").
    if emulated() {
        // qemu-user maps its own translator into the address space.
        return;
    }
    // 20 MB of source: reading, parsing and verifying it take far more
    // than the 64 MiB of address space allowed beyond the executable's.
    let mut text = String::from("func @main() {\n    %r0 = const 0\n");
    for i in 1..400_000 {
        text.push_str(&format!("    %r{i} = add %r{}, 1\n", i - 1));
    }
    text.push_str("    ret\n}\n");
    let f = temp_pir("oom", &text);
    let mut cmd = Command::new(CLI);
    cmd.args(["check", f.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only setrlimit, which is async-signal-safe, runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 96 << 20,
                rlim_max: 96 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let out = cmd.output().expect("run the CLI");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{:?}: {err}", out.status);
    assert_eq!(err, "fatal error: out of memory\n");
}

// ---- compilation outside the watchdog ------------------------------------------

#[test]
fn the_watchdog_covers_reading_and_compiling_the_program() {
    // 10,000 nested loops took 69 s to compile under `run --timeout 2`,
    // which exited 0 after them: the watchdog started with the program.
    let mut text = String::from("func @main() {\n    %r0 = const 0\n");
    for i in 1..60_000 {
        text.push_str(&format!("b{i}:\n    %r{i} = add %r{}, 1\n", i - 1));
    }
    text.push_str("    print \"{}\", %r59999\n    ret\n}\n");
    let f = temp_pir("slow-to-start", &text);
    let r = cli(&["run", "--timeout", "0.001", f.to_str().unwrap()]);
    assert_eq!(r.status, Some(3), "{r:?}");
    assert!(
        r.stderr
            .contains("did not finish within 0.001s (--timeout): the program never started"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
}
