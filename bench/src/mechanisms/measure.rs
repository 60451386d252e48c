//! What the suite measures, in which order and how often: the plan, the
//! signal floor, which variants this build runs, the timed kernels
//! (calibrated, then interleaved in rotating rounds), the counted kernels,
//! code size; and what was measured, as the report reads it.

use std::time::Duration;

use preempt_runtime::stats;
use serde_json::{json, Value};

use super::runs::{
    code_size, count_instructions, hung, probe, time_kernel, ttp_run, valgrind, CodeSize, Runner,
};
use super::stats::{overhead_pct, Hist, Timing};
use super::{round_pad, suite_kernels, Variant, KERNELS, QUANTUM, VARIANTS};
use crate::kernels::Kernel;
use crate::runtime::Options;

/// How much to measure.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    /// Signal-floor samples 10 ms apart, and 200 us apart.
    pub(super) floor: usize,
    pub(super) floor_hot: usize,
    /// Sleeps (so preemptions) of each time-to-preempt run.
    pub(super) sleeps: u64,
    /// Each timed kernel run, and how many rounds.
    pub(super) target: Duration,
    pub(super) rounds: usize,
    /// The kernels counted under valgrind, and the work of the smaller size.
    pub(super) counted: Vec<&'static str>,
    pub(super) counted_units: f64,
    /// `--quick`: every title says the figures are not a measurement.
    pub(super) quick: bool,
}

impl Plan {
    pub(super) fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                floor: 20,
                floor_hot: 100,
                sleeps: 5,
                target: Duration::from_millis(20),
                rounds: 1,
                counted: vec!["empty"],
                counted_units: 20_000.0,
                quick,
            }
        } else {
            Plan {
                floor: 200,
                floor_hot: 1000,
                sleeps: 200,
                // Many short runs rather than a few long ones: on this VM a
                // process is fast or slow as a whole (the same program, the
                // same placement, 131 to 188 ms), so the fastest of ten
                // processes is far steadier than the fastest of five.
                target: Duration::from_millis(100),
                rounds: 10,
                counted: KERNELS.to_vec(),
                counted_units: 500_000.0,
                quick,
            }
        }
    }
}

/// The order of the configurations in round `r`: rotated by one each
/// round, so that no configuration always runs first, or always last.
pub fn rotation(len: usize, r: usize) -> Vec<usize> {
    (0..len).map(|i| (i + r) % len.max(1)).collect()
}

/// `f` of every item, on up to `threads` threads, in the items' order.
fn parallel<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                done.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// One kernel's timed runs: the baseline and each variant.
#[derive(Debug)]
pub(super) struct KernelOverhead {
    pub(super) n: i64,
    pub(super) work: f64,
    pub(super) none: Result<Timing, String>,
    pub(super) variants: Vec<(&'static str, Result<Timing, String>)>,
}

impl KernelOverhead {
    pub(super) fn timing(&self, label: &str) -> Result<&Timing, String> {
        self.variants
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, t)| t.as_ref().map_err(Clone::clone))
            .unwrap_or_else(|| Err("not run".into()))
    }

    pub(super) fn pct(&self, label: &str) -> Result<f64, String> {
        let none = self.none.as_ref().map_err(Clone::clone)?;
        let t = self.timing(label)?;
        overhead_pct(t.best(), none.best()).ok_or_else(|| "no baseline".into())
    }
}

