use super::write::{PID_GS, PID_MS, PID_PS, TID_BASE_G, TID_BASE_M, TID_BASE_P, TID_RUNTIME};
use super::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

const US: u64 = 1_000;

/// A small scheduling story on 2 Ms and 2 Ps, at fixed offsets from the
/// tracer's start.
fn story() -> Tracer {
    let t = Tracer::new();
    t.set_function_names(vec!["main".into(), "spinner".into(), "sleeper".into()]);
    t.set_code(vec![CodeRange {
        start: 0x1000,
        end: 0x1100,
        func: 1,
    }]);
    let t0 = t.start_ns();
    t.thread_created(t0 + US, 0, 4242);
    t.thread_created(t0 + 2 * US, 1, 4243);
    t.run(
        0,
        Some(0),
        1,
        0,
        t0 + 10 * US,
        t0 + 20 * US,
        RunEnd::Blocked(BlockReason::Recv),
    );
    t.run(
        1,
        Some(1),
        2,
        1,
        t0 + 12 * US,
        t0 + 10_012 * US,
        RunEnd::Preempted(PreemptMode::Async),
    );
    t.preempt_requested(
        t0 + 10_000 * US,
        Some(1),
        2,
        PreemptKind::Quantum,
        PreemptMode::Async,
    );
    t.signal_sent(t0 + 10_001 * US, 1, 1, 2, libc::SIGURG);
    t.handled(Decision {
        at: t0 + 10_002 * US,
        m: 1,
        g: 2,
        trigger: HandlerTrigger::Signal,
        handled: Handled::Decline("unsafe: write barrier"),
        pc: 0x1010,
    });
    t.handled(Decision {
        at: t0 + 10_008 * US,
        m: 1,
        g: 2,
        trigger: HandlerTrigger::Signal,
        handled: Handled::Redirect { resume_pc: 0x1020 },
        pc: 0x1020,
    });
    t.preempted(Stop {
        at: t0 + 10_010 * US,
        m: 1,
        p: Some(1),
        g: 2,
        mech: PreemptMode::Async,
        kind: PreemptKind::Quantum,
        requested_at: t0 + 10_000 * US,
        pc: Some(0x1020),
    });
    t.run(
        0,
        Some(0),
        3,
        2,
        t0 + 21 * US,
        t0 + 25 * US,
        RunEnd::Foreign,
    );
    t.foreign_call(0, 3, ForeignFn::Sleep, t0 + 25 * US, t0 + 1_025 * US);
    t.handoff(t0 + 45 * US, 0, 0, 2);
    t.thread_created(t0 + 44 * US, 2, 4244);
    t.run(2, Some(0), 1, 0, t0 + 46 * US, t0 + 50 * US, RunEnd::Exited);
    // A request that G1 ended itself by yielding, and one never applied.
    t.preempt_requested(
        t0 + 47 * US,
        Some(0),
        1,
        PreemptKind::StopTheWorld,
        PreemptMode::Async,
    );
    t.request_ended(
        t0 + 49 * US,
        1,
        t0 + 47 * US,
        PreemptKind::StopTheWorld,
        RequestEnd::SliceEnded("yield"),
    );
    t.run(
        1,
        Some(1),
        2,
        1,
        t0 + 10_013 * US,
        t0 + 10_014 * US,
        RunEnd::Yield,
    );
    t.instant(
        t0 + 60 * US,
        Track::Runtime,
        "sysmon tick",
        &[("delay_us", 20)],
    );
    t.span(
        Track::Runtime,
        "sysmon sleep",
        t0 + 61 * US,
        t0 + 81 * US,
        &[],
    );
    t.gc_cycle(1, t0 + 100 * US, t0 + 200 * US);
    t.gc_phase(1, "mark start", t0 + 100 * US, t0 + 120 * US);
    t.stopped_the_world(WorldStop {
        why: "GC mark start",
        wanted_at: t0 + 100 * US,
        requested_at: t0 + 102 * US,
        stopped_at: t0 + 110 * US,
        restarted_at: t0 + 118 * US,
    });
    t
}

