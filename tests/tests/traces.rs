//! `--trace` on real runs, validated against the Chrome trace-event format
//! by a checker of our own, and for what the issue asked the traces to
//! show: GC and stop-the-world spans, every signal sent and every handler
//! decision with its reason and PC, each request linked to the stop it
//! produced, a track per goroutine.
//!
//! Why our own checker: the real readers are not available offline here.
//! Perfetto's trace processor (its Python package's `TraceProcessor`)
//! downloads its native binary on first use, and chrome://tracing needs a
//! browser with Catapult; neither can be installed on this machine
//! without the network. So [`check`] validates the format as the
//! trace-event specification defines it, and as Perfetto's JSON importer
//! reads it (`json_trace_parser_impl.cc`): the array and the object form;
//! the fields each phase needs (`ph`, `name`, `pid`, `tid`, `ts`; `dur` of
//! `X`; the `id` of async and flow events); `B`/`E` matched per track with
//! monotone timestamps; async `b`/`n`/`e` matched per id; flows `s`/`f`
//! with matching ids, each bound to a slice of its track (`f` with
//! `"bp": "e"`); complete events nested per track; a metadata event naming
//! every process and track used; and, for this project, no value in an
//! event's name (a digit only in a function's name). The checker is
//! tested too: planted defects must be rejected.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use preempt_tests::{run_cli, Run};
use serde_json::{json, Value};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");
/// Kill timer: each run takes well under a second on hardware, and a few
/// under qemu; the programs' own `--timeout` ends a hang first.
const GENEROUS: Duration = Duration::from_secs(120);

const GC: &str = "tests/programs/concurrent/gc-vs-spinners.pir";
const MASKED: &str = "tests/programs/trace/masked-then-unmasked.pir";

/// What the checker learnt of a valid trace.
#[derive(Debug, Default)]
struct Summary {
    /// Events by name (metadata left out).
    by_name: BTreeMap<String, Vec<Value>>,
    /// Track names by (pid, tid), process names by pid.
    threads: BTreeMap<(u64, u64), String>,
    processes: BTreeMap<u64, String>,
    /// Flow ids with both ends.
    flows: BTreeSet<String>,
}

