//! The report: the four tables as text, the notes and failures beside
//! them, and every figure and raw run as JSON.

use preempt_jit::ir::PreemptMode;
use preempt_runtime::stats;
use serde_json::{json, Map, Value};

use super::measure::{own_code, Measured};
use super::stats::{overhead_pct, Hist};
use super::{ANCHORS, QUANTUM, VARIANTS};
use crate::doc::{Doc, Table};

/// A table of `head` and `rows` (see [`Table`]).
fn table(head: &[&str], rows: Vec<Vec<String>>) -> Table {
    Table {
        rows,
        ..Table::new(head)
    }
}

fn signed_pct(v: f64) -> String {
    format!("{v:+.2}%")
}

fn us(ns: f64) -> String {
    if ns.is_finite() {
        format!("{:.1}", ns / 1e3)
    } else {
        "-".to_string()
    }
}

fn json_map<K: ToString>(items: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Object(
        items
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<String, Value>>(),
    )
}

fn fig_json<T: Clone + Into<Value>>(r: &Result<T, String>) -> Value {
    match r {
        Ok(v) => v.clone().into(),
        Err(e) => json!({ "unavailable": e }),
    }
}

/// The printed report under construction.
#[derive(Default)]
pub(super) struct Out {
    pub(super) doc: Doc,
    pub(super) notes: Vec<String>,
    /// Figures that were asked for and not obtained, with why.
    pub(super) failures: Vec<String>,
}

impl Measured {
    /// 1. Overhead, timed.
    pub(super) fn timed_table(&self, out: &mut Out) {
        let names = self.kernel_names();
        out.doc.title(
            format!(
                "overhead against no preemption at all (coop code, no stop), timed: fastest of \
                 {} (interleaved) of ~{} ms each, a fresh process per run",
                crate::runs(self.plan.rounds),
                self.plan.target.as_millis()
            ),
            self.plan.quick,
        );
        let mut head = vec!["mode"];
        head.extend(&names);
        let mut rows = vec![std::iter::once("none: ns/unit".to_string())
            .chain(self.timed.iter().map(|o| match &o.none {
                Ok(t) => format!("{:.3}", t.best() / o.work),
                Err(_) => "-".into(),
            }))
            .collect::<Vec<_>>()];
        for v in VARIANTS {
            if let Some(r) = self.not_measured(v.label) {
                rows.push(r);
                continue;
            }
            let mut r = vec![v.label.to_string()];
            for (k, o) in names.iter().zip(&self.timed) {
                match o.pct(v.label) {
                    Ok(p) => r.push(signed_pct(p)),
                    Err(e) => {
                        r.push("-".into());
                        if o.none.is_ok() {
                            out.failures.push(format!("{k} under {}: {e}", v.label));
                        }
                    }
                }
            }
            rows.push(r);
        }
        out.doc.table(table(&head, rows));
        for (k, o) in names.iter().zip(&self.timed) {
            if let Err(e) = &o.none {
                out.failures.push(format!("{k}: {e}"));
            }
        }
        let stops: Vec<String> = self
            .available()
            .map(|v| {
                let per: Vec<String> = self
                    .timed
                    .iter()
                    .map(|o| {
                        o.timing(v.label)
                            .map(|t| format!("{:.0}", t.stops_per_s()))
                            .unwrap_or_else(|_| "-".into())
                    })
                    .collect();
                format!("{} {}", v.label, per.join("/"))
            })
            .collect();
        if !stops.is_empty() {
            out.notes.push(format!(
                "stops per second of kernel time ({}; a run's count includes a stop at the \
                 `now` after the kernel): {}",
                names.join("/"),
                stops.join("; ")
            ));
        }
        out.notes.push(
            "coop never stops a call-free kernel: there its code and its runs are the \
             baseline's, so its figures are this machine's run-to-run noise; each round moves \
             every configuration's code by the same 0-56 bytes (a padding function), because \
             the alignment of a loop this small moves its time by up to 2x on this CPU"
                .into(),
        );
    }

