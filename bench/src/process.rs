//! Running a benchmark program as a child process: its output, its exit
//! status and its peak resident set size (`ru_maxrss` from `wait4`), with a
//! kill timer so a hung program ends the measurement instead of the run.

use std::io::{self, Read};
use std::process::{Child, Command, Stdio};
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
    /// Peak resident set size of the child, in KiB (`ru_maxrss`).
    pub max_rss_kib: i64,
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
    f.max_rss_kib = usage.ru_maxrss;
    f.stdout = out.join().unwrap_or_default();
    f.stderr = err.join().unwrap_or_default();
    Ok(f)
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
        assert!(f.max_rss_kib > 0);
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