fn written(t: &Tracer) -> Value {
    let path = std::env::temp_dir().join(format!(
        "preempt-trace-test-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));
    t.write(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    serde_json::from_str(&text).expect("the file parses as JSON")
}

fn events(v: &Value) -> &Vec<Value> {
    v["traceEvents"]
        .as_array()
        .expect("traceEvents is an array")
}

/// The structural rules Perfetto's JSON importer relies on (the format
/// test in tests/tests/traces.rs checks the rest on real runs).
fn check_structure(v: &Value) {
    assert_eq!(v["displayTimeUnit"], "ns");
    let evs = events(v);
    let mut named: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut named_pids: BTreeSet<u64> = BTreeSet::new();
    let mut used: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut tid_pid: HashMap<u64, u64> = HashMap::new();
    let mut last_ts = f64::MIN;
    let mut open: HashMap<u64, u32> = HashMap::new();
    for e in evs {
        let ph = e["ph"].as_str().expect("ph");
        assert!(e["name"].is_string(), "name: {e}");
        let pid = e["pid"].as_u64().expect("pid");
        let tid = e["tid"].as_u64().expect("tid");
        assert!(e["ts"].is_number(), "ts: {e}");
        match ph {
            "M" => {
                match e["name"].as_str().unwrap() {
                    "thread_name" => {
                        assert!(e["args"]["name"].is_string());
                        named.insert((pid, tid));
                    }
                    "process_name" => {
                        assert!(e["args"]["name"].is_string());
                        named_pids.insert(pid);
                    }
                    "thread_sort_index" | "process_sort_index" => {
                        assert!(e["args"]["sort_index"].is_u64());
                    }
                    other => panic!("unexpected metadata {other}"),
                }
                continue;
            }
            "X" => {
                let dur = e["dur"].as_f64().expect("X has dur");
                assert!(dur >= 0.0, "negative dur: {e}");
            }
            "i" => assert_eq!(e["s"], "t", "instant scope: {e}"),
            "b" => *open.entry(e["id"].as_u64().unwrap()).or_default() += 1,
            "e" => {
                let n = open.get_mut(&e["id"].as_u64().unwrap()).expect("e after b");
                *n -= 1;
            }
            "n" | "s" | "f" => assert!(e["id"].is_u64(), "{e}"),
            other => panic!("unexpected phase {other}"),
        }
        let ts = e["ts"].as_f64().unwrap();
        assert!(ts >= 0.0, "{e}");
        assert!(ts >= last_ts, "events out of order at {e}");
        last_ts = ts;
        used.insert((pid, tid));
        // Perfetto keys threads by tid: one pid per tid.
        assert_eq!(
            *tid_pid.entry(tid).or_insert(pid),
            pid,
            "tid {tid} in two processes"
        );
    }
    assert!(open.values().all(|n| *n == 0), "unended async spans");
    for t in &used {
        assert!(named.contains(t), "track {t:?} has no thread_name");
        assert!(named_pids.contains(&t.0), "process {} has no name", t.0);
    }
    // Complete events nest on each track.
    let mut by_track: HashMap<(u64, u64), Vec<(i64, i64)>> = HashMap::new();
    for e in evs.iter().filter(|e| e["ph"] == "X") {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        // Perfetto rounds microseconds to nanoseconds.
        let s = (e["ts"].as_f64().unwrap() * 1000.0).round() as i64;
        let d = (e["dur"].as_f64().unwrap() * 1000.0).round() as i64;
        by_track.entry(key).or_default().push((s, s + d));
    }
    for spans in by_track.values_mut() {
        spans.sort_by_key(|&(s, e)| (s, -e));
        let mut open: Vec<i64> = Vec::new();
        for &(s, e) in spans.iter() {
            while open.last().is_some_and(|&top| top <= s) {
                open.pop();
            }
            if let Some(&top) = open.last() {
                assert!(e <= top, "span [{s}, {e}) overlaps one ending at {top}");
            }
            open.push(e);
        }
    }
}

fn thread_names(v: &Value) -> Vec<String> {
    events(v)
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn named<'a>(v: &'a Value, name: &str) -> Vec<&'a Value> {
    events(v).iter().filter(|e| e["name"] == name).collect()
}

#[test]
fn written_file_is_valid_trace_json() {
    let t = story();
    let v = written(&t);
    check_structure(&v);
    let names = thread_names(&v);
    for want in [
        "M0 (tid 4242)",
        "M1 (tid 4243)",
        "M2 (tid 4244)",
        "P0",
        "P1",
        "G1 @main",
        "G2 @spinner",
        "G3 @sleeper",
        "requests (monitor, stopper)",
        "GC",
        "stop the world",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "no track {want}: {names:?}"
        );
    }
    let procs: Vec<&str> = events(&v)
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(procs, ["Ms", "Ps", "goroutines", "runtime"]);
    assert_eq!(v["otherData"]["clipped_spans"], 0);
    assert_eq!(v["otherData"]["dropped_events"], 0);
    assert_eq!(v["otherData"]["requests"], 2);
    assert_eq!(v["otherData"]["pending_requests"], 0);
}

#[test]
fn run_spans_are_named_by_function_on_m_p_and_g() {
    let v = story().to_json();
    let runs: Vec<&Value> = named(&v, "@spinner")
        .into_iter()
        .filter(|e| e["ph"] == "X")
        .collect();
    // Two runs of G2, each on M1, P1 and G2's own track.
    assert_eq!(runs.len(), 6);
    let preempted = runs
        .iter()
        .find(|e| e["args"]["end"] == "preempted")
        .expect("a preempted run");
    assert_eq!(preempted["args"]["mechanism"], "async");
    assert_eq!(preempted["args"]["g"], 2);
    assert_eq!(preempted["args"]["function"], "@spinner");
    assert_eq!(preempted["ts"].as_f64().unwrap(), 12.0);
    assert_eq!(preempted["dur"].as_f64().unwrap(), 10_000.0);
    let blocked = named(&v, "@main")
        .into_iter()
        .find(|e| e["args"]["end"] == "blocked")
        .unwrap();
    assert_eq!(blocked["args"]["blocked_on"], "chan recv");
    let pids: BTreeSet<u64> = runs.iter().map(|e| e["pid"].as_u64().unwrap()).collect();
    assert_eq!(
        pids,
        BTreeSet::from([u64::from(PID_MS), u64::from(PID_PS), u64::from(PID_GS)])
    );
    assert!(runs
        .iter()
        .any(|e| e["tid"].as_u64() == Some(TID_BASE_G + 2)));
}

#[test]
fn preemption_events_carry_their_values_in_args() {
    let v = story().to_json();
    let req = named(&v, "preempt request");
    let instants: Vec<_> = req.iter().filter(|e| e["ph"] == "i").collect();
    assert_eq!(instants.len(), 6, "two requests on runtime, P and G");
    assert_eq!(instants[0]["args"]["reason"], "stop-the-world");
    let done = named(&v, "preempted");
    assert_eq!(done.len(), 3, "on M, P and G");
    assert_eq!(done[0]["args"]["latency_ns"], 10_000);
    assert_eq!(done[0]["args"]["mechanism"], "async");
    assert_eq!(done[0]["args"]["function"], "@spinner");
    assert_eq!(done[0]["args"]["offset"], "0x20");
    let decline = named(&v, "handler decline");
    assert_eq!(decline.len(), 2, "on M and G");
    assert_eq!(decline[0]["args"]["reason"], "unsafe: write barrier");
    assert_eq!(decline[0]["args"]["pc"], "0x1010");
    assert_eq!(decline[0]["args"]["function"], "@spinner");
    assert_eq!(named(&v, "handler redirect").len(), 2);
    let sig = named(&v, "signal sent");
    assert_eq!(sig[0]["args"]["signal"], libc::SIGURG);
    let ended = named(&v, "request ended");
    assert_eq!(ended[0]["args"]["outcome"], "withdrawn");
    assert_eq!(ended[0]["args"]["slice_end"], "yield");
    let h = named(&v, "hand-off");
    assert_eq!(h.len(), 2);
    let tracks: BTreeSet<u64> = h.iter().map(|e| e["tid"].as_u64().unwrap()).collect();
    assert_eq!(tracks, BTreeSet::from([TID_BASE_P, TID_RUNTIME]));
    assert_eq!(h[0]["args"]["from_m"], 0);
    assert_eq!(h[0]["args"]["to_m"], 2);
    let cc = named(&v, "ccall sleep");
    assert_eq!(cc.len(), 2, "on M and G");
    assert_eq!(cc[0]["ph"], "X");
    assert_eq!(cc[0]["dur"].as_f64().unwrap(), 1000.0);
    assert_eq!(cc[0]["tid"].as_u64().unwrap(), TID_BASE_M);
    assert_eq!(named(&v, "sysmon tick")[0]["args"]["delay_us"], 20);
    assert_eq!(named(&v, "sysmon sleep")[0]["ph"], "X");
    // No name carries a value: a goroutine, a time or an M.
    for e in events(&v).iter().filter(|e| e["ph"] != "M") {
        let name = e["name"].as_str().unwrap();
        if e["args"]["function"] == name {
            continue;
        }
        assert!(
            !name.chars().any(|c| c.is_ascii_digit()),
            "a value in the name {name:?}"
        );
    }
}

#[test]
fn each_request_is_an_async_span_and_a_stop_is_a_flow_from_its_request() {
    let v = story().to_json();
    let evs = events(&v);
    let of = |ph: &str| -> Vec<&Value> { evs.iter().filter(|e| e["ph"] == ph).collect() };
    let (b, e) = (of("b"), of("e"));
    assert_eq!(b.len(), 2);
    assert_eq!(e.len(), 2);
    let stopped = e
        .iter()
        .find(|e| e["args"]["outcome"] == "stopped")
        .unwrap();
    assert_eq!(stopped["args"]["latency_ns"], 10_000);
    let withdrawn = e
        .iter()
        .find(|e| e["args"]["outcome"] == "withdrawn")
        .unwrap();
    assert_ne!(stopped["id"], withdrawn["id"]);
    let (s, f) = (of("s"), of("f"));
    assert_eq!(s.len(), 1, "only the stopped request has a flow");
    assert_eq!(f.len(), 1);
    assert_eq!(s[0]["id"], f[0]["id"]);
    assert_eq!(s[0]["id"], stopped["id"]);
    assert_eq!(f[0]["bp"], "e");
    assert_eq!(s[0]["tid"].as_u64(), Some(TID_RUNTIME));
    assert_eq!(f[0]["tid"].as_u64(), Some(TID_BASE_M + 1));
}

#[test]
fn a_request_applied_again_as_its_goroutine_stops_stays_inside_its_span() {
    // The goroutine read the clock (2.0 us) before ending the request; the
    // monitor applied it again in between and read the clock after (2.5).
    let t = Tracer::new();
    let t0 = t.start_ns();
    t.preempt_requested(
        t0 + 1_000,
        Some(0),
        2,
        PreemptKind::Quantum,
        PreemptMode::Async,
    );
    t.rerequested(t0 + 2_500, 2, t0 + 1_000, "back-off");
    t.preempted(Stop {
        at: t0 + 2_000,
        m: 0,
        p: Some(0),
        g: 2,
        mech: PreemptMode::Async,
        kind: PreemptKind::Quantum,
        requested_at: t0 + 1_000,
        pc: None,
    });
    let v = t.to_json();
    check_structure(&v);
    let evs = events(&v);
    let at = |ph: &str| evs.iter().position(|e| e["ph"] == ph).expect(ph);
    let (b, n, e) = (at("b"), at("n"), at("e"));
    assert!(b < n && n < e, "b {b}, n {n}, e {e}");
    assert_eq!(evs[n]["ts"], evs[e]["ts"]);
    assert_eq!(evs[n]["args"]["why"], "back-off");
}

#[test]
fn a_request_pending_at_the_end_is_ended_there() {
    let t = Tracer::new();
    let t0 = t.start_ns();
    t.preempt_requested(t0 + 5, None, 7, PreemptKind::Quantum, PreemptMode::Coop);
    t.run(0, None, 7, 0, t0 + 1, t0 + 50, RunEnd::Yield);
    let v = t.to_json();
    check_structure(&v);
    let e: Vec<&Value> = events(&v).iter().filter(|e| e["ph"] == "e").collect();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["args"]["outcome"], "pending");
    assert_eq!(e[0]["ts"].as_f64().unwrap(), 0.05);
    assert_eq!(v["otherData"]["pending_requests"], 1);
}

