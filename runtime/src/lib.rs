//! preempt-runtime: runs compiled PIR programs as goroutines.
//!
//! [`sched`] owns goroutines (context, stack), the threads that run them and
//! the loop that serves their runtime calls; [`gc`] the heap;
//! [`traceback`] turns a parked goroutine's stack into Go-style frames;
//! [`output`] is the line-atomic stdout every `print` goes through.

pub mod gc;
pub mod interp;
pub mod output;
pub mod sched;
pub mod stats;
pub mod trace;
pub mod traceback;

use std::sync::atomic::{AtomicI32, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

pub use output::Output;
pub use sched::run;

/// How to run a program.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The source file name, for tracebacks.
    pub file: String,
    /// Usable bytes of each goroutine stack.
    pub stack_size: usize,
    /// The watchdog ends a program still running after this long.
    pub timeout: Option<Duration>,
    /// `procs` (GOMAXPROCS).
    pub procs: usize,
    /// Counters a caller may watch while the program runs.
    pub stats: Arc<RunStats>,
}

/// What a run exposes while it goes on.
#[derive(Debug, Default)]
pub struct RunStats {
    /// The kernel thread id of the worker running goroutines (0 until it
    /// starts).
    pub worker_tid: AtomicI32,
    /// Goroutine entries into the asynchronous-preemption stub.
    pub async_preempts: AtomicU64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            file: "<input>".to_string(),
            stack_size: 64 << 20,
            timeout: Some(Duration::from_secs(10)),
            procs: 1,
            stats: Arc::default(),
        }
    }
}

/// How a run ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Outcome {
    /// The process exit status IR.md gives: 0 success, 1 panic or fatal
    /// error, 2 a program this build cannot run, 3 the watchdog fired.
    pub status: i32,
    /// What goes to stderr: the panic report, fatal error or diagnosis.
    pub stderr: String,
}

impl Outcome {
    pub fn success() -> Outcome {
        Outcome {
            status: 0,
            stderr: String::new(),
        }
    }
}
