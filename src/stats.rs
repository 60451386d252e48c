//! `--stats`: what the scheduler did, printed to stderr at the end.

use preempt_runtime::{Observers, RunConfig};

pub fn report(cfg: &RunConfig, obs: &Observers) -> String {
    let cpus = cfg.cpus.as_ref().map_or(String::new(), |c| {
        format!("pinned to CPUs {c} (--cpus): every thread of the run\n")
    });
    format!(
        "\npreempt stats: {} Ps (from {}), {} preemption, quantum {:?}\n{cpus}{}",
        cfg.procs,
        cfg.procs_from,
        cfg.mode,
        cfg.quantum,
        obs.stats.sched.report()
    )
}
