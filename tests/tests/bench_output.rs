//! What `preempt bench` prints for people: no hang diagnosis between the
//! figures, no progress escapes when stderr is not a terminal, `--quick`
//! marked, peers that did not run said so, goals named by what they are.
//! No figure is compared with anything here.

use std::process::Command;
use std::time::Duration;

use preempt_bench::kernels::{self, Engine};
use preempt_tests::run_cli;

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");

/// Set in the child of [`kernel_runs_print_no_hang_diagnosis`].
const CHILD: &str = "PREEMPT_TEST_LONG_KERNEL";

/// A kernel run as the kernels suite runs it (`coop`, a 10 ms quantum, no
/// call in the loop), long enough that the runtime's hang report (100 ms
/// after a request, by default) would fire: it prints to the process's
/// stderr, so the run happens in a child (this test binary again) whose
/// stderr is read whole.
#[test]
fn kernel_runs_print_no_hang_diagnosis() {
    if std::env::var_os(CHILD).is_some() {
        let k = kernels::all()
            .into_iter()
            .find(|k| k.name == "sum")
            .expect("a sum kernel");
        let mut n = k.start;
        loop {
            let (_, ns) = kernels::run_once(&k, Engine::Jit, n);
            if ns >= 400e6 {
                println!("ran {:.0} ms", ns / 1e6);
                return;
            }
            n = (k.grow)(n);
        }
    }
    // Under emulation, through the emulator (PREEMPT_EXEC_WRAPPER).
    let wrapper = std::env::var("PREEMPT_EXEC_WRAPPER").unwrap_or_default();
    let mut words: Vec<std::ffi::OsString> = wrapper.split_whitespace().map(Into::into).collect();
    words.push(std::env::current_exe().expect("the test binary").into());
    let out = Command::new(&words[0])
        .args(&words[1..])
        .args([
            "--exact",
            "kernel_runs_print_no_hang_diagnosis",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the test binary");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("ran "), "the long kernel ran: {stdout}");
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains("has not stopped") && !text.contains("preemption request"),
            "a hang diagnosis in a benchmark's output:\n{text}"
        );
    }
}

/// The quick kernels suite through the CLI, stderr a pipe: the table, no
/// diagnosis, no terminal escape (progress is for terminals only).
#[test]
fn a_quick_kernels_run_prints_figures_only() {
    let r = run_cli(
        CLI,
        &["bench", "--quick", "kernels"],
        Duration::from_secs(300),
    );
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("fib"), "{}", r.stdout);
    for text in [&r.stdout, &r.stderr] {
        assert!(!text.contains("has not stopped"), "{text}");
        assert!(!text.contains('\x1b'), "a terminal escape in {text:?}");
    }
}

/// Runs `preempt bench --quick --no-go SUITE`; its stdout.
fn quick_no_go(suite: &str) -> String {
    let r = run_cli(
        CLI,
        &["bench", "--quick", "--no-go", suite],
        Duration::from_secs(300),
    );
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    for text in [&r.stdout, &r.stderr] {
        assert!(!text.contains("has not stopped"), "{text}");
        assert!(!text.contains('\x1b'), "a terminal escape in {text:?}");
    }
    r.stdout
}

/// With `--no-go`, every Go figure says "not measured", no goal made of a
/// Go figure is met or missed, no ratio is printed against nothing, and a
/// note says why; every title carries the `--quick` mark.
#[test]
fn peers_not_run_are_not_measured_and_quick_runs_are_marked() {
    for suite in ["runtime", "preempt"] {
        let out = quick_no_go(suite);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[1].starts_with(preempt_bench::doc::QUICK_MARK),
            "the header says --quick: {out}"
        );
        let title = lines
            .iter()
            .skip_while(|l| !l.starts_with("$ preempt bench"))
            .nth(1)
            .expect("a title under the command");
        assert!(
            title.ends_with(preempt_bench::doc::QUICK_MARK),
            "{suite}: {title}"
        );
        assert!(
            out.contains("note: Go: not measured: --no-go"),
            "{suite}: {out}"
        );
        let head = lines
            .iter()
            .position(|l| l.starts_with("benchmark "))
            .expect("a table");
        let rows: Vec<&str> = lines[head + 1..]
            .iter()
            .take_while(|l| !l.starts_with("note:"))
            .copied()
            .collect();
        assert!(rows.len() > 5, "{out}");
        let mut not_measured = 0;
        for row in &rows {
            // benchmark, unit, preempt, Go, preempt/Go, goal: columns
            // two blanks apart.
            let cols: Vec<&str> = row
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            assert!(cols.len() >= 5, "{suite}: {row}");
            // Go's column is "not measured", or "n/a" (no such figure).
            assert!(
                cols[3] == "not measured" || cols[3] == "n/a",
                "{suite}: {row}"
            );
            not_measured += usize::from(cols[3] == "not measured");
            // No ratio against nothing.
            assert_eq!(cols[4], "-", "{suite}: {row}");
            // A goal made of Go's figure is neither met nor missed.
            if let Some(goal) = cols.get(5).filter(|g| g.contains("Go")) {
                assert!(goal.ends_with(": not measured"), "{suite}: {row}");
            }
        }
        assert!(not_measured > 0, "{out}");
    }
}

/// Goals and figures are named by what they are: no string that the
/// bench code or the CLI prints mentions an issue (a string literal in
/// their sources, outside comments), and a quick run's output has none.
#[test]
fn no_output_string_mentions_an_issue() {
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir)
            .expect("read a source folder")
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = preempt_tests::repo_root();
    let mut files = Vec::new();
    sources(&root.join("bench/src"), &mut files);
    sources(&root.join("src"), &mut files);
    assert!(files.len() > 20, "{files:?}");
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read a source");
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            // The text between quotes: the literals of this line.
            let literals = code.split('"').skip(1).step_by(2);
            if literals
                .into_iter()
                .any(|s| s.to_ascii_lowercase().contains("issue"))
            {
                found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "strings that mention an issue:\n{}",
        found.join("\n")
    );
    let out = quick_no_go("runtime");
    assert!(!out.to_ascii_lowercase().contains("issue"), "{out}");
}

/// What `preempt ARGS` writes to a pseudo-terminal (`script`), checked to
/// have ended well.
fn on_a_terminal(args: &str) -> String {
    let out = Command::new("/usr/bin/script")
        .args(["-qec", &format!("{CLI} {args}"), "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    text
}

/// On a terminal, each bench suite, and `preempt stress`, shows a spinner
/// naming its step on stderr (`script` gives the run a pseudo-terminal;
/// without it, the test says so and checks nothing more).
#[test]
fn progress_shows_on_a_terminal() {
    if preempt_tests::emulated() {
        eprintln!("SKIPPED under emulation: the terminal is the host's");
        return;
    }
    if !std::path::Path::new("/usr/bin/script").exists() {
        eprintln!("SKIPPED: no /usr/bin/script (util-linux) to give the run a terminal");
        return;
    }
    let text = on_a_terminal("bench --quick kernels");
    assert!(
        text.contains("bench kernels") && text.contains(" on jit"),
        "a spinner naming the suite and the step: {text:?}"
    );
    assert!(
        text.contains('\x1b') || text.contains('\r'),
        "drawn in place: {text:?}"
    );
    // `preempt stress` too, naming the boundary it is at.
    let file = preempt_tests::repo_root().join("examples/stress/calls.pir");
    let text = on_a_terminal(&format!("stress {} --limit 50", file.display()));
    assert!(
        text.contains("stress calls.pir") && text.contains("boundary 1 of 1..=50"),
        "{text:?}"
    );
}
