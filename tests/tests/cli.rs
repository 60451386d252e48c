//! The command line end to end: exit statuses, messages, the watchdog.

use std::time::Duration;

use preempt_tests::{run_cli, temp_pir, Run};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");
/// Kill timer for runs expected to take well under a second.
const GENEROUS: Duration = Duration::from_secs(60);

fn cli(args: &[&str]) -> Run {
    run_cli(CLI, args, GENEROUS)
}

#[test]
fn sum_runs_on_the_jit() {
    let r = cli(&["run", "examples/sum.pir"]);
    assert_eq!(r.status, Some(0), "{r:?}");
    assert_eq!(r.stdout, "sum: 4999999950000000\n");
}

#[test]
fn runtime_errors_exit_1_with_a_go_style_traceback() {
    let f = temp_pir(
        "oob",
        "func @get(%o: ref, %i: i64) -> i64 {\n    %v = get %o, %i\n    ret %v\n}\n\nfunc @main() {\n    %o = new 3\n    %v = call @get(%o, 7)\n    ret\n}\n",
    );
    let r = cli(&["run", f.to_str().unwrap()]);
    assert_eq!(r.status, Some(1), "{r:?}");
    let file = f.display().to_string();
    assert_eq!(
        r.stderr,
        format!(
            "panic: runtime error: index out of range [7] with length 3\n\ngoroutine 1 [running]:\n@get in block entry\n\t{file}:2:5\n@main in block entry\n\t{file}:8:5\n"
        )
    );
}

#[test]
fn bad_files_exit_2_with_file_line_col() {
    let f = temp_pir("bad", "func @main() {\n    %x = add %y, 1\n    ret\n}\n");
    let r = cli(&["check", f.to_str().unwrap()]);
    assert_eq!(r.status, Some(2), "{r:?}");
    let first = r.stderr.lines().next().unwrap_or("");
    assert!(first.starts_with(&format!("{}:2:", f.display())), "{first}");
    assert!(r.stderr.contains('^'), "caret line: {}", r.stderr);
    let r = cli(&["run", "/nonexistent/file.pir"]);
    assert_eq!(r.status, Some(2));
    assert!(r.stderr.contains("cannot read"), "{}", r.stderr);
    let r = cli(&["run"]);
    assert_eq!(r.status, Some(2), "usage error: {r:?}");
}

