//! Running a benchmark program as a child process: its output, its exit
//! status and, when asked, its peak resident set size, with a kill timer
//! so a hung program ends the measurement instead of the run.
//!
//! A child's peak RSS is not the `ru_maxrss` that `wait4` reports for a
//! child of this process: the kernel counts, into the child's figure, the
//! peak RSS of the address space it was started from (`exec` folds the old
//! memory map's high-water mark into `ru_maxrss`), and `std::process`
//! starts children with `posix_spawn`, whose child runs in the parent's
//! address space until it execs. Every child of a `preempt bench` that had
//! compiled a million instructions (512 MiB) reported at least 512 MiB,
//! whatever it did. [`run_measured`] therefore starts the program from a
//! small, freshly started process, the spawner ([`spawner_main`], the
//! `preempt` executable started with [`SPAWNER`]), which forks it, waits
//! for it with `wait4` and reports that one child's `ru_maxrss`, as
//! `/usr/bin/time` does: the figure is the program's own peak, above a
//! floor of the spawner's few MiB.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a finished child left behind.
#[derive(Clone, Debug, Default)]
pub struct Finished {
    /// The exit status, when it exited (rather than being killed).
    pub status: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Peak resident set size of the program, in KiB: measured by
    /// [`run_measured`] only (None from [`run`]; see the module's comment).
    pub max_rss_kib: Option<i64>,
    /// True when the kill timer ended it.
    pub timed_out: bool,
    pub wall: Duration,
}

impl Finished {
    pub fn ok(&self) -> bool {
        self.status == Some(0) && !self.timed_out
    }

    /// One line saying how it ended, for error messages.
    pub fn describe(&self) -> String {
        let how = if self.timed_out {
            format!("killed after {:.1} s", self.wall.as_secs_f64())
        } else if let Some(s) = self.status {
            format!("exit status {s}")
        } else if let Some(sig) = self.signal {
            format!("killed by signal {sig}")
        } else {
            "ended".to_string()
        };
        let err = self.stderr.trim();
        if err.is_empty() {
            how
        } else {
            let first: Vec<&str> = err.lines().take(3).collect();
            format!("{how}: {}", first.join(" | "))
        }
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// `--cpus LIST` for a `preempt run` child when this process was pinned
/// (`preempt bench --cpus`), so that it pins its threads and says so.
pub fn cpus_args() -> Vec<String> {
    preempt_runtime::affinity::pinned()
        .map(|c| vec!["--cpus".to_string(), c.to_string()])
        .unwrap_or_default()
}

/// Runs `cmd` to completion (stdin closed, stdout and stderr captured),
/// killing it after `kill_after`. When this process was pinned to CPUs
/// (`preempt bench --cpus`), so is the child, as `taskset -c` would.
pub fn run(cmd: &mut Command, kill_after: Duration) -> io::Result<Finished> {
    if let Some(cpus) = preempt_runtime::affinity::pinned() {
        cpus.pin_children(cmd);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child: Child = cmd.spawn()?;
    let out = reader(child.stdout.take().expect("stdout is piped"));
    let err = reader(child.stderr.take().expect("stderr is piped"));
    let pid = child.id() as libc::pid_t;
    let mut f = Finished::default();
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std's Child is
        // never waited on); status and usage point to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if !f.timed_out && start.elapsed() > kill_after {
            f.timed_out = true;
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    f.wall = start.elapsed();
    if libc::WIFEXITED(status) {
        f.status = Some(libc::WEXITSTATUS(status));
    } else if libc::WIFSIGNALED(status) {
        f.signal = Some(libc::WTERMSIG(status));
    }
    f.stdout = out.join().unwrap_or_default();
    f.stderr = err.join().unwrap_or_default();
    Ok(f)
}

/// The first argument that makes the `preempt` executable the spawner of
/// [`run_measured`] (a word no user types; not a subcommand).
pub const SPAWNER: &str = "__spawn-measured";

/// Runs `cmd` as [`run`] does, started by the spawner whose command line is
/// `spawner` (the `preempt` executable, after any emulator words), and
/// records the program's own peak RSS in [`Finished::max_rss_kib`].
pub fn run_measured(
    cmd: &Command,
    kill_after: Duration,
    spawner: &[OsString],
) -> io::Result<Finished> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let (first, rest) = spawner
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no spawner"))?;
    let report = std::env::temp_dir().join(format!(
        "preempt-rss-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut outer = Command::new(first);
    outer
        .args(rest)
        .arg(SPAWNER)
        .arg(&report)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => outer.env(k, v),
            None => outer.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        outer.current_dir(dir);
    }
    let mut f = run(&mut outer, kill_after)?;
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    f.max_rss_kib = text
        .trim()
        .strip_prefix("max_rss_kib=")
        .and_then(|v| v.parse().ok());
    if f.max_rss_kib.is_none() && !f.timed_out {
        return Err(io::Error::other(format!(
            "the spawner reported no peak RSS ({})",
            f.describe()
        )));
    }
    Ok(f)
}

/// The spawner: `preempt __spawn-measured REPORT PROGRAM ARGS...` runs
/// PROGRAM as its child (stdio, environment and directory inherited),
/// waits for it with `wait4`, writes `max_rss_kib=N` (that child's
/// `ru_maxrss`) to REPORT and ends as the child ended: its exit status, or
/// the signal that killed it. The child is killed if the spawner dies (so
/// [`run`]'s kill timer ends both).
pub fn spawner_main(args: &[String]) -> ExitCode {
    let [report, program, rest @ ..] = args else {
        eprintln!("preempt {SPAWNER}: usage: REPORT PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let mut cmd = Command::new(program);
    cmd.args(rest);
    // SAFETY: the closure runs in the forked child before exec and makes
    // only async-signal-safe system calls (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            // The spawner may have died before the prctl.
            if libc::getppid() != me {
                libc::_exit(137);
            }
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("preempt {SPAWNER}: cannot run {program}: {e}");
            return ExitCode::from(127);
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std's Child is
        // never waited on); status and usage point to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            eprintln!("preempt {SPAWNER}: wait4: {}", io::Error::last_os_error());
            return ExitCode::from(127);
        }
    }
    let _ = std::fs::write(
        PathBuf::from(report),
        format!("max_rss_kib={}\n", usage.ru_maxrss),
    );
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // SAFETY: restoring the default action of a signal and raising it
        // in this process, which has nothing left to do.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        return ExitCode::from((128 + sig).clamp(0, 255) as u8);
    }
    ExitCode::from(libc::WEXITSTATUS(status).clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_a_child_and_reports_its_output_status_and_rss() {
        let f = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(30),
        )
        .expect("sh runs");
        assert_eq!(f.status, Some(3));
        assert_eq!(f.stdout, "out\n");
        assert_eq!(f.stderr, "err\n");
        assert_eq!(f.max_rss_kib, None, "only run_measured measures RSS");
        assert!(!f.ok());
        assert!(f.describe().contains("exit status 3"), "{}", f.describe());
    }

    #[test]
    fn the_kill_timer_ends_a_hung_child() {
        let f = run(
            Command::new("sh").args(["-c", "exec sleep 30"]),
            Duration::from_millis(100),
        )
        .expect("sh runs");
        assert!(f.timed_out);
        assert_eq!(f.signal, Some(libc::SIGKILL));
        assert!(f.wall < Duration::from_secs(10));
    }
}
