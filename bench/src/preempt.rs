//! The asynchronous-preemption benchmarks, in one run:
//!
//! - **the signal floor** ([`crate::floor`]): `tgkill` to handler entry on
//!   a thread spinning in user code, in this process;
//! - **time-to-preempt** under `--preempt async`: from the monitor's
//!   request to the goroutine's arrival in the stub, for a call-free
//!   spinner (the runtime's own histogram, `preempt run --stats-json`),
//!   set against the floor;
//! - **a sleeper behind a call-free spinner** at procs 1 with a 10 ms
//!   quantum, next to Go's same program with asynchronous preemption;
//! - **stop-the-world stopping time** with 1 and 4 call-free spinners on
//!   2 Ps, next to Go's (runtime/metrics `/sched/pauses/stopping/gc`),
//!   from the stopper holding a P to every P stopped on both sides, and
//!   the time preempt's stopper took to get that P;
//! - **overhead on tight loops**: the kernels under async preemption
//!   (a signal every quantum) against no preemption at all, in this
//!   process, interleaved.
//!
//! Like the runtime suite, PIR programs run as fresh `preempt run`
//! processes and nothing here asserts a timing: the goals are printed next
//! to the figures, met or missed.

use std::time::Duration;

use preempt_jit::ir::PreemptMode;
use preempt_runtime::{stats, RunConfig};
use serde_json::{json, Value};

use crate::doc::Doc;
use crate::kernels::{self, Engine};
use crate::runtime::{self, percentile, Figure, Goal, Options, Row, Suite};

pub const SLEEPER_NOCALL: &str = include_str!("preempt/sleeper-nocall.pir");
/// `gc` in a loop next to call-free spinners, at 2 Ps.
pub const STW: &str = include_str!("preempt/stw.pir");

/// The suite's result.
#[derive(Clone, Debug)]
pub struct Report {
    pub text: String,
    pub json: Value,
    /// The text's blocks, for the HTML page.
    pub doc: Doc,
}

/// Go's side of a row Go has no such figure for.
fn go_has_none() -> Figure {
    Err(runtime::no_twin("Go has no such figure"))
}

fn us(ns: f64) -> f64 {
    ns / 1e3
}

/// Nearest-rank percentiles of samples (ns), as f64.
fn pct(samples: &[u64], p: f64) -> Option<f64> {
    let mut v: Vec<i64> = samples.iter().map(|&x| x as i64).collect();
    v.sort_unstable();
    percentile(&v, p).map(|x| x as f64)
}

/// Percentile `p` of a Go runtime/metrics histogram (upper bounds in
/// seconds, -1 for the open last bucket), in ns, interpolated linearly
/// within its bucket. Go's time histograms keep four buckets per power of
/// two, so a bucket spans up to a fifth of its upper bound; taking the
/// bound itself would round Go's figure up by as much.
pub(crate) fn go_histogram_pct(v: &Value, p: f64) -> Result<f64, String> {
    let bounds: Vec<f64> = v["stop_bounds_s"]
        .as_array()
        .ok_or("no stop_bounds_s")?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let counts: Vec<u64> = v["stop_counts"]
        .as_array()
        .ok_or("no stop_counts")?
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Err("Go recorded no stop".into());
    }
    let rank = (p / 100.0) * total as f64;
    let mut acc = 0;
    let mut lower = 0.0;
    for (b, c) in bounds.iter().zip(&counts) {
        if *c > 0 && (acc + c) as f64 >= rank {
            if *b < 0.0 {
                return Err("in Go's open last bucket".into());
            }
            let within = ((rank - acc as f64) / *c as f64).clamp(0.0, 1.0);
            return Ok((lower + (b - lower) * within) * 1e9);
        }
        acc += c;
        lower = b.max(0.0);
    }
    Err("rank past the histogram".into())
}

/// A histogram's percentile from `preempt run --stats-json` output, in ns.
fn stats_pct(stats: &Value, name: &str, key: &str) -> Result<f64, String> {
    stats["details"]["histograms"][stats::json_key(name)][key]
        .as_f64()
        .ok_or_else(|| format!("no {name} {key} in the run's stats"))
}