impl Summary {
    fn named(&self, name: &str) -> &[Value] {
        self.by_name.get(name).map_or(&[], |v| v.as_slice())
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// An id as the format allows it: a number or a string.
fn id_of(e: &Value) -> Option<String> {
    match &e["id"] {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => e["id2"]["global"]
            .as_str()
            .or(e["id2"]["local"].as_str())
            .map(str::to_string),
    }
}

/// Validates `v` as a trace (see the module docs); every problem found.
fn check(v: &Value) -> Result<Summary, Vec<String>> {
    let mut errs = Vec::new();
    let events = match v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("traceEvents").and_then(Value::as_array) {
            Some(a) => a,
            None => return Err(vec!["object form without a traceEvents array".into()]),
        },
        _ => return Err(vec!["neither an array nor an object".into()]),
    };
    let mut s = Summary::default();
    // Per track: open B names with their ts; the last B/E ts.
    let mut stacks: HashMap<(u64, u64), Vec<(String, f64)>> = HashMap::new();
    let mut last_be: HashMap<(u64, u64), f64> = HashMap::new();
    // Async spans: (cat, name, id) -> open count; flows: id -> (s, f).
    let mut asyncs: HashMap<(String, String, String), (i64, f64)> = HashMap::new();
    let mut flows: HashMap<String, (u32, u32, String)> = HashMap::new();
    let mut flow_points: Vec<((u64, u64), f64, String)> = Vec::new();
    // Slices by track, for flow binding and nesting: (start, end).
    let mut slices: HashMap<(u64, u64), Vec<(f64, f64)>> = HashMap::new();
    let mut used: BTreeSet<(u64, u64)> = BTreeSet::new();
    for (i, e) in events.iter().enumerate() {
        let at = |what: &str| format!("event {i} ({e}): {what}");
        let Some(ph) = e["ph"].as_str() else {
            errs.push(at("no ph"));
            continue;
        };
        let name = e["name"].as_str();
        let (pid, tid) = match (e["pid"].as_u64(), e["tid"].as_u64()) {
            (Some(p), Some(t)) => (p, t),
            _ => {
                errs.push(at("pid and tid must be integers"));
                continue;
            }
        };
        if ph == "M" {
            let arg = e["args"]["name"].as_str();
            match (name, arg) {
                (Some("thread_name"), Some(n)) => {
                    s.threads.insert((pid, tid), n.to_string());
                }
                (Some("process_name"), Some(n)) => {
                    s.processes.insert(pid, n.to_string());
                }
                (Some("thread_sort_index" | "process_sort_index"), _)
                    if e["args"]["sort_index"].is_i64() => {}
                _ => errs.push(at("metadata without its name or sort_index")),
            }
            continue;
        }
        let Some(name) = name else {
            errs.push(at("no name"));
            continue;
        };
        let Some(ts) = num(&e["ts"]).filter(|t| *t >= 0.0) else {
            errs.push(at("no ts, or a negative one"));
            continue;
        };
        let track = (pid, tid);
        used.insert(track);
        let function = e["args"]["function"].as_str();
        if name.chars().any(|c| c.is_ascii_digit()) && function != Some(name) {
            errs.push(at("a value in the name"));
        }
        match ph {
            "X" => match num(&e["dur"]) {
                Some(d) if d >= 0.0 => slices.entry(track).or_default().push((ts, ts + d)),
                _ => errs.push(at("X without a non-negative dur")),
            },
            "i" | "I" => {
                if !matches!(
                    e.get("s").and_then(Value::as_str),
                    None | Some("t" | "p" | "g")
                ) {
                    errs.push(at("instant scope not t, p or g"));
                }
                slices.entry(track).or_default().push((ts, ts));
            }
            "B" | "E" => {
                let last = last_be.entry(track).or_insert(ts);
                if ts < *last {
                    errs.push(at("B/E timestamps go back on this track"));
                }
                *last = ts;
                let stack = stacks.entry(track).or_default();
                if ph == "B" {
                    stack.push((name.to_string(), ts));
                } else {
                    match stack.pop() {
                        Some((open, start)) => {
                            if !name.is_empty() && open != name {
                                errs.push(at(&format!("E closes {open:?}")));
                            }
                            slices.entry(track).or_default().push((start, ts));
                        }
                        None => errs.push(at("E without a B")),
                    }
                }
            }
            "b" | "e" | "n" => {
                let Some(id) = id_of(e) else {
                    errs.push(at("async event without an id"));
                    continue;
                };
                let cat = e["cat"].as_str().unwrap_or("").to_string();
                let key = (cat, name.to_string(), id);
                let open = asyncs.entry(key).or_insert((0, ts));
                match ph {
                    "b" => *open = (open.0 + 1, ts),
                    "e" if open.0 > 0 && ts >= open.1 => open.0 -= 1,
                    "n" if open.0 > 0 => {}
                    _ => errs.push(at("async e or n outside a b of its id")),
                }
            }
            "s" | "t" | "f" => {
                let Some(id) = id_of(e) else {
                    errs.push(at("flow event without an id"));
                    continue;
                };
                if ph == "f" && e["bp"] != "e" {
                    errs.push(at("flow end not bound to its enclosing slice (bp e)"));
                }
                let f = flows.entry(id.clone()).or_insert((0, 0, name.to_string()));
                if f.2 != name {
                    errs.push(at("flow events of one id with two names"));
                }
                match ph {
                    "s" => f.0 += 1,
                    "f" if f.0 > f.1 => f.1 += 1,
                    "f" => errs.push(at("flow end before its start")),
                    _ => {}
                }
                flow_points.push((track, ts, id));
            }
            "C" => {}
            other => errs.push(at(&format!("unknown phase {other}"))),
        }
        s.by_name
            .entry(name.to_string())
            .or_default()
            .push(e.clone());
    }
    for (track, stack) in &stacks {
        for (open, _) in stack {
            errs.push(format!("B {open:?} on {track:?} never ended"));
        }
    }
    for ((_, name, id), (open, _)) in &asyncs {
        if *open != 0 {
            errs.push(format!("async {name:?} id {id} never ended"));
        }
    }
    for (id, (starts, ends, name)) in &flows {
        if *starts != 1 || *ends != 1 {
            errs.push(format!(
                "flow {name:?} id {id}: {starts} starts, {ends} ends"
            ));
        } else {
            s.flows.insert(id.clone());
        }
    }
    // A flow event binds to a slice of its track at its time.
    let tol = 1e-3;
    for (track, ts, id) in &flow_points {
        let bound = slices
            .get(track)
            .is_some_and(|v| v.iter().any(|(a, b)| *a <= *ts + tol && *ts <= *b + tol));
        if !bound {
            errs.push(format!(
                "flow {id} at {ts} on {track:?}: no slice to bind to"
            ));
        }
    }
    // Complete events nest on each track.
    for (track, v) in &mut slices {
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<f64> = Vec::new();
        for &(a, b) in v.iter() {
            while open.last().is_some_and(|&top| top <= a + tol) {
                open.pop();
            }
            if let Some(&top) = open.last() {
                if b > top + tol {
                    errs.push(format!(
                        "on {track:?}, [{a}, {b}] overlaps a slice ending at {top}"
                    ));
                }
            }
            open.push(b);
        }
    }
    for t in &used {
        if !s.threads.contains_key(t) {
            errs.push(format!("track {t:?} has no thread_name"));
        }
        if !s.processes.contains_key(&t.0) {
            errs.push(format!("process {} has no process_name", t.0));
        }
    }
    if errs.is_empty() {
        Ok(s)
    } else {
        Err(errs)
    }
}

fn trace_of(args: &[&str], file: &str, tag: &str) -> (Run, Value) {
    let out =
        std::env::temp_dir().join(format!("preempt-traces-{}-{tag}.json", std::process::id()));
    let path = out.to_str().unwrap();
    let mut all = vec!["run", "--trace", path];
    all.extend_from_slice(args);
    all.push(file);
    let r = run_cli(CLI, &all, GENEROUS);
    assert_eq!(r.status, Some(0), "{all:?}: {r:?}");
    let text = std::fs::read_to_string(&out).expect("the trace was written");
    let _ = std::fs::remove_file(&out);
    (r, serde_json::from_str(&text).expect("the trace is JSON"))
}

fn valid(v: &Value, what: &str) -> Summary {
    check(v).unwrap_or_else(|errs| {
        panic!(
            "{what}: {} problems, the first: {:#?}",
            errs.len(),
            &errs[..errs.len().min(10)]
        )
    })
}

/// The GC program's trace under `mode` at `procs` Ps: valid, with what
/// the issue asks for.
fn gc_trace(mode: &[&str], procs: &str) -> Summary {
    let mut args = vec!["--procs", procs, "--timeout", "30"];
    args.extend_from_slice(mode);
    let tag = format!("{}-{procs}", mode.join("-"));
    let (r, v) = trace_of(&args, GC, &tag);
    assert!(r.stdout.contains("checksum 19900 + 79800 = 99700"), "{r:?}");
    let what = format!("{GC} {args:?}");
    let s = valid(&v, &what);
    // Written in timestamp order.
    let ts: Vec<f64> = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] != "M")
        .map(|e| e["ts"].as_f64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{what}: out of order");

    // GC cycles, each with its phases, and two stops of the world each.
    let cycles = s.named("GC cycle");
    assert!(cycles.len() >= 40, "{what}: {} GC cycles", cycles.len());
    for phase in ["mark start", "concurrent mark", "mark termination", "sweep"] {
        assert_eq!(s.named(phase).len(), cycles.len(), "{what}: {phase}");
    }
    let stw = s.named("stop the world");
    assert_eq!(stw.len(), 2 * cycles.len(), "{what}");
    let whys: BTreeSet<&str> = stw
        .iter()
        .filter_map(|e| e["args"]["why"].as_str())
        .collect();
    assert_eq!(
        whys,
        BTreeSet::from(["GC mark start", "GC mark termination"]),
        "{what}"
    );
    for phase in ["waiting for a P", "stopping", "world stopped"] {
        assert_eq!(s.named(phase).len(), stw.len(), "{what}: {phase}");
    }
    assert!(stw.iter().all(|e| e["ph"] == "X"));

    // A track per goroutine, named after its function, in its process.
    let gs_pid = s
        .processes
        .iter()
        .find(|(_, n)| *n == "goroutines")
        .map(|(p, _)| *p)
        .expect("a goroutines process");
    let gtracks: BTreeMap<u64, &str> = s
        .threads
        .iter()
        .filter(|((p, _), _)| *p == gs_pid)
        .map(|((_, t), n)| (*t, n.as_str()))
        .collect();
    let names: BTreeSet<&str> = gtracks.values().copied().collect();
    assert!(
        names.contains("G1 @main") && names.contains("G2 @spin") && names.contains("G3 @spin"),
        "{what}: {names:?}"
    );
    for run in s.named("@spin").iter().filter(|e| e["pid"] == gs_pid) {
        let g = run["args"]["g"].as_u64().unwrap();
        let track = gtracks[&run["tid"].as_u64().unwrap()];
        assert!(track.starts_with(&format!("G{g} ")), "{what}: {run}");
    }

    // Every request linked to its stop: a flow from the request to the
    // stop on its M, and the request's async span ending "stopped".
    let stops: Vec<&Value> = s
        .named("preempted")
        .iter()
        .filter(|e| {
            s.threads[&(e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap())].starts_with('M')
        })
        .collect();
    assert!(!stops.is_empty(), "{what}: no stop");
    let ends: Vec<&Value> = s
        .named("request to stop")
        .iter()
        .filter(|e| e["ph"] == "f")
        .collect();
    assert_eq!(ends.len(), stops.len(), "{what}: a flow per stop");
    for (stop, end) in stops.iter().zip(&ends) {
        assert_eq!(stop["ts"], end["ts"], "{what}");
        assert_eq!(stop["tid"], end["tid"], "{what}");
        assert!(s.flows.contains(&id_of(end).unwrap()));
        assert!(stop["args"]["latency_ns"].is_u64(), "{what}: {stop}");
    }
    let stopped = s
        .named("preempt request")
        .iter()
        .filter(|e| e["ph"] == "e" && e["args"]["outcome"] == "stopped")
        .count();
    assert_eq!(stopped, stops.len(), "{what}");
    for req in s.named("preempt request").iter().filter(|e| e["ph"] == "i") {
        for key in ["g", "reason", "mechanism"] {
            assert!(!req["args"][key].is_null(), "{what}: {req}");
        }
    }
    // Every arm undone.
    let (arms, disarms) = (s.named("arm"), s.named("disarm"));
    let first_arms = arms.iter().filter(|e| e["args"]["again"] == false).count();
    assert_eq!(first_arms, disarms.len(), "{what}");
    s
}

