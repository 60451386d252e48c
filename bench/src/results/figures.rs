//! Each suite's figures, made from its details (the JSON each suite keeps
//! of every measurement and raw run), with stable keys: the keys depend on
//! what was measured, never on how the tables word it.
//!
//! Times are in ns; repeated figures keep every repetition as samples,
//! distributions every observation (or their histogram). The keys are
//! listed in `docs/results-format.md`.

use serde_json::Value;

use super::{key, stat, Document, Figure};

/// Numbers of a JSON array.
fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn ints(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().or_else(|| x.as_i64().map(|i| i.max(0) as u64)))
                .collect()
        })
        .unwrap_or_default()
}

/// The figures of `preempt bench compile`: each phase on as many threads
/// as the compiler takes (`parse`, ..., `throughput`) and on one
/// (`one_thread/parse`, ...).
pub fn compile(d: &Value) -> Vec<Figure> {
    let instructions = d["instructions"].as_f64().unwrap_or(0.0);
    let mut out = Vec::new();
    for (prefix, seconds) in [
        ("", &d["seconds"]),
        ("one_thread/", &d["one_thread"]["seconds"]),
    ] {
        if seconds.is_null() {
            continue;
        }
        for phase in [
            "parse", "verify", "optimize", "assemble", "publish", "total",
        ] {
            let ns = floats(&seconds[phase])
                .into_iter()
                .map(|s| s * 1e9)
                .collect();
            out.extend(Figure::repeated(
                &format!("{prefix}{phase}"),
                "ns",
                stat::MIN,
                ns,
            ));
        }
        let rates = floats(&seconds["total"])
            .into_iter()
            .filter(|&s| s > 0.0)
            .map(|s| instructions / s)
            .collect();
        out.extend(Figure::repeated(
            &format!("{prefix}throughput"),
            "instructions/s",
            stat::MAX,
            rates,
        ));
    }
    out
}

/// The figures of `preempt bench kernels`: `KERNEL/ENGINE` in ns per unit
/// of work, and the ratios the table prints.
pub fn kernels(d: &Value) -> Vec<Figure> {
    let mut out = Vec::new();
    for k in d["kernels"].as_array().into_iter().flatten() {
        let name = k["kernel"].as_str().unwrap_or("?");
        let unit = format!("ns/{}", key(k["unit"].as_str().unwrap_or("unit")));
        let best = |e: &str| k["engines"][e]["ns_per_unit"].as_f64();
        for engine in ["jit", "interp", "rust"] {
            let samples = floats(&k["engines"][engine]["samples"]);
            out.extend(Figure::repeated(
                &format!("{name}/{engine}"),
                &unit,
                stat::MIN,
                samples,
            ));
        }
        for (label, a, b) in [
            ("jit_over_rust", "jit", "rust"),
            ("interp_over_jit", "interp", "jit"),
        ] {
            if let (Some(x), Some(y)) = (best(a), best(b)) {
                if y > 0.0 {
                    out.push(Figure::single(&format!("{name}/{label}"), "x", x / y));
                }
            }
        }
    }
    out
}

/// The raw runs of a suite's details.
fn runs(d: &Value) -> impl Iterator<Item = &Value> {
    d["runs"].as_array().into_iter().flatten()
}

fn is(r: &Value, side: &str, bench: &str) -> bool {
    r["side"] == side && r["bench"] == bench
}

/// The figures of a child run's `--stats-json` document (suite `run`).
fn stats_figures(st: &Value) -> Vec<Figure> {
    Document::from_json(st)
        .map(|d| d.sections.into_iter().flat_map(|s| s.figures).collect())
        .unwrap_or_default()
}

/// Figure `name` of a child run's stats, under a new key.
fn from_stats(st: &Value, name: &str, new_key: &str) -> Option<Figure> {
    let mut f = stats_figures(st).into_iter().find(|f| f.key == key(name))?;
    f.key = key(new_key);
    Some(f)
}

