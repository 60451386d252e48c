//! Support shared by the integration tests: running the CLI as a
//! subprocess (with a generous kill timer, so a broken build fails instead
//! of hanging CI) and locating the repository's files.

pub mod gen;
pub mod registers;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use preempt_jit::ir::PreemptMode;
use preempt_runtime::preempt::trap::TrapArm;

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
    /// How the child ended, when it did not exit by itself.
    pub end: End,
    /// Children killed and spawned again because they never got to
    /// `exec` (see [`run_command`]).
    pub respawns: u32,
}

/// How a child process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// It exited (with `Run::status`).
    Exited,
    /// A signal ended it (its number).
    Signalled(i32),
    /// The kill timer ended it. `threads` is what each of its threads was
    /// doing just before: name, state, the kernel function it waited in
    /// and its system call (`/proc/PID/task/*`), so that a hang that even
    /// the runtime's watchdog did not end says where it stood.
    KillTimer { threads: String },
}

/// One line per thread of `pid`: `tid name state wchan syscall`.
pub fn thread_states(pid: u32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("(no /proc/{pid}/task)");
    };
    let mut tids: Vec<u32> = tasks
        .filter_map(|t| t.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    let read = |tid: u32, f: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/{f}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    };
    tids.iter()
        .map(|&tid| {
            let stat = read(tid, "stat");
            // The state follows the parenthesised name.
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?")
                .to_string();
            let syscall = read(tid, "syscall");
            let nr = syscall.split_whitespace().next().unwrap_or("?");
            format!(
                "{tid} {:<16} {state} wchan={} syscall={nr}",
                read(tid, "comm"),
                read(tid, "wchan")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs the CLI binary `exe` with `args` from the repository root. Runs on
/// another architecture go through `PREEMPT_EXEC_WRAPPER` (e.g. qemu). The
/// child is killed after `kill_after`: that bound only keeps a hung build
/// from hanging the suite, and is far above any expected run time.
pub fn run_cli(exe: &str, args: &[&str], kill_after: Duration) -> Run {
    run_cli_env(exe, args, &[], kill_after)
}

/// [`run_cli`] with `env` added to the child's environment.
pub fn run_cli_env(exe: &str, args: &[&str], env: &[(&str, &str)], kill_after: Duration) -> Run {
    let mut cmd = cli_command(exe, args);
    cmd.envs(env.iter().copied());
    run_command(cmd, kill_after)
}

/// The command [`run_cli`] runs: `exe` with `args` (after the words of
/// `PREEMPT_EXEC_WRAPPER`), from the repository root, stdin closed,
/// stdout and stderr piped.
pub fn cli_command(exe: &str, args: &[&str]) -> Command {
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
    cmd
}

/// How long a child may take to get from `fork` to `exec`. Natively it
/// takes well under a millisecond. Under qemu-user, the fork of the
/// multi-threaded test process (each test is a thread) has hung, once,
/// before the child ever exec'd: a qemu lock held at the fork by another
/// thread, in the copy of the test harness, before any code of the product
/// ran.
const EXEC_GRACE: Duration = Duration::from_secs(20);

/// Times a child that never exec'd is killed and started again.
const EXEC_RETRIES: u32 = 2;

/// Runs `cmd` (from [`cli_command`]) as [`run_cli`] does. A child still
/// not running `cmd`'s program [`EXEC_GRACE`] after the spawn (its
/// command line is still the test process's) is killed and spawned again,
/// at most [`EXEC_RETRIES`] times, each said on stderr; the kill timer
/// counts from the last spawn.
pub fn run_command(cmd: Command, kill_after: Duration) -> Run {
    run_command_with_grace(cmd, kill_after, EXEC_GRACE)
}

/// [`run_command`] with `grace` for [`EXEC_GRACE`].
fn run_command_with_grace(mut cmd: Command, kill_after: Duration, grace: Duration) -> Run {
    let argv: Vec<u8> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .flat_map(|a| a.as_encoded_bytes().iter().copied().chain([0]))
        .collect();
    let mut retries = 0;
    'spawn: loop {
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
        let mut exec_checked = false;
        let (status, end) = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                use std::os::unix::process::ExitStatusExt;
                break match st.signal() {
                    Some(sig) => (None, End::Signalled(sig)),
                    None => (st.code(), End::Exited),
                };
            }
            if !exec_checked && start.elapsed() > grace {
                exec_checked = true;
                if retries < EXEC_RETRIES && !execd(child.id(), &argv) {
                    let threads = thread_states(child.id());
                    let _ = child.kill();
                    let _ = child.wait();
                    // Its pipes closed with it: the readers end.
                    let _ = (t_out.join(), t_err.join());
                    eprintln!(
                        "run_command: pid {} never exec'd {:?} in {grace:?} (a hung fork of the test process); killed and started again. Its threads:\n{threads}",
                        child.id(),
                        cmd.get_program()
                    );
                    retries += 1;
                    continue 'spawn;
                }
            }
            if start.elapsed() > kill_after {
                let threads = thread_states(child.id());
                let _ = child.kill();
                let _ = child.wait();
                break (None, End::KillTimer { threads });
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        return Run {
            status,
            end,
            stdout: t_out.join().unwrap_or_default(),
            stderr: t_err.join().unwrap_or_default(),
            elapsed: start.elapsed(),
            respawns: retries,
        };
    }
}

/// Whether process `pid` runs the command whose NUL-terminated words are
/// `argv`: its command line is exactly that. A process gone meanwhile
/// (no command line left to read) counts as having run it: a forked copy
/// that never exec'd does not exit.
fn execd(pid: u32, argv: &[u8]) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(line) => line.is_empty() || line == argv,
        Err(_) => true,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_never_execs_is_killed_and_spawned_again() {
        // The hung fork cannot be staged natively: Rust's spawn returns
        // only once the child has exec'd (under qemu-user the vfork is a
        // fork, and spawn returns at once). What the check sees of it is
        // a child whose command line is not the one spawned; a shell that
        // execs `sleep` shows the same, and does it only on its first run
        // (a marker file). The grace is 2 s here: the first shell has
        // exec'd `sleep` by then (it takes milliseconds).
        let marker =
            std::env::temp_dir().join(format!("preempt-exec-grace-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"if [ -e "$0" ]; then echo spawned again; else : > "$0"; exec sleep 60; fi"#)
            .arg(&marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let r = run_command_with_grace(cmd, Duration::from_secs(50), Duration::from_secs(2));
        let _ = std::fs::remove_file(&marker);
        assert_eq!(r.status, Some(0), "{r:?}");
        assert_eq!(r.stdout, "spawned again\n");
        assert!((1..=EXEC_RETRIES).contains(&r.respawns), "{r:?}");
    }

    #[test]
    fn a_child_that_execs_counts_as_running_its_command() {
        let mut cmd = Command::new("sleep");
        cmd.arg("5");
        let argv = b"sleep\x005\x00".to_vec();
        let mut child = cmd.spawn().unwrap();
        // A watchdog of seconds for the exec, not a timing assertion.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !execd(child.id(), &argv) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(execd(child.id(), &argv));
        // This process runs another command line.
        assert!(!execd(std::process::id(), &argv));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn thread_states_names_each_thread_and_where_it_waits() {
        // A thread of this process parked on a channel: its line has its
        // name and the sleeping state.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::Builder::new()
            .name("parked-probe".into())
            .spawn(move || {
                ready_tx.send(()).unwrap();
                let _ = rx.recv();
            })
            .unwrap();
        ready_rx.recv().unwrap();
        // It blocks in the kernel soon after it says it is ready; the
        // report is taken until it does (a watchdog of seconds, not a
        // timing assertion).
        let deadline = Instant::now() + Duration::from_secs(10);
        let line = loop {
            let report = thread_states(std::process::id());
            let line = report
                .lines()
                .find(|l| l.contains("parked-probe"))
                .map(str::to_string);
            match line {
                Some(l) if l.contains(" S wchan=") => break l,
                _ if Instant::now() > deadline => panic!("{report}"),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        assert!(line.contains("syscall="), "{line}");
        drop(tx);
        t.join().unwrap();
        assert_eq!(
            thread_states(u32::MAX),
            format!("(no /proc/{}/task)", u32::MAX)
        );
    }
}