#[test]
fn stack_overflow_is_a_fatal_error_not_a_crash() {
    let f = temp_pir(
        "overflow",
        "func @down(%n: i64) -> i64 {\n    %m = add %n, 1\n    %r = call @down(%m)\n    ret %r\n}\nfunc @main() {\n    %r = call @down(0)\n    ret\n}\n",
    );
    let r = cli(&["run", "--stack-size", "1m", f.to_str().unwrap()]);
    assert_eq!(r.status, Some(1), "{r:?}");
    assert!(
        r.stderr.starts_with("fatal error: stack overflow\n"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("frames elided"), "{}", r.stderr);
}

#[test]
fn watchdog_ends_a_hung_program_with_exit_3_and_says_where() {
    let f = temp_pir(
        "hang",
        "func @main() {\n    %i = const 0\nspin:\n    %i = add %i, 1\n    jmp spin\n}\n",
    );
    let r = run_cli(
        CLI,
        &["run", "--timeout", "0.5", f.to_str().unwrap()],
        GENEROUS,
    );
    assert_eq!(r.status, Some(3), "{r:?}");
    assert!(
        r.stderr.contains("did not finish within 0.500s"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("@main in block spin"), "{}", r.stderr);
}

#[test]
fn disasm_shows_the_hoisted_load_before_the_loop_only_at_o1() {
    for arch in ["x86_64", "aarch64"] {
        hoisted_load_listing(arch);
    }
}

fn hoisted_load_listing(arch: &str) {
    let o0 = cli(&["disasm", "-O0", "--arch", arch, "examples/hoist.pir"]);
    let o1 = cli(&["disasm", "-O1", "--arch", arch, "examples/hoist.pir"]);
    assert!(
        o0.stdout.starts_with(&format!("; {arch} code")),
        "{}",
        o0.stdout
    );
    assert_eq!((o0.status, o1.status), (Some(0), Some(0)));
    let spinner = |s: &str| -> Vec<String> {
        s.lines()
            .skip_while(|l| !l.starts_with("@spinner"))
            .take_while(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (spinner(&o0.stdout), spinner(&o1.stdout));
    let pos = |lines: &[String], pat: &str| lines.iter().position(|l| l.contains(pat));
    // -O0: the load is after the loop label and before the back-edge.
    let (h0, l0, e0) = (
        pos(&a, "  loop:"),
        pos(&a, "= load @done"),
        pos(&a, "BACK-EDGE"),
    );
    assert!(h0 < l0 && l0 < e0, "{a:#?}");
    assert!(pos(&a, "HOISTED").is_none());
    // -O1: the load is hoisted above the loop label.
    let (l1, h1) = (pos(&b, "HOISTED"), pos(&b, "  loop:"));
    assert!(l1.is_some() && l1 < h1, "{b:#?}");
    assert!(
        pos(&b, "= load @done").is_some_and(|p| p < h1.unwrap()),
        "{b:#?}"
    );
}

#[test]
fn trace_is_chrome_trace_json_with_a_track_per_m_and_per_p() {
    let out = std::env::temp_dir().join(format!("preempt-trace-{}.json", std::process::id()));
    let r = cli(&[
        "run",
        "--procs",
        "2",
        "--trace",
        out.to_str().unwrap(),
        "tests/programs/concurrent/many-goroutines.pir",
    ]);
    assert_eq!(r.status, Some(0), "{r:?}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).expect("valid JSON");
    let events = json["traceEvents"].as_array().expect("traceEvents");
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("M0")), "{names:?}");
    // A track for each P that ran something: which of the two Ps the
    // goroutines ran on is up to the scheduler (P0 had none in about one
    // run of eight), so only "some P, and no other" is certain.
    assert!(names.iter().any(|n| n.starts_with('P')), "{names:?}");
    assert!(
        names
            .iter()
            .filter(|n| n.starts_with('P'))
            .all(|n| *n == "P0" || *n == "P1"),
        "{names:?}"
    );
    let runs: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert!(runs.len() > 1000, "goroutine run spans: {}", runs.len());
    for e in &runs {
        for field in ["name", "ts", "dur", "pid", "tid"] {
            assert!(!e[field].is_null(), "{field} missing in {e}");
        }
        assert!(e["dur"].as_f64().unwrap() >= 0.0);
    }
    let _ = std::fs::remove_file(out);
}

#[test]
fn the_watchdog_ends_a_program_whose_output_is_not_read() {
    // A program that spins a while (stopped by the preemption signal every
    // 1 ms quantum) and then prints for ever into a pipe nobody reads: once
    // the pipe is full its write blocks, holding the output. The watchdog
    // must still end it (exit 3) and say where it is: its flushes of the
    // output used to wait for that write, and the program ran on until the
    // reader went away. Every sample of the thread then lands in the
    // runtime, so the report falls back on where the signal last stopped
    // the goroutine: in its spinning loop. The kill timer (a minute) only
    // keeps a broken build from hanging the suite; the run ends about a
    // second after the timeout.
    let f = temp_pir(
        "unread-output",
        "func @main() {\n    %i = const 0\nspin:\n    %i = add %i, 1\n    %more = lt %i, 50000000\n    br %more, spin, print\nprint:\n    print \"line {} of a program whose reader stopped reading\", %i\n    %i = add %i, 1\n    jmp print\n}\n",
    );
    let mut cmd = preempt_tests::cli_command(
        CLI,
        &[
            "run",
            "--preempt",
            "async",
            "--quantum",
            "1ms",
            "--timeout",
            "2",
            f.to_str().unwrap(),
        ],
    );
    let mut child = cmd.spawn().expect("spawn the CLI");
    // Held open, never read.
    let _unread = child.stdout.take();
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code();
        }
        if start.elapsed() > GENEROUS {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = reader.join().unwrap_or_default();
    assert_eq!(status, Some(3), "{stderr}");
    assert!(
        stderr.contains("preempt: watchdog: the program did not finish within 2s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("in its runtime call for `print`, writing the program's output"),
        "{stderr}"
    );
    assert!(
        stderr.contains("last stopped by the preemption signal at @main in block spin"),
        "{stderr}"
    );
}
