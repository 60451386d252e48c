//! Writing to stdout and stderr without panicking.
//!
//! `print!` panics when the write fails, which made `preempt check FILE >
//! /dev/full` and `preempt disasm FILE | head -1` end with status 101 and
//! a Rust panic message. Here:
//!
//! - a closed pipe (`EPIPE`, on either stream) ends the process quietly,
//!   as the default action of `SIGPIPE` does for a C or Go program: the
//!   reader has all it wanted;
//! - any other error on stdout (a full disk, `/dev/full`) means the output
//!   itself was lost: [`exit`] says so on stderr and ends with status 1;
//! - an error on stderr loses only the diagnosis: the exit status still
//!   says what happened (2 for a bad file, 1 for a panic, 3 for the
//!   watchdog).

use std::io::{ErrorKind, Write};
use std::process::ExitCode;
use std::sync::OnceLock;

/// The first error that lost stdout, if one did.
static STDOUT_LOST: OnceLock<String> = OnceLock::new();

/// Writes `text` to stdout.
pub fn stdout(text: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        lost_stdout(&e);
    }
}

/// Writes `text` to stderr.
pub fn stderr(text: &str) {
    if let Err(e) = std::io::stderr().lock().write_all(text.as_bytes()) {
        if e.kind() == ErrorKind::BrokenPipe {
            closed_pipe();
        }
    }
}

/// stdout failed with `e` (here, or in the program's own output).
pub fn lost_stdout(e: &std::io::Error) {
    if e.kind() == ErrorKind::BrokenPipe {
        closed_pipe();
    }
    let _ = STDOUT_LOST.set(e.to_string());
}

/// The reader of a pipe went away: end as `SIGPIPE` would, quietly.
pub fn closed_pipe() -> ! {
    // SAFETY: restoring the default action of SIGPIPE and raising it ends
    // the process, as a write to a closed pipe does by default; nothing
    // after this runs (the `_exit` is for the case the signal is blocked).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
        libc::_exit(128 + libc::SIGPIPE)
    }
}

/// Whether stdout was lost.
pub fn stdout_lost() -> bool {
    STDOUT_LOST.get().is_some()
}

/// The exit status `status`, unless stdout was lost: then 1, after saying
/// so.
pub fn exit(status: u8) -> ExitCode {
    match STDOUT_LOST.get() {
        Some(e) => {
            stderr(&format!(
                "preempt: the output was lost: cannot write to stdout: {e}\n"
            ));
            ExitCode::from(1)
        }
        None => ExitCode::from(status),
    }
}

/// `print!` that never panics (see the module docs).
macro_rules! out {
    ($($t:tt)*) => { $crate::console::stdout(&format!($($t)*)) };
}

/// `println!` that never panics.
macro_rules! outln {
    ($($t:tt)*) => {{ let mut s = format!($($t)*); s.push('\n'); $crate::console::stdout(&s) }};
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($t:tt)*) => {{ let mut s = format!($($t)*); s.push('\n'); $crate::console::stderr(&s) }};
}

pub(crate) use {errln, out, outln};
