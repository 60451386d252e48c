//! Support shared by the integration tests: running the CLI as a
//! subprocess (with a generous kill timer, so a broken build fails instead
//! of hanging CI) and locating the repository's files.

pub mod gen;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use preempt_jit::ir::PreemptMode;
use preempt_runtime::preempt::arm::TrapArm;

/// Every mode with each way it arms: the five modes, `trap` twice (its
/// per-goroutine page swap and its `mprotect` of the global page).
pub const MODES: [(PreemptMode, TrapArm); 6] = [
    (PreemptMode::Coop, TrapArm::Page),
    (PreemptMode::Async, TrapArm::Page),
    (PreemptMode::Poll, TrapArm::Page),
    (PreemptMode::Trap, TrapArm::Page),
    (PreemptMode::Trap, TrapArm::Mprotect),
    (PreemptMode::Patch, TrapArm::Page),
];

/// `(mode, arming)` as `preempt run` and `preempt stress` arguments.
pub fn mode_args(mode: PreemptMode, arm: TrapArm) -> Vec<String> {
    let mut v = vec!["--preempt".to_string(), mode.to_string()];
    if mode == PreemptMode::Trap {
        v.extend(["--trap-arm".to_string(), arm.name().to_string()]);
    }
    v
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// What a CLI run produced.
#[derive(Debug)]
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs the CLI binary `exe` with `args` from the repository root. Runs on
/// another architecture go through `PREEMPT_EXEC_WRAPPER` (e.g. qemu). The
/// child is killed after `kill_after`: that bound only keeps a hung build
/// from hanging the suite, and is far above any expected run time.
pub fn run_cli(exe: &str, args: &[&str], kill_after: Duration) -> Run {
    let wrapper = std::env::var("PREEMPT_EXEC_WRAPPER").unwrap_or_default();
    let mut words: Vec<String> = wrapper.split_whitespace().map(str::to_string).collect();
    words.push(exe.to_string());
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..])
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn the CLI");
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code();
        }
        if start.elapsed() > kill_after {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        elapsed: start.elapsed(),
    }
}

/// Writes `text` to a fresh temporary `.pir` file and returns its path.
pub fn temp_pir(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("preempt-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.pir"));
    std::fs::write(&path, text).expect("write temp file");
    path
}

/// Under qemu-user (the aarch64 lane sets the wrapper).
pub fn emulated() -> bool {
    std::env::var("PREEMPT_EXEC_WRAPPER").is_ok_and(|w| !w.trim().is_empty())
}

/// The first number on the summary line of `out` that starts with `key`
/// (after leading blanks), as `preempt stress` prints them.
pub fn figure(out: &str, key: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(key))
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{out}"));
    line.trim_start()[key.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number in `{line}`"))
}