    /// 2. Overhead, counted.
    pub(super) fn counted_table(&self, out: &mut Out) {
        let version = match &self.valgrind {
            Ok(v) => v,
            Err(e) => {
                out.doc
                    .title(format!("instruction counts: not measured: {e}"), false);
                out.notes.push(format!("instruction counts skipped: {e}"));
                return;
            }
        };
        let names = self.counted_names();
        out.doc.title(
            format!(
                "overhead against no preemption at all, counted: instructions per unit of work \
                 ({version} callgrind, whole process, two sizes; no stop requested)"
            ),
            self.plan.quick,
        );
        let mut head = vec!["mode"];
        head.extend(&names);
        let mut rows = vec![std::iter::once("none: instructions/unit".to_string())
            .chain(names.iter().map(|k| {
                self.count(k, "coop")
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_else(|_| "-".into())
            }))
            .collect::<Vec<_>>()];
        for v in own_code().filter(|v| v.label != "coop") {
            if let Some(r) = self.not_measured(v.label) {
                rows.push(r);
                continue;
            }
            let mut r = vec![v.label.to_string()];
            for k in &names {
                match self.count_pct(k, v.label) {
                    Ok(p) => r.push(signed_pct(p)),
                    Err(e) => {
                        r.push("-".into());
                        out.failures
                            .push(format!("instructions, {k} under {}: {e}", v.label));
                    }
                }
            }
            rows.push(r);
        }
        out.doc.table(table(&head, rows));
        out.notes.push(
            "instruction counts request no stop (one-hour quantum): under valgrind a 10 ms \
             quantum would stop a loop every few thousand iterations instead of every few \
             million, and callgrind aborts on the asynchronous path's redirected signal return; \
             they are the cost of the code each mechanism runs (trap/mprotect runs trap's), the \
             stops' cost is in the timed table"
                .into(),
        );
    }

    /// 3. Time-to-preempt, against the floor.
    pub(super) fn ttp_table(&self, out: &mut Out) {
        out.doc.title(
            format!(
                "time-to-preempt: a spinner at procs 1 stopped by the monitor's quantum, {} stops \
                 per mechanism, request to arrival in the scheduler; the signal floor measured \
                 here",
                self.plan.sleeps
            ),
            self.plan.quick,
        );
        let floor = self.floor_hist().ok();
        let head = [
            "",
            "count",
            "p50 us",
            "p99 us",
            "p99.9 us",
            "max us",
            "p50/floor",
            "p99/floor",
        ];
        let row = |name: String, h: &Hist, ratios: bool| -> Vec<String> {
            let ratio = |v: f64, f: Option<f64>| match (ratios, f) {
                (true, Some(f)) if f > 0.0 => format!("{:.2}x", v / f),
                _ => "-".to_string(),
            };
            vec![
                name,
                h.count.to_string(),
                us(h.p50),
                us(h.p99),
                us(h.p99_9),
                us(h.max),
                ratio(h.p50, floor.map(|f| f.p50)),
                ratio(h.p99, floor.map(|f| f.p99)),
            ]
        };
        let mut rows = Vec::new();
        for (name, h) in [
            ("signal floor, 10 ms apart", self.floor_hist()),
            ("signal floor, 200 us apart", self.floor_hot_hist()),
        ] {
            rows.push(match h {
                Ok(h) => row(name.to_string(), &h, false),
                Err(e) => vec![name.to_string(), format!("not measured: {e}")],
            });
        }
        for (v, h) in self.ttp_hist() {
            let label = if v.mode == PreemptMode::Coop {
                format!("{} (spinner calls)", v.label)
            } else {
                v.label.to_string()
            };
            rows.push(match h {
                Ok(h) => row(label, &h, true),
                Err(e) => vec![label, format!("not measured: {e}")],
            });
        }
        out.doc.table(table(&head, rows));
        out.notes.push(
            "coop cannot stop a loop without a call or a runtime operation: its time-to-preempt \
             is measured on the same spinner calling a function (@step), stopped at that \
             function's entry check; every other mechanism's spinner has no call"
                .into(),
        );
    }

