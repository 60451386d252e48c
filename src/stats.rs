//! `--stats`: what the scheduler did, printed to stderr at the end.

use preempt_runtime::{Observers, RunConfig};

pub fn report(cfg: &RunConfig, obs: &Observers) -> String {
    format!(
        "\npreempt stats: {} Ps (from {}), {} preemption, quantum {:?}\n{}",
        cfg.procs,
        cfg.procs_from,
        cfg.mode,
        cfg.quantum,
        obs.stats.sched.report()
    )
}