/// Where each goroutine stopped, checked against the handler's redirect:
/// the stub's resume address read from its frame is the address the
/// handler sent the goroutine to resume at.
fn stops_resume_where_redirected(s: &Summary, what: &str) {
    let mut redirect: HashMap<u64, &Value> = HashMap::new();
    let mut events: Vec<&Value> = s
        .named("handler redirect")
        .iter()
        .chain(s.named("preempted"))
        .filter(|e| e["pid"] == 1)
        .collect();
    events.sort_by(|a, b| {
        a["ts"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["ts"].as_f64().unwrap())
    });
    let mut checked = 0;
    for e in events {
        let m = e["tid"].as_u64().unwrap();
        if e["name"] == "handler redirect" {
            redirect.insert(m, e);
        } else if e["args"]["mechanism"] == "coop" {
            // Stopped at a function entry or a runtime call, not by the
            // handler's redirect.
        } else if let Some(r) = redirect.remove(&m) {
            assert_eq!(
                e["args"]["pc"], r["args"]["resume_pc"],
                "{what}: {e} after {r}"
            );
            assert_eq!(e["args"]["function"], "@spin", "{what}: {e}");
            checked += 1;
        }
    }
    assert!(checked > 0, "{what}: no stop after a redirect");
}

#[test]
fn async_traces_show_signals_redirects_and_stops_at_one_and_two_ps() {
    for procs in ["1", "2"] {
        let s = gc_trace(&["--preempt", "async"], procs);
        let what = format!("async at {procs} Ps");
        let signals = s.named("signal sent");
        assert!(!signals.is_empty(), "{what}");
        for e in signals {
            for key in ["g", "m", "p", "signal"] {
                assert!(
                    e["args"][key].is_u64() || e["args"][key].is_i64(),
                    "{what}: {e}"
                );
            }
        }
        for e in s.named("handler redirect") {
            assert_eq!(e["args"]["trigger"], "signal", "{what}");
            assert!(e["args"]["pc"].as_str().unwrap().starts_with("0x"));
        }
        stops_resume_where_redirected(&s, &what);
    }
}