#[test]
fn gc_and_stop_the_world_spans_nest() {
    let v = story().to_json();
    check_structure(&v);
    let world = named(&v, "stop the world");
    assert_eq!(world.len(), 1);
    assert_eq!(world[0]["args"]["why"], "GC mark start");
    assert_eq!(world[0]["dur"].as_f64().unwrap(), 18.0);
    for phase in ["waiting for a P", "stopping", "world stopped"] {
        let p = named(&v, phase);
        assert_eq!(p.len(), 1, "{phase}");
        assert_eq!(p[0]["tid"], world[0]["tid"]);
    }
    assert_eq!(named(&v, "stopping")[0]["dur"].as_f64().unwrap(), 8.0);
    let cycle = named(&v, "GC cycle");
    assert_eq!(cycle[0]["args"]["cycle"], 1);
    assert_eq!(named(&v, "mark start")[0]["tid"], cycle[0]["tid"]);
}

#[test]
fn nanosecond_timestamps_survive() {
    let t = Tracer::new();
    let t0 = t.start_ns();
    t.run(
        0,
        None,
        7,
        0,
        t0 + 1_234_567,
        t0 + 1_234_567 + 891,
        RunEnd::Yield,
    );
    let v = t.to_json();
    let e = events(&v).iter().find(|e| e["ph"] == "X").unwrap();
    assert_eq!(
        (e["ts"].as_f64().unwrap() * 1000.0).round() as u64,
        1_234_567
    );
    assert_eq!((e["dur"].as_f64().unwrap() * 1000.0).round() as u64, 891);
    // No function names were given.
    assert_eq!(e["name"], "@f0");
}

