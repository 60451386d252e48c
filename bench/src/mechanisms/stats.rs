//! The figures made from raw output: instruction counts read from
//! valgrind, per-unit ratios and overheads, percentiles and latency
//! histograms, and a configuration's timed runs.

use serde_json::{json, Value};

use crate::runtime as rt;

/// The instruction count valgrind reports on stderr: callgrind's
/// `==PID== Collected : N`, else the summary's `==PID== I   refs:  N,NNN`
/// (cachegrind's, and callgrind's last line).
pub fn valgrind_instructions(stderr: &str) -> Option<u64> {
    let after = |tag: &str| {
        stderr.lines().rev().find_map(|l| {
            let (_, rest) = l.split_once(tag)?;
            let digits: String = rest.trim().chars().filter(|c| *c != ',').collect();
            digits.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    after("Collected :").or_else(|| after("I   refs:"))
}

/// Instructions per unit of work from counts at two sizes, (work,
/// instructions) each: the difference cancels start-up, compilation and
/// the timing `@main`.
pub fn per_unit(small: (f64, u64), large: (f64, u64)) -> Option<f64> {
    let (dw, di) = (large.0 - small.0, large.1 as f64 - small.1 as f64);
    (dw > 0.0).then_some(di / dw)
}

/// `mode` against `base`, in percent (positive: slower, or more).
pub fn overhead_pct(mode: f64, base: f64) -> Option<f64> {
    (base > 0.0 && mode.is_finite()).then(|| (mode / base - 1.0) * 100.0)
}

/// Nearest-rank percentile of unsorted samples.
pub(super) fn pct_u64(samples: &[u64], p: f64) -> Option<f64> {
    let mut v: Vec<i64> = samples.iter().map(|&x| x as i64).collect();
    v.sort_unstable();
    rt::percentile(&v, p).map(|x| x as f64)
}

/// One latency histogram from `--stats-json`, in ns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hist {
    pub count: u64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Hist {
    /// Histogram `name` of a run's stats.
    pub fn from_stats(stats: &Value, name: &str) -> Result<Hist, String> {
        let h = &stats["details"]["histograms"][preempt_runtime::stats::json_key(name)];
        if h.is_null() {
            return Err(format!("the run recorded no \"{name}\""));
        }
        let f = |k: &str| {
            h[k].as_f64()
                .ok_or_else(|| format!("\"{name}\" has no {k}"))
        };
        Ok(Hist {
            count: h["count"].as_u64().unwrap_or(0),
            min: f("min_ns").unwrap_or(f64::NAN),
            p50: f("p50_ns")?,
            p90: f("p90_ns").unwrap_or(f64::NAN),
            p99: f("p99_ns")?,
            p99_9: f("p99_9_ns")?,
            max: f("max_ns")?,
        })
    }

    /// Nearest-rank percentiles of raw samples (ns).
    pub(super) fn from_samples(v: &[u64]) -> Result<Hist, String> {
        let p = |q| pct_u64(v, q).ok_or_else(|| "no samples".to_string());
        Ok(Hist {
            count: v.len() as u64,
            min: p(0.0)?,
            p50: p(50.0)?,
            p90: p(90.0)?,
            p99: p(99.0)?,
            p99_9: p(99.9)?,
            max: p(100.0)?,
        })
    }

    /// (percentile, us) points for a latency plot.
    pub(super) fn points(&self) -> Vec<(f64, f64)> {
        [
            (0.0, self.min),
            (50.0, self.p50),
            (90.0, self.p90),
            (99.0, self.p99),
            (99.9, self.p99_9),
            (100.0, self.max),
        ]
        .into_iter()
        .filter(|p| p.1.is_finite() && p.1 > 0.0)
        .map(|(p, ns)| (p, ns / 1e3))
        .collect()
    }

    pub(super) fn json(&self) -> Value {
        let n = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        json!({"count": self.count, "min_ns": n(self.min), "p50_ns": self.p50,
               "p90_ns": n(self.p90), "p99_ns": self.p99, "p99_9_ns": self.p99_9,
               "max_ns": self.max})
    }
}

/// A configuration's timed runs of one kernel.
#[derive(Clone, Debug, Default)]
pub(super) struct Timing {
    pub(super) ns: Vec<f64>,
    pub(super) stops: Vec<u64>,
}

impl Timing {
    pub(super) fn best(&self) -> f64 {
        self.ns.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// Stops per second of kernel time, over all runs.
    pub(super) fn stops_per_s(&self) -> f64 {
        let s: f64 = self.ns.iter().sum::<f64>() / 1e9;
        if s > 0.0 {
            self.stops.iter().sum::<u64>() as f64 / s
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valgrind_counts_are_read() {
        let callgrind = "==6129== For interactive control, run 'callgrind_control -h'.\n\
                         ==6129== \n==6129== Events    : Ir\n==6129== Collected : 4990824\n\
                         ==6129== \n==6129== I   refs:      4,990,824\n";
        assert_eq!(valgrind_instructions(callgrind), Some(4_990_824));
        let cachegrind = "==6340== I   refs:      5,047,602\n";
        assert_eq!(valgrind_instructions(cachegrind), Some(5_047_602));
        assert_eq!(
            valgrind_instructions("==1== Callgrind: assertion failed\n"),
            None
        );
        assert_eq!(valgrind_instructions(""), None);
    }

    #[test]
    fn ratios() {
        assert_eq!(per_unit((1e6, 5_000_000), (4e6, 17_000_000)), Some(4.0));
        assert_eq!(per_unit((1e6, 5), (1e6, 5)), None);
        assert!((overhead_pct(1.02, 1.0).unwrap() - 2.0).abs() < 1e-9);
        assert!((overhead_pct(0.99, 1.0).unwrap() + 1.0).abs() < 1e-9);
        assert_eq!(overhead_pct(1.0, 0.0), None);
        assert_eq!(overhead_pct(f64::INFINITY, 1.0), None);
        let t = Timing {
            ns: vec![3e8, 2e8, 5e8],
            stops: vec![30, 20, 50],
        };
        assert_eq!(t.best(), 2e8);
        assert!((t.stops_per_s() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn histograms_are_read_from_stats_and_samples() {
        let st = json!({"details": {"histograms": {"time_to_preempt_poll": {
            "count": 3, "min_ns": 100, "mean_ns": 2.0, "p50_ns": 200, "p90_ns": 300,
            "p99_ns": 400, "p99_9_ns": 500, "max_ns": 600}}}});
        let h = Hist::from_stats(&st, "time-to-preempt (poll)").unwrap();
        assert_eq!((h.count, h.p50, h.p99_9, h.max), (3, 200.0, 500.0, 600.0));
        assert_eq!(h.points().len(), 6);
        assert!(Hist::from_stats(&st, "time-to-preempt (trap)")
            .unwrap_err()
            .contains("no \"time-to-preempt (trap)\""));
        let samples: Vec<u64> = (1..=1000).rev().collect();
        let h = Hist::from_samples(&samples).unwrap();
        assert_eq!((h.min, h.p50, h.p99, h.max), (1.0, 500.0, 990.0, 1000.0));
        assert!(h.p99_9 >= 999.0 && h.count == 1000);
        assert!(Hist::from_samples(&[]).is_err());
    }
}