/// Time-per-operation figures of the runtime suite's benchmarks: every
/// repetition of preempt's (`elapsed_ns / ops`) and Go's (`ns_per_op`).
fn timed(d: &Value, out: &mut Vec<Figure>) {
    let benches = [
        ("spawn", 1, "spawn", "ns/goroutine"),
        ("spawn-2", 2, "spawn/procs2", "ns/goroutine"),
        ("switch", 1, "switch", "ns/switch"),
        ("pingpong", 1, "pingpong/procs1", "ns/round_trip"),
        ("pingpong-2", 2, "pingpong/procs2", "ns/round_trip"),
    ];
    for (bench, procs, name, unit) in benches {
        let p: Vec<f64> = runs(d)
            .filter(|r| is(r, "preempt", bench))
            .filter_map(|r| Some(r["elapsed_ns"].as_f64()? / r["ops"].as_f64()?.max(1.0)))
            .collect();
        out.extend(Figure::repeated(
            &format!("{name}/preempt"),
            unit,
            stat::MIN,
            p,
        ));
        let go_bench = bench.trim_end_matches("-2");
        let g: Vec<f64> = runs(d)
            .filter(|r| is(r, "go", go_bench) && r["gomaxprocs"] == procs)
            .filter_map(|r| r["ns_per_op"].as_f64())
            .collect();
        out.extend(Figure::repeated(&format!("{name}/go"), unit, stat::MIN, g));
    }
}

/// The idle-goroutines figures: the last size measured, each side's peak
/// RSS with N goroutines parked, its growth over none, and per goroutine.
fn idle(d: &Value, out: &mut Vec<Figure>) {
    let last = |side: &str| runs(d).filter(|r| is(r, side, "idle")).last();
    if let Some(r) = last("preempt") {
        let n = r["n"].as_f64().unwrap_or(0.0);
        if let (Some(full), Some(none)) =
            (r["max_rss_kib"].as_f64(), r["max_rss_kib_without"].as_f64())
        {
            idle_figures("preempt", n, full, none, out);
        }
    }
    // Go's runs come in pairs: none, then N.
    let go: Vec<&Value> = runs(d).filter(|r| is(r, "go", "idle")).collect();
    if let [.., none, full] = go.as_slice() {
        if let (Some(n), Some(f), Some(e)) = (
            full["n"].as_f64(),
            full["max_rss_kib"].as_f64(),
            none["max_rss_kib"].as_f64(),
        ) {
            idle_figures("go", n, f, e, out);
        }
        if let Some(own) = full["bytes_per_goroutine"].as_f64() {
            out.push(Figure::single(
                "idle/go/own_bytes_per_goroutine",
                "bytes",
                own,
            ));
        }
    }
}

fn idle_figures(side: &str, n: f64, full_kib: f64, none_kib: f64, out: &mut Vec<Figure>) {
    let growth = (full_kib - none_kib) * 1024.0;
    if !out.iter().any(|f| f.key == "idle/goroutines") {
        out.push(Figure::single("idle/goroutines", "count", n));
    }
    out.push(Figure::single(
        &format!("idle/{side}/peak_rss"),
        "bytes",
        full_kib * 1024.0,
    ));
    out.push(Figure::single(
        &format!("idle/{side}/rss_growth"),
        "bytes",
        growth,
    ));
    if n > 0.0 {
        out.push(Figure::single(
            &format!("idle/{side}/bytes_per_goroutine"),
            "bytes",
            growth / n,
        ));
    }
}

/// The figures of `preempt bench runtime`.
pub fn runtime(d: &Value) -> Vec<Figure> {
    let mut out = Vec::new();
    timed(d, &mut out);
    idle(d, &mut out);
    for r in runs(d).filter(|r| is(r, "preempt", "sleeper")) {
        out.extend(Figure::distribution(
            "sleeper/preempt/late",
            "ns",
            &ints(&r["late_ns"]),
        ));
    }
    for r in runs(d).filter(|r| is(r, "go", "sleeper")) {
        let side = if r["godebug"] == "asyncpreemptoff=1" {
            "go_coop"
        } else {
            "go_async"
        };
        out.extend(Figure::distribution(
            &format!("sleeper/{side}/late"),
            "ns",
            &ints(&r["late_ns"]),
        ));
    }
    out
}

