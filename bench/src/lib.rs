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
pub mod doc;
pub mod floor;
pub mod html;
pub mod kernels;
pub mod mechanisms;
pub mod noise;
pub mod peers;
pub mod plot;
pub mod preempt;
pub mod process;
pub mod progress;
pub mod qtimer;
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
    /// `--quick`: the figures check the harness and are marked so.
    pub quick: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            target: Duration::from_millis(300),
            repetitions: 5,
            quick: false,
        }
    }
}

impl Budget {
    /// A short run, for smoke tests of the harness itself.
    pub fn quick() -> Budget {
        Budget {
            target: Duration::from_millis(20),
            repetitions: 1,
            quick: true,
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

/// When, with what and where a run was made, for the header of every
/// suite's output, page and plot: `preempt 0.1.0, 2026-11-28 21:55 UTC,
/// AMD EPYC, 2 cores, x86_64`.
pub fn run_line() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "preempt {}, {}, {}",
        env!("CARGO_PKG_VERSION"),
        utc(now),
        machine_description()
    )
}

/// "1 run", "5 runs".
pub fn runs(n: usize) -> String {
    if n == 1 {
        "1 run".to_string()
    } else {
        format!("{n} runs")
    }
}

/// `secs` after the Unix epoch as a civil date and time (UTC):
/// (year, month, day, hour, minute, second), by Howard Hinnant's
/// days-to-civil algorithm.
pub fn civil(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// `secs` after the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(secs: u64) -> String {
    let (y, m, d, h, mi, _) = civil(secs);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59 UTC");
        assert!(run_line().starts_with(&format!("preempt {}, ", env!("CARGO_PKG_VERSION"))));
    }
}
