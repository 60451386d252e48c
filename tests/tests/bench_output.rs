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
    let out = Command::new(std::env::current_exe().expect("the test binary"))
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