    /// 4. Code size and arming; returns the arming figures for the JSON.
    pub(super) fn code_table(&self, out: &mut Out) -> Value {
        out.doc.title(
            format!(
                "code and arming: bytes of the {} kernel programs' functions and of their whole \
                 modules; what arming a goroutine for a stop, and disarming it, cost the \
                 requester",
                self.kernels.len()
            ),
            self.plan.quick,
        );
        let head = [
            "mode",
            "code bytes",
            "vs coop",
            "module bytes",
            "arm p50 ns",
            "arm p99 ns",
            "disarm p50 ns",
            "disarm p99 ns",
        ];
        let mut rows = Vec::new();
        let mut arming = Map::new();
        for (v, t) in &self.ttp {
            if let Some(r) = self.not_measured(v.label) {
                rows.push(r);
                continue;
            }
            let mut r = vec![v.label.to_string()];
            match self.size(v.same_code_as.unwrap_or(v.label)) {
                Ok((f, m)) => {
                    let vs = self
                        .size("coop")
                        .ok()
                        .filter(|_| v.mode != PreemptMode::Coop)
                        .and_then(|(c, _)| overhead_pct(f as f64, c as f64))
                        .map(signed_pct)
                        .unwrap_or_else(|| "-".into());
                    r.extend([f.to_string(), vs, m.to_string()]);
                }
                Err(e) => {
                    r.extend(["-".to_string(), "-".into(), "-".into()]);
                    out.failures.push(format!("code size, {}: {e}", v.label));
                }
            }
            match stats::arm_names(v.mode) {
                None => r.extend(["n/a".to_string(), "n/a".into(), "n/a".into(), "n/a".into()]),
                Some((arm, disarm)) => {
                    let mut js = Map::new();
                    for name in [arm, disarm] {
                        let h = t
                            .as_ref()
                            .map_err(Clone::clone)
                            .and_then(|st| Hist::from_stats(st, name));
                        match h {
                            Ok(h) => {
                                r.extend([format!("{:.0}", h.p50), format!("{:.0}", h.p99)]);
                                js.insert(name.to_string(), h.json());
                            }
                            Err(e) => {
                                r.extend(["-".to_string(), "-".into()]);
                                out.failures.push(format!("{}: {e}", v.label));
                            }
                        }
                    }
                    arming.insert(v.label.to_string(), Value::Object(js));
                }
            }
            rows.push(r);
        }
        out.doc.table(table(&head, rows));
        out.notes.push(
            "coop and async arm nothing but the goroutine's request flag (async then signals \
             its thread: the signal is in time-to-preempt), so they have no arm/disarm figures; \
             trap/mprotect runs trap's code"
                .into(),
        );
        Value::Object(arming)
    }