#[test]
fn overlapping_spans_are_clipped_to_nest() {
    let t = Tracer::new();
    let t0 = t.start_ns();
    // Two runs on M0 whose clock readings overlap by 3 ns, and a span
    // properly nested in the first.
    t.run(0, None, 1, 0, t0 + 1000, t0 + 2003, RunEnd::Yield);
    t.run(0, None, 2, 1, t0 + 2000, t0 + 3000, RunEnd::Yield);
    t.span(Track::M(0), "inner", t0 + 1500, t0 + 1600, &[]);
    let v = written(&t);
    check_structure(&v);
    assert_eq!(v["otherData"]["clipped_spans"], 1);
    let g2 = events(&v)
        .iter()
        .find(|e| e["name"] == "@f1" && e["pid"].as_u64() == Some(u64::from(PID_MS)))
        .unwrap();
    assert_eq!((g2["ts"].as_f64().unwrap() * 1000.0).round() as u64, 2003);
    assert_eq!((g2["dur"].as_f64().unwrap() * 1000.0).round() as u64, 997);
}

#[test]
fn disabled_tracer_records_nothing() {
    let t = Tracer::disabled();
    assert!(!t.is_enabled());
    assert!(!t.is_on());
    t.run(0, Some(0), 1, 0, 0, 10, RunEnd::Exited);
    t.handoff(5, 0, 0, 1);
    t.instant(5, Track::Runtime, "x", &[]);
    assert_eq!(t.len(), 0);
    let v = t.to_json();
    assert!(events(&v).iter().all(|e| e["ph"] == "M"));
}

