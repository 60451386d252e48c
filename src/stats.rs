//! `--stats`: what the scheduler did, printed to stderr at the end.

use preempt_runtime::RunConfig;

pub fn report(cfg: &RunConfig) -> String {
    format!(
        "\npreempt stats: {} Ps, {} preemption, quantum {:?}\n{}",
        cfg.procs,
        cfg.mode,
        cfg.quantum,
        cfg.stats.sched.report()
    )
}
