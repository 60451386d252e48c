//! `--stats`: what the scheduler did, printed to stderr at the end.

use std::fmt::Write;

use preempt_runtime::{RunConfig, RunStats};

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn human(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2}ms", ns as f64 / 1e6)
    } else {
        format!("{:.1}us", ns as f64 / 1e3)
    }
}

pub fn report(cfg: &RunConfig) -> String {
    let s = &cfg.stats;
    let mut out = format!(
        "\npreempt stats ({} Ps, {} mode, quantum {:?})\n",
        cfg.procs, cfg.mode, cfg.quantum
    );
    for (name, c) in [
        ("goroutines created", &s.goroutines_created),
        ("context switches", &s.context_switches),
        ("preemption requests", &s.preempt_requests),
        ("preemptions", &s.preemptions),
        ("P hand-offs", &s.handoffs),
        ("threads created", &s.threads_created),
        ("foreign calls", &s.foreign_calls),
    ] {
        writeln!(out, "  {name:<22} {}", RunStats::get(c)).unwrap();
    }
    let mut ttp = s.ttp();
    ttp.sort_unstable();
    if !ttp.is_empty() {
        writeln!(
            out,
            "  time to preempt        n={} p50={} p99={} max={}",
            ttp.len(),
            human(percentile(&ttp, 0.5)),
            human(percentile(&ttp, 0.99)),
            human(*ttp.last().unwrap_or(&0))
        )
        .unwrap();
    }
    out
}