#[test]
fn limit_drops_and_counts() {
    let t = Tracer::with_limit(3);
    let t0 = t.start_ns();
    for i in 0..5 {
        t.instant(t0 + i, Track::Runtime, "tick", &[]);
    }
    assert_eq!(t.len(), 3);
    assert_eq!(t.dropped(), 2);
    assert_eq!(t.to_json()["otherData"]["dropped_events"], 2);
}

#[test]
fn many_threads_record_concurrently() {
    let t = Arc::new(Tracer::new());
    let t0 = t.start_ns();
    let threads: Vec<_> = (0..4u32)
        .map(|m| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                t.thread_created(t0 + u64::from(m), m, 100 + m as i32);
                for i in 0..1000u64 {
                    let s = t0 + 10 + i * 100;
                    let g = u64::from(m) * 1000 + i + 1;
                    t.run(m, Some(m % 2 + 2 * (m / 2)), g, 0, s, s + 90, RunEnd::Yield);
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    assert_eq!(t.len(), 4 * 2 + 4000 * 3);
    let v = written(&t);
    check_structure(&v);
    let names = thread_names(&v);
    assert!(names.iter().any(|n| n == "M3 (tid 103)"), "{names:?}");
    assert!(names.iter().any(|n| n == "P3"), "{names:?}");
}

#[test]
fn real_clock_spans() {
    let t = Tracer::new();
    let a = monotonic_ns();
    std::thread::sleep(std::time::Duration::from_millis(1));
    let b = monotonic_ns();
    t.foreign_call(0, 1, ForeignFn::Spin, a, b);
    let v = written(&t);
    check_structure(&v);
    let e = events(&v)
        .iter()
        .find(|e| e["name"] == "ccall spin")
        .unwrap();
    assert!(e["dur"].as_f64().unwrap() >= 1000.0, "{e}");
    assert!(e["ts"].as_f64().unwrap() >= 0.0);
}

#[test]
fn tracer_is_sync_and_send() {
    fn check<T: Send + Sync>() {}
    check::<Tracer>();
}

fn log_text(t: &Tracer) -> String {
    let mut out = Vec::new();
    t.flush_stops(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn the_stop_log_has_a_line_per_stop_with_its_counts() {
    let t = Tracer::disabled().with_stop_log();
    assert!(t.is_on() && !t.is_enabled() && t.logs_stops());
    t.set_function_names(vec!["main".into(), "spin".into()]);
    t.set_code(vec![CodeRange {
        start: 0x1000,
        end: 0x1100,
        func: 1,
    }]);
    let t0 = t.start_ns();
    t.preempt_requested(
        t0 + 1_000,
        Some(0),
        2,
        PreemptKind::Quantum,
        PreemptMode::Async,
    );
    t.signal_sent(t0 + 1_100, 0, 0, 2, libc::SIGURG);
    t.signal_sent(t0 + 1_500, 0, 0, 2, libc::SIGURG);
    let decline = Decision {
        at: t0 + 1_200,
        m: 0,
        g: 2,
        trigger: HandlerTrigger::Signal,
        handled: Handled::Decline("not in JIT code"),
        pc: 0x10,
    };
    t.handled(decline);
    t.preempted(Stop {
        at: t0 + 2_000,
        m: 0,
        p: Some(0),
        g: 2,
        mech: PreemptMode::Async,
        kind: PreemptKind::Quantum,
        requested_at: t0 + 1_000,
        pc: Some(0x102c),
    });
    t.stopped_the_world(WorldStop {
        why: "GC mark start",
        wanted_at: t0 + 3_000,
        requested_at: t0 + 3_100,
        stopped_at: t0 + 3_600,
        restarted_at: t0 + 4_000,
    });
    t.preempt_requested(
        t0 + 5_000,
        Some(0),
        3,
        PreemptKind::StopTheWorld,
        PreemptMode::Async,
    );
    t.request_ended(
        t0 + 5_300,
        3,
        t0 + 5_000,
        PreemptKind::StopTheWorld,
        RequestEnd::SliceEnded("yield"),
    );
    // Never in effect: no line.
    t.request_ended(
        t0 + 6_000,
        4,
        t0 + 6_000,
        PreemptKind::Quantum,
        RequestEnd::Stale,
    );
    let text = log_text(&t);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("[0.000002s][stops] Stop \"quantum\", G2, async on M0 P0, Time since last: 2000 ns, Requested->stopped: 1000 ns, At: @spin+0x2c, Signals: 2, Declines: 1 (not in JIT code: 1)"), "{}", lines[0]);
    assert_eq!(
        lines[1],
        "[0.000004s][stops] Stop-the-world \"GC mark start\", Time since last: 3000 ns, Own P: 100 ns, Reaching safepoint: 500 ns, At safepoint: 400 ns, Total: 1000 ns"
    );
    assert!(
        lines[2].contains("Stop \"stop-the-world\", G3, withdrawn (yield), Time since last: 3300 ns, Requested->withdrawn: 300 ns, Signals: 0, Declines: 0"),
        "{}",
        lines[2]
    );
    assert_eq!(log_text(&t), "", "printed once");
    assert_eq!(t.len(), 0, "no timeline kept");
}

#[test]
fn a_stop_logged_after_the_next_request_keeps_its_own_counts() {
    // The goroutine stops at 2000 for the request of 1000, but its stop
    // reaches the log only after the monitor made the next request (3000)
    // for the same slice: signals and declines go to the request that was
    // in effect when they happened.
    let t = Tracer::disabled().with_stop_log();
    let t0 = t.start_ns();
    let q = PreemptKind::Quantum;
    let a = PreemptMode::Async;
    t.preempt_requested(t0 + 1_000, Some(0), 2, q, a);
    t.signal_sent(t0 + 1_100, 0, 0, 2, libc::SIGURG);
    t.preempt_requested(t0 + 3_000, Some(0), 2, q, a);
    t.signal_sent(t0 + 3_100, 0, 0, 2, libc::SIGURG);
    t.handled(Decision {
        at: t0 + 3_200,
        m: 0,
        g: 2,
        trigger: HandlerTrigger::Signal,
        handled: Handled::Decline("not in JIT code"),
        pc: 0x10,
    });
    t.preempted(Stop {
        at: t0 + 2_000,
        m: 0,
        p: Some(0),
        g: 2,
        mech: a,
        kind: q,
        requested_at: t0 + 1_000,
        pc: None,
    });
    t.request_ended(
        t0 + 3_500,
        2,
        t0 + 3_000,
        q,
        RequestEnd::SliceEnded("slice end"),
    );
    let text = log_text(&t);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with("At: unknown, Signals: 1, Declines: 0"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with("Signals: 1, Declines: 1 (not in JIT code: 1)"),
        "{}",
        lines[1]
    );
}
