//! The quantum's end, two ways, in one run: the monitor (its look at every
//! P, then a cross-CPU signal) against each worker's own POSIX timer
//! (`--quantum-timer thread`). The same call-free sleeper runs under each:
//! how late the sleeper wakes (one quantum and the stop), the stop's own
//! time (from the request for the monitor, from the deadline for the
//! timer), and what the timer costs (its `timer_settime` calls per slice,
//! and one call's time measured here).

use std::time::Instant;

use preempt_runtime::preempt::qtimer;
use preempt_runtime::stats;
use serde_json::{json, Value};

use crate::runtime::{percentile, Figure, Row, Suite};

/// Percentile `q` of sorted nanosecond samples, in milliseconds.
fn late_ms(r: &Result<Vec<i64>, String>, q: f64) -> Figure {
    r.clone()
        .and_then(|v| percentile(&v, q).ok_or_else(|| "no samples".to_string()))
        .map(|ns| ns as f64 / 1e6)
}

fn hist_us(st: &Result<Value, String>, name: &str, key: &str) -> Figure {
    st.as_ref().map_err(Clone::clone).and_then(|st| {
        st["details"]["histograms"][stats::json_key(name)][key]
            .as_f64()
            .map(|ns| ns / 1e3)
            .ok_or_else(|| format!("no {name} {key} in the run's stats"))
    })
}

fn count(st: &Value, name: &str) -> f64 {
    st["details"]["counts"][stats::json_key(name)]
        .as_f64()
        .unwrap_or(0.0)
}

/// The time of one `timer_settime` on a thread's own timer, in us (the
/// median of 2,000 calls, each moving an armed timer an hour ahead).
pub fn settime_cost_us() -> Figure {
    let t = qtimer::ThreadTimer::default();
    t.create(libc::SIGURG)
        .map_err(|e| format!("timer_create: {e}"))?;
    let far = stats::monotonic_ns() + 3_600_000_000_000;
    let mut ns: Vec<i64> = (0..2000u64)
        .map(|i| {
            let start = Instant::now();
            t.arm_at(far + i);
            start.elapsed().as_nanos() as i64
        })
        .collect();
    t.arm_at(0);
    ns.sort_unstable();
    percentile(&ns, 50.0)
        .map(|v| v as f64 / 1e3)
        .ok_or_else(|| "no samples".to_string())
}

/// Rows and notes for the comparison. `monitor_late` and `monitor` are the
/// default (monitor) run's lateness and stats, made by the caller.
pub(crate) fn compare(
    s: &mut Suite,
    program: &str,
    sleeps: u64,
    monitor_late: &Result<Vec<i64>, String>,
    monitor: &Result<Value, String>,
    stats_run: impl FnOnce(&mut Suite) -> Result<Value, String>,
) -> (Vec<Row>, Vec<String>) {
    let none = || Err("no peer".to_string());
    let thread_late = s.sleeper_lateness(
        "sleeper-nocall-thread-timer",
        program,
        sleeps,
        &["--quantum-timer", "thread"],
    );
    let thread = stats_run(s);
    let mut rows = Vec::new();
    for (label, q) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        rows.push(Row::new(
            format!("quantum timer: sleeper late {label}, monitor"),
            "ms",
            late_ms(monitor_late, q),
            none(),
        ));
        rows.push(Row::new(
            "  thread timer".to_string(),
            "ms",
            late_ms(&thread_late, q),
            none(),
        ));
    }
    for (label, key) in [("p50", "p50_ns"), ("p99", "p99_ns"), ("max", "max_ns")] {
        rows.push(Row::new(
            format!("quantum timer: stop {label}, monitor (request to stop)"),
            "us",
            hist_us(
                monitor,
                stats::ttp_name(preempt_jit::ir::PreemptMode::Async),
                key,
            ),
            none(),
        ));
        rows.push(Row::new(
            "  thread timer (deadline to stop)".to_string(),
            "us",
            hist_us(&thread, qtimer::DEADLINE_TO_STOP, key),
            none(),
        ));
    }
    let per_slice: Figure = thread.as_ref().map_err(Clone::clone).and_then(|st| {
        let switches = st["details"]["context_switches"].as_f64().unwrap_or(0.0);
        if switches > 0.0 {
            Ok(count(st, qtimer::ARMS) / switches)
        } else {
            Err("no context switch in the run".to_string())
        }
    });
    rows.push(Row::new(
        "quantum timer: timer_settime calls per slice, thread timer",
        "calls",
        per_slice.clone(),
        none(),
    ));
    let cost = settime_cost_us();
    rows.push(Row::new(
        "  one timer_settime, measured here, p50",
        "us",
        cost.clone(),
        none(),
    ));
    let signals: Figure = thread.as_ref().map_err(Clone::clone).and_then(|st| {
        let stops = st["details"]["histograms"][stats::json_key(qtimer::DEADLINE_TO_STOP)]["count"]
            .as_f64()
            .filter(|k| *k > 0.0)
            .ok_or("no stop by the timer")?;
        Ok(count(st, qtimer::FIRED) / stops)
    });
    rows.push(Row::new(
        "  timer signals per stop by the timer",
        "signals",
        signals,
        none(),
    ));
    let mut notes = Vec::new();
    if let Ok(st) = &thread {
        s.json_runs.push(
            json!({"side": "preempt", "bench": "sleeper-nocall-thread-timer-stats", "stats": st}),
        );
    }
    notes.push(decision(
        &late_ms(monitor_late, 50.0),
        &late_ms(&thread_late, 50.0),
        &late_ms(monitor_late, 99.0),
        &late_ms(&thread_late, 99.0),
    ));
    (rows, notes)
}

/// What this run says about the default (`monitor`): the thread timer would
/// be kept only if it wins at both p50 and p99 of the sleeper's lateness.
fn decision(m50: &Figure, t50: &Figure, m99: &Figure, t99: &Figure) -> String {
    match (m50, t50, m99, t99) {
        (Ok(m50), Ok(t50), Ok(m99), Ok(t99)) => {
            let wins = t50 < m50 && t99 <= m99;
            format!(
                "quantum timer: the sleeper woke {:+.3} ms at p50 and {:+.3} ms at p99 with the thread timer against the monitor; {}",
                t50 - m50,
                t99 - m99,
                if wins {
                    "in this run the thread timer wins at both; the default is `monitor` (docs/asynchronous-preemption.md says why)"
                } else {
                    "in this run it does not win at both; the default is `monitor` (docs/asynchronous-preemption.md says why)"
                }
            )
        }
        _ => "quantum timer: not compared (a run failed)".to_string(),
    }
}
