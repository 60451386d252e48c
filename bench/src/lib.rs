//! Benchmark suites behind `preempt bench`.
//!
//! Every figure is measured in the same process run, so ratios compare
//! like with like on whatever machine runs them. Nothing here asserts a
//! timing: the suites print what they measured.
//!
//! - [`compile`]: JIT compile throughput, in PIR instructions per second,
//!   per phase and end to end.
//! - [`kernels`]: tight-loop kernels on the JIT, on the reference
//!   interpreter, and written in Rust, as nanoseconds per unit of work and
//!   ratios.
//! - [`runtime`]: the runtime benchmarks (spawn, context switch, channel
//!   ping-pong, idle goroutines' memory, a sleeper behind a spinner) in
//!   PIR and in Go ([`peers`]), side by side, each a fresh process.
//! - [`preempt`]: asynchronous preemption against the signal floor
//!   ([`floor`]) and against Go: time-to-preempt, a sleeper behind a
//!   call-free spinner, stop-the-world stopping time, overhead.
//! - [`mechanisms`]: the five preemption mechanisms side by side: overhead
//!   on tight loops (timed and counted), time-to-preempt against the
//!   floor, code size, arming cost; SVG plots through [`plot`].
//!
//! Every suite's figures are also written in one JSON format with their
//! provenance and samples ([`results`]).

pub mod compile;
pub mod floor;
pub mod kernels;
pub mod mechanisms;
pub mod peers;
pub mod plot;
pub mod preempt;
pub mod process;
pub mod results;
pub mod runtime;
pub mod rust_ref;

use std::time::Duration;

/// How long each measurement should roughly take, and how many times it is
/// repeated (the fastest repetition is reported).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub target: Duration,
    pub repetitions: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            target: Duration::from_millis(300),
            repetitions: 5,
        }
    }
}

impl Budget {
    /// A short run, for smoke tests of the harness itself.
    pub fn quick() -> Budget {
        Budget {
            target: Duration::from_millis(20),
            repetitions: 1,
        }
    }
}

/// One line of host description for the figures' header.
pub fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores, {}", std::env::consts::ARCH)
}
