//! When the machine is too busy to trust a figure, saying so, with what
//! was seen: the load average when `preempt bench` started, the signal
//! floor measured in the run, and the spread of a baseline's repeated
//! runs. The decision is [`warnings`], on numbers; the suites gather them.

use std::sync::OnceLock;

/// A signal's floor (`tgkill` to handler, 10 ms apart, p50) above this is
/// not the machine's floor but a wait for a CPU: bare metal takes 2-5 us,
/// a KVM guest 10-40 us (this project's development VM: 25-37 us).
pub const FLOOR_P50_USUAL_MAX_NS: f64 = 150_000.0;

/// A floor whose p99 is more than this many times its p50 was measured
/// while something else took the CPU (an idle VM: under 2x).
pub const FLOOR_TAIL_MAX: f64 = 5.0;

/// A baseline whose repeated runs vary by more than this (coefficient of
/// variation) cannot separate differences of a few percent.
pub const BASELINE_CV_MAX: f64 = 0.10;

/// What a suite saw of the machine's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    /// The 1-minute load average when the run started, and the CPUs.
    pub load: Option<(f64, usize)>,
    /// The signal floor measured in the run (10 ms apart): p50 and p99, ns.
    pub floor: Option<(f64, f64)>,
    /// Baselines' repeated runs: (what, the runs' times).
    pub baselines: Vec<(String, Vec<f64>)>,
}

/// Coefficient of variation (sample standard deviation over mean), for
/// two or more positive samples.
pub fn cv(samples: &[f64]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    if mean <= 0.0 || !mean.is_finite() {
        return None;
    }
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some(var.sqrt() / mean)
}

/// The warnings `seen` calls for, each saying what was seen (none: the
/// figures may be trusted as far as these checks go).
pub fn warnings(seen: &Seen) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((load, cpus)) = seen.load {
        if load > cpus as f64 {
            out.push(format!(
                "the load average was {load:.2} when the run started, on {cpus} CPUs: other \
                 work was waiting for a CPU, and every figure here waited with it"
            ));
        }
    }
    if let Some((p50, p99)) = seen.floor {
        if p50 > FLOOR_P50_USUAL_MAX_NS {
            out.push(format!(
                "the signal floor measured {:.1} us p50, far above a signal's usual 2-40 us \
                 (over {:.0} us is a wait for a CPU): the machine was busy, and figures \
                 compared with this floor compare with the load",
                p50 / 1e3,
                FLOOR_P50_USUAL_MAX_NS / 1e3
            ));
        } else if p50 > 0.0 && p99 / p50 > FLOOR_TAIL_MAX {
            out.push(format!(
                "the signal floor's p99 ({:.1} us) is {:.0}x its p50 ({:.1} us; an idle \
                 machine: under 2x): something else took the CPU during the run",
                p99 / 1e3,
                p99 / p50,
                p50 / 1e3
            ));
        }
    }
    for (what, runs) in &seen.baselines {
        if let Some(c) = cv(runs).filter(|c| *c > BASELINE_CV_MAX) {
            let lo = runs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = runs.iter().copied().fold(0.0f64, f64::max);
            out.push(format!(
                "{what}: its {} runs vary by {:.0}% (coefficient of variation; slowest {:.0}% \
                 above fastest): differences of a few percent are within this run's noise",
                runs.len(),
                c * 100.0,
                (hi / lo - 1.0) * 100.0
            ));
        }
    }
    out
}

/// The 1-minute load average and the CPU count when this process first
/// asked (`preempt bench` asks before any suite runs).
pub fn load_at_start() -> Option<(f64, usize)> {
    static LOAD: OnceLock<Option<(f64, usize)>> = OnceLock::new();
    *LOAD.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/loadavg").ok()?;
        let load = text.split_whitespace().next()?.parse().ok()?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Some((load, cpus))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_machine_draws_no_warning() {
        let seen = Seen {
            load: Some((0.4, 2)),
            floor: Some((30_000.0, 60_000.0)),
            baselines: vec![("sum".into(), vec![100.0, 101.0, 99.5, 100.2])],
        };
        assert!(warnings(&seen).is_empty(), "{:?}", warnings(&seen));
        assert!(warnings(&Seen::default()).is_empty());
    }

    #[test]
    fn a_busy_machine_is_named_with_what_was_seen() {
        // A loaded machine, as once seen: a 3.7 ms floor.
        let seen = Seen {
            load: Some((3.1, 2)),
            floor: Some((3_700_000.0, 9_000_000.0)),
            baselines: vec![(
                "the no-preemption baseline of sum".into(),
                vec![131.0, 188.0, 140.0, 150.0],
            )],
        };
        let w = warnings(&seen);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("3.10") && w[0].contains("2 CPUs"), "{}", w[0]);
        assert!(w[1].contains("3700.0 us p50"), "{}", w[1]);
        assert!(
            w[2].starts_with("the no-preemption baseline of sum: its 4 runs vary by 16%"),
            "{}",
            w[2]
        );
        assert!(w[2].contains("slowest 44% above fastest"), "{}", w[2]);
    }

    #[test]
    fn a_floor_with_a_long_tail_is_named() {
        let seen = Seen {
            floor: Some((30_000.0, 400_000.0)),
            ..Seen::default()
        };
        let w = warnings(&seen);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("13x its p50"), "{}", w[0]);
        // The load exactly at the CPU count is not over it.
        let at = Seen {
            load: Some((2.0, 2)),
            ..Seen::default()
        };
        assert!(warnings(&at).is_empty());
    }

    #[test]
    fn coefficients_of_variation() {
        assert_eq!(cv(&[1.0]), None);
        assert_eq!(cv(&[0.0, 0.0]), None);
        assert!((cv(&[1.0, 3.0]).unwrap() - 2f64.sqrt() / 2.0).abs() < 1e-12);
    }
}