/// Runs `src` with `--stats-json` and returns the stats.
fn run_with_stats(
    s: &mut Suite,
    name: &str,
    src: &str,
    n: u64,
    flags: &[&str],
) -> Result<Value, String> {
    let dir = s.opts.paths.peers_dir().join("pir");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}.stats.json"));
    let path_s = path.display().to_string();
    let mut all = vec!["--stats-json", path_s.as_str()];
    all.extend_from_slice(flags);
    s.run_pir_with(name, &runtime::with_sizes(src, n, None), &all)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Async-preemption overhead on `kernel`: every run's (async ns/unit,
/// none ns/unit), `reps` interleaved runs of about `target` each (the
/// figure is the best of each), and the kernel's unit of work.
fn overhead(
    kernel: &str,
    target: Duration,
    reps: usize,
) -> Result<(Vec<f64>, Vec<f64>, &'static str), String> {
    let k = kernels::all()
        .into_iter()
        .find(|k| k.name == kernel)
        .ok_or_else(|| format!("no kernel {kernel}"))?;
    // One P: the kernel is one goroutine, and a second P would only let
    // another thread take it over after each preemption.
    let cfg = |mode, quantum| RunConfig {
        procs: 1,
        mode,
        quantum,
        ..kernels::bench_config(format!("{kernel}.pir"))
    };
    // No preemption at all: a cooperative request never reaches a
    // call-free loop, and an hour-long quantum makes none.
    let none = cfg(PreemptMode::Coop, Duration::from_secs(3600));
    let async_ = cfg(PreemptMode::Async, Duration::from_millis(10));
    let mut n = k.start;
    loop {
        let (_, ns) = kernels::run_with(&k, Engine::Jit, n, &none);
        if ns >= target.as_nanos() as f64 / 4.0 {
            n = (n as f64 * target.as_nanos() as f64 / ns) as i64;
            break;
        }
        n = (k.grow)(n);
    }
    let (mut all_a, mut all_n) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let (ra, a) = kernels::run_with(&k, Engine::Jit, n, &async_);
        let (rn, b) = kernels::run_with(&k, Engine::Jit, n, &none);
        if ra != rn {
            return Err(format!("{kernel}: async computed {ra}, none {rn}"));
        }
        all_a.push(a / (k.work)(n));
        all_n.push(b / (k.work)(n));
    }
    Ok((all_a, all_n, k.unit))
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Measures everything and builds the report.
pub fn run(opts: Options, quick: bool) -> Report {
    let mut s = Suite::new(opts);
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut seen = crate::noise::Seen {
        load: crate::noise::load_at_start(),
        ..Default::default()
    };
    let (floor_n, sleeps, stw_n, target, reps) = if quick {
        (50, 5, 5, Duration::from_millis(30), 1)
    } else {
        (2000, 200, 200, Duration::from_millis(500), 5)
    };

    // The floor, here, before anything else runs in this process: a
    // thread-directed signal to a thread spinning in user code, sent from
    // another thread, once at the monitor's cadence (the spinner has run a
    // whole 10 ms quantum since the last signal: the runtime's case, and
    // the floor its goals compare with) and once back to back (200 us
    // apart). On a VM the two differ by tens of microseconds.
    crate::progress::step("signal floor");
    let floor = crate::floor::measure(libc::SIGURG, floor_n / 5, Duration::from_millis(10));
    let hot = crate::floor::measure(libc::SIGURG, floor_n, Duration::from_micros(200));
    let pct_of = |r: &Result<Vec<u64>, String>, p| -> Figure {
        r.as_ref()
            .map_err(Clone::clone)
            .and_then(|v| pct(v, p).ok_or_else(|| "no samples".to_string()))
            .map(us)
    };
    let floor_p = |p| pct_of(&floor, p);
    if let (Ok(p50), Ok(p99)) = (floor_p(50.0), floor_p(99.0)) {
        seen.floor = Some((p50 * 1e3, p99 * 1e3));
    }
    for (name, r) in [
        (
            "signal floor, 10 ms apart (the monitor's cadence): p50",
            &floor,
        ),
        ("signal floor, 200 us apart: p50", &hot),
    ] {
        rows.push(Row::new(name, "us", pct_of(r, 50.0), go_has_none()));
        rows.push(Row::new("  p99", "us", pct_of(r, 99.0), go_has_none()));
    }

    // Time-to-preempt and the sleeper, from one run of the call-free
    // sleeper (every preemption of its spinner is asynchronous).
    let stats = run_with_stats(&mut s, "sleeper-nocall", SLEEPER_NOCALL, sleeps, &[]);
    let ttp = |key| -> Figure {
        stats
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|st| stats_pct(st, "time-to-preempt (async)", key))
            .map(us)
    };
    let (t50, t99) = (ttp("p50_ns"), ttp("p99_ns"));
    let limit = |f: &Figure, k: f64| f.as_ref().map(|v| v * k).unwrap_or(f64::NAN);
    rows.push(
        Row::new(
            "time-to-preempt, async, call-free loop: p50",
            "us",
            t50,
            go_has_none(),
        )
        .goal(Goal::AtMost(limit(&floor_p(50.0), 1.0), "<= 1.0x floor")),
    );
    rows.push(
        Row::new("  p99", "us", t99, go_has_none())
            .goal(Goal::AtMost(limit(&floor_p(99.0), 3.0), "<= 3x floor")),
    );
    // The same program with the handler redirecting and returning, as
    // Go's does: what the hand-off saves, measured beside it.
    let redirected = run_with_stats(
        &mut s,
        "sleeper-nocall-redirect",
        SLEEPER_NOCALL,
        sleeps,
        &["--async-stop", "redirect"],
    );
    let p50_of = |r: &Result<Value, String>, name: &str| -> Figure {
        r.as_ref()
            .map_err(Clone::clone)
            .and_then(|st| stats_pct(st, name, "p50_ns"))
            .map(us)
    };
    for (label, name, goal) in [
        (
            "  of which request to handler, p50",
            stats::TTP_DELIVERY,
            None,
        ),
        (
            "  of which handler to scheduler, p50",
            stats::TTP_STUB,
            Some(Goal::AtMost(1.0, "< 1 us")),
        ),
        (
            "    the handler, its decision to leaving, p50",
            stats::TTP_HANDLER,
            None,
        ),
        (
            "    leaving the handler to the scheduler, p50",
            stats::TTP_LEAVE,
            None,
        ),
    ] {
        let row = Row::new(label, "us", p50_of(&stats, name), go_has_none());
        rows.push(match goal {
            Some(g) => row.goal(g),
            None => row,
        });
    }
    if let Ok(st) = &redirected {
        s.json_runs
            .push(json!({"side": "preempt", "bench": "sleeper-nocall-redirect", "stats": st}));
    }
    rows.push(Row::new(
        "  handler to scheduler, redirect and sigreturn (Go's way), p50",
        "us",
        p50_of(&redirected, stats::TTP_STUB),
        go_has_none(),
    ));
    // The same stop at a 200 us quantum, against the floor at the same
    // cadence: after a 10 ms spin on this kind of VM the handler's path
    // finds its code and data gone from the caches; 200 us later they are
    // still there. The pair separates what the path's instructions cost
    // from what refilling the caches costs.
    let warm = run_with_stats(
        &mut s,
        "sleeper-nocall-200us",
        SLEEPER_NOCALL,
        sleeps,
        &["--quantum", "200us"],
    );
    let hot_p50 = pct_of(&hot, 50.0);
    rows.push(
        Row::new(
            "time-to-preempt at a 200 us quantum (warm caches): p50",
            "us",
            p50_of(&warm, stats::ttp_name(PreemptMode::Async)),
            go_has_none(),
        )
        .goal(Goal::AtMost(
            limit(&hot_p50, 1.0),
            "<= 1.0x floor 200 us apart",
        )),
    );
    rows.push(
        Row::new(
            "  of which handler to scheduler, p50",
            "us",
            p50_of(&warm, stats::TTP_STUB),
            go_has_none(),
        )
        .goal(Goal::AtMost(1.0, "< 1 us")),
    );
    if let Ok(st) = &warm {
        s.json_runs
            .push(json!({"side": "preempt", "bench": "sleeper-nocall-200us", "stats": st}));
    }
    let per_stop = |r: &Result<Value, String>| -> Figure {
        let st = r.as_ref().map_err(Clone::clone)?;
        let sent = st["details"]["signals_sent"].as_f64();
        let stops = st["details"]["histograms"]
            [stats::json_key(stats::ttp_name(PreemptMode::Async))]["count"]
            .as_f64();
        match (sent, stops) {
            (Some(n), Some(k)) if k > 0.0 => Ok(n / k),
            _ => Err("no asynchronous preemption in the run".to_string()),
        }
    };
    rows.push(
        Row::new(
            "signals sent per asynchronous preemption",
            "signals",
            per_stop(&stats),
            go_has_none(),
        )
        .goal(Goal::AtMost(1.05, "<= 1.05")),
    );
    if let Ok(st) = &stats {
        notes.push(format!(
            "time-to-preempt over {} asynchronous preemptions; {} signals sent",
            st["details"]["histograms"][stats::json_key(stats::ttp_name(PreemptMode::Async))]
                ["count"],
            st["details"]["signals_sent"]
        ));
        s.json_runs
            .push(json!({"side": "preempt", "bench": "sleeper-nocall", "stats": st}));
    }

    // The sleeper's lateness: preempt's from the same kind of run (its
    // own stdout), Go's with asynchronous preemption (the default).
    let p = s.sleeper_lateness("sleeper-nocall", SLEEPER_NOCALL, sleeps, &[]);
    let g = s.go_sleeper(sleeps, "", &["-nocall"]);
    let late = |r: &Result<Vec<i64>, String>, q| -> Figure {
        r.clone()
            .and_then(|v| percentile(&v, q).ok_or_else(|| "no samples".to_string()))
            .map(|ns| ns as f64 / 1e6)
    };
    for (label, q) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        let name = if q == 50.0 {
            "sleep 1 ms behind a call-free spinner: late p50".to_string()
        } else {
            format!("  late {label}")
        };
        let row = Row::new(name, "ms", late(&p, q), late(&g, q));
        rows.push(if q == 99.0 {
            row.goal(Goal::AtMost(11.0, "<= 1.1x quantum"))
        } else {
            row
        });
    }

    // The quantum's end: the monitor against each worker's own timer.
    crate::progress::step("quantum timer");
    let (qrows, qnotes) = crate::qtimer::compare(&mut s, SLEEPER_NOCALL, sleeps, &p, &stats, |s| {
        run_with_stats(
            s,
            "sleeper-nocall-thread-timer-stats",
            SLEEPER_NOCALL,
            sleeps,
            &["--quantum-timer", "thread"],
        )
    });
    rows.extend(qrows);
    notes.extend(qnotes);

    // Stop-the-world stopping time, 2 Ps, 1 and 4 call-free spinners.
    for k in [1usize, 4] {
        let go = s
            .go_run_with("stw", &["-spinners", &k.to_string()], stw_n, 2, "", false)
            .and_then(|(v, _)| Ok((go_histogram_pct(&v, 50.0)?, go_histogram_pct(&v, 99.0)?)));
        let p = stw(&mut s, k, stw_n);
        for (i, label) in ["p50", "p99"].iter().enumerate() {
            let pf: Figure = p.clone().map(|v| us(if i == 0 { v.0 } else { v.1 }));
            let gf: Figure = go.clone().map(|v| us(if i == 0 { v.0 } else { v.1 }));
            let name = if i == 0 {
                format!("stop-the-world stopping, {k} spinner(s), 2 Ps: {label}")
            } else {
                format!("  {label}")
            };
            let row = Row::new(name, "us", pf, gf.clone());
            // The goal is read at p50, where it is framed (Go's
            // stopping time against the signal floor); p99 is shown with
            // its ratio.
            rows.push(if i == 0 {
                let lim = gf.as_ref().map(|g| g / 2.0).unwrap_or(f64::NAN);
                row.goal(Goal::AtMost(lim, "<= Go/2"))
            } else {
                row
            });
        }
        if let Ok((_, _, own50, own99)) = p {
            rows.push(Row::new(
                "  before it: the stopper's own P, p50".to_string(),
                "us",
                Ok(us(own50)),
                go_has_none(),
            ));
            rows.push(Row::new(
                "  p99".to_string(),
                "us",
                Ok(us(own99)),
                go_has_none(),
            ));
        }
    }
    notes.push(
        "stop-the-world stopping runs from the stopper holding a P to every P stopped, on both \
         sides (Go stops the world from a goroutine on a P); preempt's stopper gets its P first \
         (an idle one, or the first to reach a scheduling point once a spinner is asked), \
         timed apart as \"the stopper's own P\""
            .to_string(),
    );

    // The JVM's time to reach a safepoint for a GC, same spinners.
    for k in [1usize, 4] {
        match jvm_stw(&s, k, stw_n) {
            Ok((p50, p99, count, version)) => {
                notes.push(format!(
                    "JVM ({version}, G1, System.gc(), -Xlog:safepoint \"Reaching safepoint\"), \
                     {k} spinner(s), 2 CPUs: p50 {:.1} us, p99 {:.1} us over {count} safepoints",
                    us(p50),
                    us(p99)
                ));
                s.json_runs
                    .push(json!({"side": "jvm", "bench": "stw", "spinners": k,
                    "version": version, "reaching_p50_ns": p50, "reaching_p99_ns": p99,
                    "safepoints": count}));
            }
            Err(e) => notes.push(format!(
                "JVM stop-the-world, {k} spinner(s): not measured: {e}"
            )),
        }
    }

    // Overhead of asynchronous preemption on tight loops.
    for kernel in ["sum", "nested"] {
        crate::progress::step(&format!("async overhead, {kernel} kernel"));
        let r = overhead(kernel, target, reps);
        let fig: Figure = r
            .as_ref()
            .map(|(a, n, _)| (best(a) / best(n) - 1.0) * 100.0)
            .map_err(Clone::clone);
        rows.push(
            Row::new(
                format!("async overhead, {kernel} kernel (quantum 10 ms)"),
                "%",
                fig,
                go_has_none(),
            )
            .goal(Goal::Below(1.0, "< 1%")),
        );
        if let Ok((a, n, unit)) = r {
            seen.baselines.push((
                format!("the no-preemption baseline of the {kernel} kernel"),
                n.clone(),
            ));
            s.json_runs.push(
                json!({"side": "preempt", "bench": "overhead", "kernel": kernel, "unit": unit,
                "async_ns_per_unit": best(&a), "none_ns_per_unit": best(&n),
                "async_samples": a, "none_samples": n}),
            );
        }
    }

    let mut doc = Doc::new("preempt");
    doc.title(
        format!(
            "preemption: preempt (jit, --preempt async) vs {}, same run",
            s.go_name()
        ),
        s.opts.quick,
    );
    doc.line(format!("machine: {}", crate::machine_description()));
    if let (Err(e), true) = (&s.go, s.opts.go) {
        doc.warning(format!("Go is not measured: {e}"));
    }
    let busy = crate::noise::warnings(&seen);
    for w in &busy {
        doc.warning(w.clone());
    }
    doc.table(runtime::table(&rows, !busy.is_empty()));
    runtime::absent_notes(&rows, &mut notes);
    for n in &notes {
        doc.note(n.clone());
    }
    let text = doc.text();
    let json = json!({
        "machine": crate::machine_description(),
        "floor_ns": floor.as_ref().ok(),
        "floor_200us_apart_ns": hot.as_ref().ok(),
        "rows": runtime::rows_json(&rows),
        "notes": notes,
        "runs": s.json_runs,
    });
    Report { text, json, doc }
}