    pub(super) fn json(&self, arming: Value, notes: &[String]) -> Value {
        let hist = |h: Result<Hist, String>| h.ok().map(|h| h.json());
        json!({
            "suite": "mechanisms",
            "machine": crate::machine_description(),
            "quantum_ns": QUANTUM.as_nanos() as u64,
            "procs": 1,
            "plan": {"floor_samples": self.plan.floor, "floor_hot_samples": self.plan.floor_hot,
                     "sleeps": self.plan.sleeps, "target_ms": self.plan.target.as_millis() as u64,
                     "rounds": self.plan.rounds, "counted": self.plan.counted,
                     "counted_units": self.plan.counted_units},
            "variants": json_map(VARIANTS.iter().map(|v| (v.label, json!({
                "mode": v.mode.name(), "flags": v.flags, "same_code_as": v.same_code_as,
                "available": self.reason(v.label).is_none(), "reason": self.reason(v.label),
            })))),
            "floor": {
                "10ms_apart": hist(self.floor_hist()),
                "200us_apart": hist(self.floor_hot_hist()),
                "samples_10ms_apart_ns": self.floor.as_ref().ok(),
                "samples_200us_apart_ns": self.floor_hot.as_ref().ok(),
            },
            "time_to_preempt": json_map(self.ttp_hist().into_iter()
                .map(|(v, h)| (v.label, fig_json(&h.map(|h| h.json()))))),
            "overhead": json_map(self.kernels.iter().zip(&self.timed).map(|(k, o)| (k.name, json!({
                "unit": k.unit, "n": o.n, "work": o.work,
                "none": fig_json(&o.none.as_ref().map(|t| json!({
                    "ns": t.ns, "best_ns_per_unit": t.best() / o.work})).map_err(Clone::clone)),
                "variants": json_map(o.variants.iter().map(|(l, t)| (*l, fig_json(
                    &t.as_ref().map(|t| json!({
                        "ns": t.ns, "stops": t.stops, "best_ns_per_unit": t.best() / o.work,
                        "overhead_pct": o.pct(l).ok(), "stops_per_s": t.stops_per_s()}))
                    .map_err(Clone::clone))))),
            })))),
            "instructions_per_unit": self.counted.iter().map(|(k, l, r)| json!({
                "kernel": k, "variant": l, "value": fig_json(r),
                "overhead_pct": self.count_pct(k, l).ok(),
            })).collect::<Vec<_>>(),
            "valgrind": fig_json(&self.valgrind),
            "code_size": json_map(self.sizes.iter().map(|(l, r)| (*l, fig_json(&r.as_ref()
                .map(|(f, m)| json!({"function_bytes": f, "module_bytes": m}))
                .map_err(Clone::clone))))),
            "arming": arming,
            "anchors": ANCHORS,
            "notes": notes,
            "runs": self.runs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanisms::measure::{KernelOverhead, Plan};
    use crate::mechanisms::stats::Timing;
    use crate::mechanisms::suite_kernels;

    /// A build that runs coop and async only, and no valgrind: every
    /// section prints, the others are "not measured" with the reason, and
    /// the JSON and plots are written.
    #[test]
    fn unavailable_mechanisms_are_reported_not_measured() {
        let why = "preempt: --preempt poll is not available in this build yet";
        let stats = |mode: PreemptMode| {
            json!({"details": {"histograms": {stats::json_key(stats::ttp_name(mode)): {
                "count": 5, "min_ns": 1000, "p50_ns": 2000, "p90_ns": 3000, "p99_ns": 4000,
                "p99_9_ns": 5000, "max_ns": 6000}}}})
        };
        let ok = |label: &str| label == "coop" || label == "async";
        let kernels = suite_kernels();
        let timing = |ns: f64| {
            Ok(Timing {
                ns: vec![ns, ns * 1.5],
                stops: vec![10, 10],
            })
        };
        let m = Measured {
            plan: Plan::new(true),
            floor: Ok((1..=20).map(|i| i * 1000).collect()),
            floor_hot: Err("no handler".into()),
            unavailable: VARIANTS
                .iter()
                .filter(|v| !ok(v.label))
                .map(|v| (v.label, why.to_string()))
                .collect(),
            ttp: VARIANTS
                .iter()
                .map(|v| {
                    (
                        v,
                        if ok(v.label) {
                            Ok(stats(v.mode))
                        } else {
                            Err(why.into())
                        },
                    )
                })
                .collect(),
            timed: kernels
                .iter()
                .map(|_| KernelOverhead {
                    n: 100_000_000,
                    work: 1e8,
                    none: timing(1e8),
                    variants: vec![("coop", timing(1e8)), ("async", timing(1.01e8))],
                })
                .collect(),
            kernels,
            valgrind: Err("valgrind not found".into()),
            counted: Vec::new(),
            sizes: vec![("coop", Ok((100, 200))), ("async", Ok((100, 200)))],
            runs: Vec::new(),
        };
        let mut out = Out::default();
        m.timed_table(&mut out);
        m.counted_table(&mut out);
        m.ttp_table(&mut out);
        let arming = m.code_table(&mut out);
        let t = &out.doc.text();
        assert!(
            t.lines()
                .any(|l| l.starts_with("async ") && l.ends_with("+1.00%")),
            "{t}"
        );
        for label in ["poll", "trap", "trap/mprotect", "patch"] {
            let line = format!("not measured: {why}");
            let rows = t
                .lines()
                .filter(|l| l.starts_with(&format!("{label} ")) && l.ends_with(&line));
            // Timed, time-to-preempt and code tables (counting is off).
            assert_eq!(rows.count(), 3, "{label}: {t}");
        }
        assert!(t.contains("instruction counts: not measured: valgrind not found"));
        assert!(t.contains("signal floor, 200 us apart  not measured: no handler"));
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        let notes: Vec<String> = out.notes.clone();
        let j = m.json(arming, &notes);
        assert_eq!(j["variants"]["poll"]["available"], json!(false));
        assert_eq!(j["time_to_preempt"]["async"]["p50_ns"], json!(2000.0));
        let dir = std::env::temp_dir().join(format!("preempt-mech-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        m.plots(&dir.join("l.svg"), &dir.join("o.svg")).unwrap();
        // The floor at the mechanisms' percentiles.
        let (lines, counts) = m.latency_lines();
        let at = |l: &crate::plot::Line| l.points.iter().map(|p| p.0).collect::<Vec<_>>();
        let floor = lines
            .iter()
            .find(|l| l.reference)
            .expect("the floor's line");
        assert!(lines.iter().all(|l| at(l) == at(floor)), "{lines:?}");
        assert_eq!(at(floor), [0.0, 50.0, 90.0, 99.0, 99.9, 100.0]);
        assert_eq!(counts, ["coop 5", "async 5", "floor 20"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