/// Calibrates `k` to about `target` with no preemption, then runs the
/// baseline and every variant in `vs`, `rounds` times, interleaved. A
/// variant that has hung twice (here or in an earlier kernel: `hangs`
/// lists a label per hang) is not run again, so a broken one costs the
/// suite two watchdog periods rather than one per kernel.
fn overhead(
    r: &Runner<'_>,
    k: &Kernel,
    vs: &[Variant],
    target: Duration,
    rounds: usize,
    hangs: &mut Vec<&'static str>,
) -> KernelOverhead {
    let target_ns = target.as_nanos() as f64;
    let mut n = k.start;
    let calibrated = loop {
        match time_kernel(r, k, n, 0, None) {
            Ok(run) if run.ns >= target_ns / 4.0 => {
                // Once more: a run slowed by the host would size every
                // later run too small.
                let again = time_kernel(r, k, n, 0, None).map_or(run.ns, |r2| r2.ns.min(run.ns));
                break Ok(((n as f64 * target_ns / again) as i64).max(1));
            }
            Ok(_) => n = (k.grow)(n),
            Err(e) => break Err(e),
        }
    };
    let n = match calibrated {
        Ok(n) => n,
        Err(e) => {
            return KernelOverhead {
                n,
                work: (k.work)(n),
                none: Err(format!("no preemption: {e}")),
                variants: vs
                    .iter()
                    .map(|v| (v.label, Err("no baseline".into())))
                    .collect(),
            }
        }
    };
    // Slot 0 is the baseline, then the variants.
    let mut slots: Vec<Result<Timing, String>> = std::iter::once(Ok(Timing::default()))
        .chain(vs.iter().map(|v| {
            if hangs.iter().filter(|&&l| l == v.label).count() >= 2 {
                Err("not run: it hung twice in earlier kernels".to_string())
            } else {
                Ok(Timing::default())
            }
        }))
        .collect();
    let mut expected: Option<i64> = None;
    for round in 0..rounds.max(1) {
        for i in rotation(slots.len(), round) {
            if slots[i].is_err() {
                continue;
            }
            let v = i.checked_sub(1).map(|j| &vs[j]);
            let run = time_kernel(r, k, n, round_pad(round), v).and_then(|run| match expected {
                Some(e) if e != run.result => Err(format!(
                    "computed {} where no preemption computed {e}",
                    run.result
                )),
                _ => Ok(run),
            });
            match (run, &mut slots[i]) {
                (Ok(run), Ok(t)) => {
                    expected.get_or_insert(run.result);
                    t.ns.push(run.ns);
                    t.stops.push(run.stops);
                }
                (Err(e), slot) => {
                    if let (true, Some(v)) = (hung(&e), v) {
                        hangs.push(v.label);
                    }
                    *slot = Err(e);
                }
                (Ok(_), Err(_)) => {}
            }
        }
    }
    let mut it = slots.into_iter();
    let none = it.next().expect("the baseline's slot");
    KernelOverhead {
        n,
        work: (k.work)(n),
        none,
        variants: vs.iter().map(|v| v.label).zip(it).collect(),
    }
}

/// Everything the suite measured, before it is printed.
pub(super) struct Measured {
    pub(super) plan: Plan,
    pub(super) kernels: Vec<Kernel>,
    /// Signal-floor samples (ns), 10 ms apart and 200 us apart.
    pub(super) floor: Result<Vec<u64>, String>,
    pub(super) floor_hot: Result<Vec<u64>, String>,
    /// Why a variant could not be run (absent: it runs).
    pub(super) unavailable: Vec<(&'static str, String)>,
    /// Each variant's time-to-preempt run's stats.
    pub(super) ttp: Vec<(&'static Variant, Result<Value, String>)>,
    /// Each kernel's timed runs, in `kernels` order.
    pub(super) timed: Vec<KernelOverhead>,
    /// valgrind's version, or why nothing was counted.
    pub(super) valgrind: Result<String, String>,
    /// (kernel, variant, instructions per unit of work).
    pub(super) counted: Vec<(&'static str, &'static str, Result<f64, String>)>,
    /// Each variant's code size.
    pub(super) sizes: Vec<(&'static str, Result<CodeSize, String>)>,
    /// Raw runs, for the JSON.
    pub(super) runs: Vec<Value>,
}

/// The variants whose code is their own (the others run one of these).
pub(super) fn own_code() -> impl Iterator<Item = &'static Variant> {
    VARIANTS.iter().filter(|v| v.same_code_as.is_none())
}

/// Measures everything: the floor first, while this process runs nothing
/// else; then which variants this build runs (and their time-to-preempt
/// runs); the timed kernels; the counted kernels; code size.
pub(super) fn measure(opts: &Options, plan: Plan) -> Measured {
    let runner = Runner {
        opts,
        dir: opts.paths.target.join("bench").join("mechanisms"),
    };
    let mut runs = Vec::new();
    // At the monitor's cadence (the case the runtime is in), and back to
    // back.
    crate::progress::step("signal floor");
    let floor = crate::floor::measure(libc::SIGURG, plan.floor, QUANTUM);
    let floor_hot = crate::floor::measure(libc::SIGURG, plan.floor_hot, Duration::from_micros(200));

    let mut unavailable = Vec::new();
    let mut ttp = Vec::new();
    for v in VARIANTS {
        let t = probe(&runner, v).and_then(|()| {
            ttp_run(&runner, v, plan.sleeps)
                .map_err(|e| format!("its time-to-preempt run failed: {e}"))
        });
        match &t {
            Ok(stats) => {
                runs.push(json!({"bench": "time-to-preempt", "variant": v.label, "stats": stats}))
            }
            // A variant that cannot run a spinner is not measured further.
            Err(e) => unavailable.push((v.label, e.clone())),
        }
        ttp.push((v, t));
    }
    let reason = |label: &str| {
        unavailable
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, e)| e.clone())
    };
    let available: Vec<Variant> = VARIANTS
        .iter()
        .filter(|v| reason(v.label).is_none())
        .copied()
        .collect();

    let kernels = suite_kernels();
    let mut hangs = Vec::new();
    let timed = kernels
        .iter()
        .map(|k| overhead(&runner, k, &available, plan.target, plan.rounds, &mut hangs))
        .collect();