/// preempt's stop-the-world stopping time (p50, p99 in ns), and the time
/// the stopper took to get its own P before (p50, p99), with `k`
/// call-free spinners on 2 Ps: `n` collections, two stops each.
fn stw(s: &mut Suite, k: usize, n: u64) -> Result<(f64, f64, f64, f64), String> {
    let src = STW.replace(
        "global @spinners: i64 = 1",
        &format!("global @spinners: i64 = {k}"),
    );
    let st = run_with_stats(s, &format!("stw-{k}"), &src, n, &[])?;
    let p50 = stats_pct(&st, "stop-the-world latency", "p50_ns")?;
    let p99 = stats_pct(&st, "stop-the-world latency", "p99_ns")?;
    let own = "stop-the-world: the stopper's own P";
    let (own50, own99) = (
        stats_pct(&st, own, "p50_ns")?,
        stats_pct(&st, own, "p99_ns")?,
    );
    s.json_runs
        .push(json!({"side": "preempt", "bench": "stw", "spinners": k, "stats": st}));
    Ok((p50, p99, own50, own99))
}

/// The JVM's "Reaching safepoint" times (p50, p99 in ns, the count, the
/// version) for the GC safepoints of `bench/peers/jvm/Stw.java` with `k`
/// spinning threads and `n` `System.gc()` calls, on 2 CPUs.
fn jvm_stw(s: &Suite, k: usize, n: u64) -> Result<(f64, f64, usize, String), String> {
    crate::progress::step(&format!("JVM stop-the-world, {k} spinner(s)"));
    let src = s.opts.paths.root.join("bench/peers/jvm/Stw.java");
    let mut cmd = std::process::Command::new("java");
    cmd.args(["-Xlog:safepoint", "-XX:ActiveProcessorCount=2"])
        .arg(&src)
        .args([k.to_string(), n.to_string()]);
    let f = crate::process::run(&mut cmd, Duration::from_secs(300)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "the JVM is absent (no java on the PATH)".to_string()
        } else {
            format!("cannot run java: {e}")
        }
    })?;
    if f.status != Some(0) {
        return Err(format!(
            "java exited with {:?}: {}",
            f.status,
            f.stderr.lines().last().unwrap_or("")
        ));
    }
    let mut reach: Vec<i64> = f
        .stdout
        .lines()
        .skip_while(|l| *l != "stw-begin")
        .take_while(|l| *l != "stw-end")
        .filter(|l| l.contains("Safepoint \"G1"))
        .filter_map(|l| {
            let rest = l.split("Reaching safepoint: ").nth(1)?;
            rest.split(' ').next()?.parse().ok()
        })
        .collect();
    reach.sort_unstable();
    let (p50, p99) = (
        percentile(&reach, 50.0).ok_or("no GC safepoint in the log")?,
        percentile(&reach, 99.0).ok_or("no GC safepoint in the log")?,
    );
    let version = std::process::Command::new("java")
        .arg("-version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .map(|l| l.replace('"', ""))
        })
        .unwrap_or_else(|| "java".into());
    Ok((p50 as f64, p99 as f64, reach.len(), version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_percentiles_interpolate_within_their_bucket() {
        // Buckets (0, 1], (1, 2], (2, 3] µs and an open last one.
        let v = json!({
            "stop_bounds_s": [1e-6, 2e-6, 3e-6, -1.0],
            "stop_counts": [0, 10, 10, 0],
        });
        let at = |p| go_histogram_pct(&v, p).unwrap().round();
        assert_eq!(at(25.0), 1500.0);
        assert_eq!(at(50.0), 2000.0);
        assert_eq!(at(99.0), 2980.0);
        let open = json!({"stop_bounds_s": [1e-6, -1.0], "stop_counts": [1, 1]});
        assert!(go_histogram_pct(&open, 99.0).is_err());
        let none = json!({"stop_bounds_s": [1e-6], "stop_counts": [0]});
        assert!(go_histogram_pct(&none, 50.0).is_err());
    }
}