#[test]
fn trap_traces_show_faults_and_page_arms_at_one_and_two_ps() {
    for procs in ["1", "2"] {
        let s = gc_trace(&["--preempt", "trap"], procs);
        let what = format!("trap at {procs} Ps");
        assert!(s.named("signal sent").is_empty(), "{what}");
        let faults = s.named("handler redirect");
        assert!(!faults.is_empty(), "{what}");
        assert!(
            faults.iter().all(|e| e["args"]["trigger"] == "fault"),
            "{what}"
        );
        assert!(s
            .named("arm")
            .iter()
            .all(|e| e["args"]["effect"] == "trap page"));
        stops_resume_where_redirected(&s, &what);
    }
}

#[test]
fn patch_traces_show_the_patched_function_at_one_and_two_ps() {
    for procs in ["1", "2"] {
        let s = gc_trace(&["--preempt", "patch"], procs);
        let what = format!("patch at {procs} Ps");
        assert!(s.named("handler redirect").is_empty(), "{what}");
        let patched: BTreeSet<&str> = s
            .named("arm")
            .iter()
            .filter(|e| e["args"]["effect"] == "patch")
            .filter_map(|e| e["args"]["function"].as_str())
            .collect();
        assert!(patched.contains("@spin"), "{what}: {patched:?}");
        // A spinner stopped by its patched back-edge stops in @spin.
        let in_spin = s
            .named("preempted")
            .iter()
            .filter(|e| e["args"]["mechanism"] == "patch")
            .all(|e| e["args"]["function"] == "@spin");
        assert!(in_spin, "{what}");
    }
}