/// The figures of `preempt bench preempt`.
pub fn preempt(d: &Value) -> Vec<Figure> {
    let mut out = Vec::new();
    for (name, samples) in [
        ("floor/10ms_apart", &d["floor_ns"]),
        ("floor/200us_apart", &d["floor_200us_apart_ns"]),
    ] {
        out.extend(Figure::distribution(name, "ns", &ints(samples)));
    }
    for r in runs(d) {
        let st = &r["stats"];
        match (r["side"].as_str(), r["bench"].as_str()) {
            (Some("preempt"), Some("sleeper-nocall")) if !st.is_null() => {
                for (name, k) in [
                    ("time-to-preempt (async)", "time_to_preempt/async"),
                    (
                        "time-to-preempt (async): request to handler",
                        "time_to_preempt/async/request_to_handler",
                    ),
                    (
                        "time-to-preempt (async): handler to scheduler",
                        "time_to_preempt/async/handler_to_scheduler",
                    ),
                    (
                        "time-to-preempt (async): handler, decision to leaving",
                        "time_to_preempt/async/handler_decision_to_leaving",
                    ),
                    (
                        "time-to-preempt (async): leaving the handler to scheduler",
                        "time_to_preempt/async/leaving_handler_to_scheduler",
                    ),
                ] {
                    out.extend(from_stats(st, name, k));
                }
                let sent = st["details"]["signals_sent"].as_f64();
                let stops = st["details"]["histograms"]["time_to_preempt_async"]["count"].as_f64();
                if let (Some(n), Some(k)) = (sent, stops.filter(|k| *k > 0.0)) {
                    out.push(Figure::single(
                        "signals_per_async_preemption",
                        "signals",
                        n / k,
                    ));
                }
            }
            (Some("preempt"), Some("sleeper-nocall-thread-timer")) => {
                out.extend(Figure::distribution(
                    "sleeper_nocall/preempt/late/thread_timer",
                    "ns",
                    &ints(&r["late_ns"]),
                ))
            }
            (Some("preempt"), Some("sleeper-nocall-thread-timer-stats")) if !st.is_null() => {
                out.extend(from_stats(
                    st,
                    preempt_runtime::preempt::qtimer::DEADLINE_TO_STOP,
                    "quantum_timer/thread/deadline_to_stop",
                ));
            }
            (Some("preempt"), Some("sleeper-nocall-redirect")) if !st.is_null() => {
                out.extend(from_stats(
                    st,
                    "time-to-preempt (async): handler to scheduler",
                    "time_to_preempt/async/handler_to_scheduler/redirect",
                ));
            }
            (Some("preempt"), Some("sleeper-nocall-200us")) if !st.is_null() => {
                for (name, k) in [
                    (
                        "time-to-preempt (async)",
                        "time_to_preempt/async/quantum_200us",
                    ),
                    (
                        "time-to-preempt (async): handler to scheduler",
                        "time_to_preempt/async/handler_to_scheduler/quantum_200us",
                    ),
                ] {
                    out.extend(from_stats(st, name, k));
                }
            }
            (Some("preempt"), Some("sleeper-nocall")) => out.extend(Figure::distribution(
                "sleeper_nocall/preempt/late",
                "ns",
                &ints(&r["late_ns"]),
            )),
            (Some("go"), Some("sleeper")) => out.extend(Figure::distribution(
                "sleeper_nocall/go/late",
                "ns",
                &ints(&r["late_ns"]),
            )),
            (Some("preempt"), Some("stw")) => {
                let k = r["spinners"].as_u64().unwrap_or(0);
                out.extend(from_stats(
                    st,
                    "stop-the-world latency",
                    &format!("stw/spinners{k}/preempt"),
                ));
                out.extend(from_stats(
                    st,
                    "stop-the-world: the stopper's own P",
                    &format!("stw/spinners{k}/preempt_own_p"),
                ));
            }
            (Some("go"), Some("stw")) => {
                let k = r["spinners"].as_u64().unwrap_or(0);
                if let Ok(p50) = crate::preempt::go_histogram_pct(r, 50.0) {
                    let mut f = Figure::single(&format!("stw/spinners{k}/go"), "ns", p50);
                    f.stat = stat::P50.to_string();
                    f.samples.clear();
                    f.percentiles = [50.0, 99.0]
                        .iter()
                        .filter_map(|&p| {
                            let v = crate::preempt::go_histogram_pct(r, p).ok()?;
                            Some((format!("p{p}"), v))
                        })
                        .collect();
                    out.push(f);
                }
            }
            (Some("jvm"), Some("stw")) => {
                let k = r["spinners"].as_u64().unwrap_or(0);
                if let Some(p50) = r["reaching_p50_ns"].as_f64() {
                    let mut f = Figure::single(&format!("stw/spinners{k}/jvm"), "ns", p50);
                    f.stat = stat::P50.to_string();
                    f.samples.clear();
                    out.push(f);
                }
            }
            (Some("preempt"), Some("overhead")) => {
                let kernel = r["kernel"].as_str().unwrap_or("?");
                let unit = format!("ns/{}", key(r["unit"].as_str().unwrap_or("unit")));
                for side in ["async", "none"] {
                    out.extend(Figure::repeated(
                        &format!("overhead/{kernel}/{side}"),
                        &unit,
                        stat::MIN,
                        floats(&r[format!("{side}_samples")]),
                    ));
                }
                if let (Some(a), Some(n)) = (
                    r["async_ns_per_unit"].as_f64(),
                    r["none_ns_per_unit"].as_f64(),
                ) {
                    out.push(Figure::single(
                        &format!("overhead/{kernel}/async_pct"),
                        "%",
                        (a / n - 1.0) * 100.0,
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// The figures of `preempt bench mechanisms`.
pub fn mechanisms(d: &Value) -> Vec<Figure> {
    let mut out = Vec::new();
    for (name, samples) in [
        ("floor/10ms_apart", &d["floor"]["samples_10ms_apart_ns"]),
        ("floor/200us_apart", &d["floor"]["samples_200us_apart_ns"]),
    ] {
        out.extend(Figure::distribution(name, "ns", &ints(samples)));
    }
    let variant = |label: &str| label.replace('/', "_");
    for r in runs(d).filter(|r| r["bench"] == "time-to-preempt") {
        let Some(v) = crate::mechanisms::VARIANTS
            .iter()
            .find(|v| r["variant"] == v.label)
        else {
            continue;
        };
        let (label, mode) = (variant(v.label), v.mode.name());
        let st = &r["stats"];
        out.extend(from_stats(
            st,
            &format!("time-to-preempt ({mode})"),
            &format!("time_to_preempt/{label}"),
        ));
        for arm in ["arm", "disarm"] {
            out.extend(from_stats(
                st,
                &format!("{arm} ({mode})"),
                &format!("{arm}/{label}"),
            ));
        }
    }
    if let Some(kernels) = d["overhead"].as_object() {
        for (kernel, o) in kernels {
            let work = o["work"].as_f64().unwrap_or(1.0).max(1e-9);
            let unit = format!("ns/{}", key(o["unit"].as_str().unwrap_or("unit")));
            let per = |v: &Value| floats(&v["ns"]).into_iter().map(|ns| ns / work).collect();
            out.extend(Figure::repeated(
                &format!("overhead/{kernel}/none"),
                &unit,
                stat::MIN,
                per(&o["none"]),
            ));
            for (label, v) in o["variants"].as_object().into_iter().flatten() {
                let l = variant(label);
                out.extend(Figure::repeated(
                    &format!("overhead/{kernel}/{l}"),
                    &unit,
                    stat::MIN,
                    per(v),
                ));
                if let Some(p) = v["overhead_pct"].as_f64() {
                    out.push(Figure::single(
                        &format!("overhead/{kernel}/{l}_pct"),
                        "%",
                        p,
                    ));
                }
            }
        }
    }
    for c in d["instructions_per_unit"].as_array().into_iter().flatten() {
        if let (Some(k), Some(l), Some(v)) = (
            c["kernel"].as_str(),
            c["variant"].as_str(),
            c["value"].as_f64(),
        ) {
            out.push(Figure::single(
                &format!("instructions/{k}/{}", variant(l)),
                "instructions/unit",
                v,
            ));
        }
    }
    for (label, s) in d["code_size"].as_object().into_iter().flatten() {
        for (what, k) in [("functions", "function_bytes"), ("module", "module_bytes")] {
            if let Some(v) = s[k].as_f64() {
                out.push(Figure::single(
                    &format!("code_size/{}/{what}", variant(label)),
                    "bytes",
                    v,
                ));
            }
        }
    }
    out
}

/// The figures of suite `suite` from its details.
pub fn of_suite(suite: &str, details: &Value) -> Vec<Figure> {
    match suite {
        "compile" => compile(details),
        "kernels" => kernels(details),
        "runtime" => runtime(details),
        "preempt" => preempt(details),
        "mechanisms" => mechanisms(details),
        _ => Vec::new(),
    }
}

/// The figures of a run's statistics (`preempt run --stats-json`): every
/// histogram (ns, with the full histogram) and every counter.
pub fn run_stats(stats: &preempt_runtime::stats::Stats) -> Vec<Figure> {
    let mut out: Vec<Figure> = stats
        .histogram_names()
        .into_iter()
        .filter_map(|name| Figure::from_histogram(name, "ns", &stats.histogram(name)?))
        .collect();
    let c = stats.counters();
    out.extend(Figure::counts(
        "",
        [
            ("context_switches", c.context_switches),
            ("goroutines_created", c.goroutines_created),
            ("threads_created", c.threads_created),
            ("handoffs", c.handoffs),
            ("foreign_calls", c.foreign_calls),
            ("signals_sent", c.signals_sent),
            ("re_requests", c.re_requests),
            ("preempt_requests", c.preempt_requests),
            ("preemptions", c.preemptions),
            ("retries", c.retries),
        ],
    ));
    out.extend(Figure::counts("counts/", stats.counts()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(fs: &[Figure]) -> Vec<&str> {
        fs.iter().map(|f| f.key.as_str()).collect()
    }

    #[test]
    fn kernels_keep_every_repetition() {
        let d = json!({"kernels": [{"kernel": "sum", "unit": "inner iteration", "engines": {
            "jit": {"ns_per_unit": 0.5, "samples": [0.6, 0.5, 0.7]},
            "interp": {"ns_per_unit": 5.0, "samples": [5.0, 6.0, 5.5]},
            "rust": {"ns_per_unit": 0.25, "samples": [0.25, 0.3, 0.26]}}}]});
        let fs = kernels(&d);
        assert_eq!(
            keys(&fs),
            [
                "sum/jit",
                "sum/interp",
                "sum/rust",
                "sum/jit_over_rust",
                "sum/interp_over_jit"
            ]
        );
        assert_eq!(fs[0].unit, "ns/inner_iteration");
        assert_eq!((fs[0].value, fs[0].n), (0.5, 3));
        assert_eq!(fs[0].samples, [0.6, 0.5, 0.7]);
        assert_eq!(fs[3].value, 2.0);
    }

    #[test]
    fn runtime_figures_come_from_the_raw_runs() {
        let d = json!({"runs": [
            {"side": "preempt", "bench": "spawn", "ops": 10, "elapsed_ns": 1000},
            {"side": "preempt", "bench": "spawn", "ops": 10, "elapsed_ns": 900},
            {"side": "go", "bench": "spawn", "gomaxprocs": 1, "ns_per_op": 80.0},
            {"side": "go", "bench": "pingpong", "gomaxprocs": 2, "ns_per_op": 300.0},
            {"side": "preempt", "bench": "idle", "n": 1000, "max_rss_kib": 9000,
             "max_rss_kib_without": 5000},
            {"side": "go", "bench": "idle", "n": 0, "max_rss_kib": 3000},
            {"side": "go", "bench": "idle", "n": 1000, "max_rss_kib": 6000,
             "bytes_per_goroutine": 2760.0},
            {"side": "preempt", "bench": "sleeper", "late_ns": [3, 1, 2]},
            {"side": "go", "bench": "sleeper", "godebug": "asyncpreemptoff=1", "late_ns": [9]},
        ]});
        let fs = runtime(&d);
        let get = |k: &str| {
            fs.iter()
                .find(|f| f.key == k)
                .unwrap_or_else(|| panic!("{k}"))
        };
        assert_eq!(get("spawn/preempt").samples, [100.0, 90.0]);
        assert_eq!(get("spawn/preempt").value, 90.0);
        assert_eq!(get("spawn/go").value, 80.0);
        assert_eq!(get("pingpong/procs2/go").value, 300.0);
        assert!(fs.iter().all(|f| f.key != "pingpong/procs1/go"));
        assert_eq!(get("idle/preempt/bytes_per_goroutine").value, 4096.0);
        assert_eq!(get("idle/go/rss_growth").value, 3000.0 * 1024.0);
        assert_eq!(get("idle/go/own_bytes_per_goroutine").value, 2760.0);
        assert_eq!(fs.iter().filter(|f| f.key == "idle/goroutines").count(), 1);
        assert_eq!(get("sleeper/preempt/late").value, 2.0);
        assert_eq!(get("sleeper/go_coop/late").n, 1);
    }
}