    // Counted: coop's code is the baseline; a variant that runs another's
    // code is counted there. Two at a time: a count does not depend on
    // the wall clock, and most of a valgrind run is its start-up.
    let valgrind = valgrind(opts);
    let mut counted = Vec::new();
    if valgrind.is_ok() {
        let jobs: Vec<(&Kernel, &'static Variant)> = kernels
            .iter()
            .filter(|k| plan.counted.contains(&k.name))
            .flat_map(|k| own_code().map(move |v| (k, v)))
            .collect();
        let results = parallel(&jobs, 2, |(k, v)| match reason(v.label) {
            Some(e) => Err(e),
            None => count_instructions(&runner, k, Some(v), plan.counted_units),
        });
        for ((k, v), r) in jobs.iter().zip(results) {
            let r = r.map(|(per_unit, raw)| {
                runs.push(json!({"bench": "instructions", "kernel": k.name,
                                 "variant": v.label, "raw": raw}));
                per_unit
            });
            counted.push((k.name, v.label, r));
        }
    }

    let sizes = own_code()
        .map(|v| {
            let r = match reason(v.label) {
                Some(e) => Err(e),
                None => kernels.iter().try_fold((0, 0), |(f, m), k| {
                    code_size(k, v.mode).map(|(f2, m2)| (f + f2, m + m2))
                }),
            };
            (v.label, r)
        })
        .collect();

    Measured {
        plan,
        kernels,
        floor,
        floor_hot,
        unavailable,
        ttp,
        timed,
        valgrind,
        counted,
        sizes,
        runs,
    }
}

impl Measured {
    pub(super) fn reason(&self, label: &str) -> Option<String> {
        self.unavailable
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, e)| e.clone())
    }

    pub(super) fn available(&self) -> impl Iterator<Item = &'static Variant> + '_ {
        VARIANTS.iter().filter(|v| self.reason(v.label).is_none())
    }

    /// The row that stands for `label` in every table when it could not run.
    pub(super) fn not_measured(&self, label: &str) -> Option<Vec<String>> {
        self.reason(label)
            .map(|e| vec![label.to_string(), format!("not measured: {e}")])
    }

    pub(super) fn kernel_names(&self) -> Vec<&'static str> {
        self.kernels.iter().map(|k| k.name).collect()
    }

    pub(super) fn counted_names(&self) -> Vec<&'static str> {
        self.kernel_names()
            .into_iter()
            .filter(|n| self.plan.counted.contains(n))
            .collect()
    }

    pub(super) fn count(&self, kernel: &str, label: &str) -> Result<f64, String> {
        self.counted
            .iter()
            .find(|(k, l, _)| *k == kernel && *l == label)
            .map(|(_, _, r)| r.clone())
            .unwrap_or_else(|| Err("not run".into()))
    }

    /// Instructions per unit of `label` against coop's code, in percent.
    pub(super) fn count_pct(&self, kernel: &str, label: &str) -> Result<f64, String> {
        let base = self
            .count(kernel, "coop")
            .map_err(|e| format!("coop: {e}"))?;
        overhead_pct(self.count(kernel, label)?, base).ok_or_else(|| "no baseline".into())
    }

    pub(super) fn size(&self, label: &str) -> Result<CodeSize, String> {
        self.sizes
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| Err("not compiled".into()))
    }

    /// What the run saw of the machine: the load at the start, the floor,
    /// and each kernel's baseline runs.
    pub(super) fn seen(&self) -> crate::noise::Seen {
        crate::noise::Seen {
            load: crate::noise::load_at_start(),
            floor: self.floor_hist().ok().map(|h| (h.p50, h.p99)),
            baselines: self
                .kernels
                .iter()
                .zip(&self.timed)
                .filter_map(|(k, o)| {
                    let t = o.none.as_ref().ok()?;
                    Some((
                        format!("the no-preemption baseline of {}", k.name),
                        t.ns.clone(),
                    ))
                })
                .collect(),
        }
    }

    pub(super) fn floor_hist(&self) -> Result<Hist, String> {
        self.floor
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|v| Hist::from_samples(v))
    }

    pub(super) fn floor_hot_hist(&self) -> Result<Hist, String> {
        self.floor_hot
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|v| Hist::from_samples(v))
    }

    /// Each variant's time-to-preempt histogram, or why there is none.
    pub(super) fn ttp_hist(&self) -> Vec<(&'static Variant, Result<Hist, String>)> {
        self.ttp
            .iter()
            .map(|(v, t)| {
                let h = match self.reason(v.label) {
                    Some(e) => Err(e),
                    None => t
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(|st| Hist::from_stats(st, stats::ttp_name(v.mode))),
                };
                (*v, h)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate() {
        assert_eq!(rotation(3, 0), vec![0, 1, 2]);
        assert_eq!(rotation(3, 1), vec![1, 2, 0]);
        assert_eq!(rotation(3, 5), vec![2, 0, 1]);
        assert_eq!(rotation(0, 3), Vec::<usize>::new());
    }
}