#[test]
fn a_masked_signal_is_declined_with_its_reason_and_pc() {
    let (_, v) = trace_of(
        &[
            "--quantum",
            "1ms",
            "--hang-threshold",
            "0",
            "--preempt",
            "async",
        ],
        MASKED,
        "masked",
    );
    let s = valid(&v, MASKED);
    let declines = s.named("handler decline");
    for e in declines {
        assert!(e["args"]["reason"].is_string(), "{e}");
        assert_eq!(e["args"]["trigger"], "signal", "{e}");
        assert!(e["args"]["pc"].as_str().unwrap().starts_with("0x"), "{e}");
    }
    // The signal sent while it was masked arrives in the unmask, in
    // foreign code; the goroutine then stops at the call's return.
    assert!(
        declines
            .iter()
            .any(|e| e["args"]["reason"] == "not in JIT code" && e["args"]["g"] == 2),
        "{declines:#?}"
    );
    let stopped_in_masked = s.named("preempted").iter().any(|e| {
        e["args"]["g"] == 2
            && e["args"]["mechanism"] == "coop"
            && e["args"]["function"] == "@masked"
    });
    assert!(stopped_in_masked, "{:#?}", s.named("preempted"));
}

// ---- the checker, tested ----

/// A small valid trace in the array form, using every phase we check.
fn good() -> Value {
    json!([
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 1, "ts": 0, "args": {"name": "p"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 10, "ts": 0, "args": {"name": "t"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 11, "ts": 0, "args": {"name": "u"}},
        {"ph": "B", "name": "outer", "pid": 1, "tid": 10, "ts": 1.0},
        {"ph": "X", "name": "@f2", "pid": 1, "tid": 10, "ts": 2.0, "dur": 1.0, "args": {"function": "@f2"}},
        {"ph": "s", "name": "link", "cat": "c", "id": 7, "pid": 1, "tid": 10, "ts": 2.5},
        {"ph": "b", "name": "req", "cat": "c", "id": 7, "pid": 1, "tid": 10, "ts": 2.5},
        {"ph": "n", "name": "req", "cat": "c", "id": 7, "pid": 1, "tid": 10, "ts": 2.6},
        {"ph": "i", "name": "stop", "s": "t", "pid": 1, "tid": 11, "ts": 4.0},
        {"ph": "f", "name": "link", "cat": "c", "id": 7, "bp": "e", "pid": 1, "tid": 11, "ts": 4.0},
        {"ph": "e", "name": "req", "cat": "c", "id": 7, "pid": 1, "tid": 10, "ts": 4.0},
        {"ph": "E", "name": "outer", "pid": 1, "tid": 10, "ts": 5.0},
    ])
}

/// What is planted in `good()`'s event `i`.
enum Plant {
    /// The event is removed.
    Drop,
    /// Its field is removed.
    Without(&'static str),
    /// Its field is set.
    Set(&'static str, Value),
}

/// `good()` with `plant` planted in event `i`.
fn planted(i: usize, plant: Plant) -> Value {
    let mut v: Vec<Value> = good().as_array().unwrap().clone();
    match plant {
        Plant::Drop => {
            v.remove(i);
        }
        Plant::Without(field) => {
            v[i].as_object_mut().unwrap().remove(field);
        }
        Plant::Set(field, value) => v[i][field] = value,
    }
    Value::Array(v)
}

fn rejected(v: &Value, why: &str) {
    match check(v) {
        Ok(_) => panic!("a trace with {why} was accepted"),
        Err(errs) => assert!(!errs.is_empty()),
    }
}

#[test]
fn the_checker_accepts_both_forms_of_a_good_trace() {
    let s = check(&good()).expect("valid");
    assert_eq!(s.flows.len(), 1);
    assert_eq!(s.named("req").len(), 3);
    check(&json!({ "traceEvents": good(), "displayTimeUnit": "ns" })).expect("object form");
    rejected(&json!({ "events": [] }), "no traceEvents");
    rejected(&json!("trace"), "neither form");
}

#[test]
fn the_checker_rejects_planted_defects() {
    use Plant::{Drop, Set, Without};
    let defects = [
        (11, Drop, "an unmatched B (its E removed)"),
        (9, Drop, "a flow without its end"),
        (
            9,
            Without("bp"),
            "a flow end not bound to its enclosing slice",
        ),
        (9, Set("ts", json!(4.5)), "a flow end outside every slice"),
        (6, Drop, "an async e without its b"),
        (4, Without("dur"), "an X without dur"),
        (2, Drop, "a track nobody named"),
        (
            8,
            Set("name", json!("preempted G2 (12us)")),
            "a value in a name",
        ),
        (
            11,
            Set("ts", json!(0.5)),
            "B/E going back in time on a track",
        ),
        (4, Set("dur", json!(10.0)), "a span outlasting its parent"),
        (8, Without("ph"), "an event without ph"),
        (8, Without("pid"), "an event without pid"),
        (8, Without("ts"), "an event without ts"),
        (8, Without("name"), "an event without name"),
    ];
    for (i, plant, why) in defects {
        rejected(&planted(i, plant), why);
    }
}
