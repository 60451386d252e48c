//! Writing the trace: events sorted and nested, each request's async span
//! and flow, and the metadata naming every process and track.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Value};

use super::event::{Event, Link, What};
use super::{lock, Names, Tracer, Track};

pub(super) const PID_MS: u32 = 1;
pub(super) const PID_PS: u32 = 2;
pub(super) const PID_GS: u32 = 3;
pub(super) const PID_RUNTIME: u32 = 4;
/// Track ids are offset per process so that no two tracks share a tid.
pub(super) const TID_BASE_M: u64 = 1_000_000;
pub(super) const TID_BASE_P: u64 = 2_000_000;
pub(super) const TID_RUNTIME: u64 = 3_000_000;
const TID_GC: u64 = 3_000_001;
const TID_WORLD: u64 = 3_000_002;
pub(super) const TID_BASE_G: u64 = 10_000_000;

/// The async span and the flow of each request share this name.
const REQUEST: &str = "preempt request";
const REQUEST_FLOW: &str = "request to stop";

impl Track {
    pub(super) fn pid(self) -> u32 {
        match self {
            Track::M(_) => PID_MS,
            Track::P(_) => PID_PS,
            Track::G(_) => PID_GS,
            Track::Runtime | Track::Gc | Track::World => PID_RUNTIME,
        }
    }

    pub(super) fn tid(self) -> u64 {
        match self {
            Track::M(m) => TID_BASE_M + u64::from(m),
            Track::P(p) => TID_BASE_P + u64::from(p),
            Track::G(g) => TID_BASE_G + g,
            Track::Runtime => TID_RUNTIME,
            Track::Gc => TID_GC,
            Track::World => TID_WORLD,
        }
    }
}

/// What became of one request, for its async span and flow.
#[derive(Debug, Default)]
struct Life {
    id: u64,
    begun: bool,
    /// When its goroutine stopped for it (the flow's end), or it ended
    /// otherwise.
    stopped_at: Option<u64>,
    ended_at: Option<u64>,
}

impl Life {
    fn stopped(&self) -> bool {
        self.stopped_at.is_some()
    }

    /// Neither stopped for nor ended: still in effect.
    fn pending(&self) -> bool {
        self.stopped_at.is_none() && self.ended_at.is_none()
    }

    /// Where its async span ends, if it has ended.
    fn closed_at(&self) -> Option<u64> {
        self.stopped_at.or(self.ended_at)
    }
}

impl Tracer {
    /// Writes the trace to `path` (see [`Tracer::write_to`]).
    pub fn write(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let file = std::fs::File::create(path)?;
        let mut w = BufWriter::with_capacity(1 << 16, file);
        self.write_to(&mut w)?;
        w.flush()
    }

    /// Writes `{"traceEvents": [...], "displayTimeUnit": "ns", "otherData":
    /// {...}}`: metadata first, then every event in timestamp order. The
    /// recorded events stay, so it may be called again.
    pub fn write_to(&self, mut w: impl Write) -> io::Result<()> {
        let names = lock(&self.names).clone();
        let (events, clipped) = self.sorted_events();
        let meta = metadata(&events, &names);
        let lives = lives(&events);
        let mut out: Vec<(u64, u8, Value)> = Vec::with_capacity(events.len() * 5 / 4);
        let end_ts = events.iter().map(|e| e.ts + e.dur.unwrap_or(0)).max();
        for e in &events {
            let (name, cat, args) = e.describe(&names);
            let mut v = json!({
                "name": name,
                "cat": cat,
                "ph": if e.dur.is_some() { "X" } else { "i" },
                "ts": self.us(e.ts),
                "pid": e.track.pid(),
                "tid": e.track.tid(),
                "args": args,
            });
            match e.dur {
                Some(d) => v["dur"] = json!(d as f64 / 1000.0),
                None => v["s"] = json!("t"),
            }
            out.push((e.ts, 1, v));
            if let Some((key, link)) = e.link() {
                if let Some(life) = lives.get(&key) {
                    self.link_events(e, link, life, &mut out);
                }
            }
        }
        // Requests still in effect when the trace was written.
        let pending = lives.values().filter(|l| l.pending()).count();
        if let Some(end) = end_ts {
            for life in lives.values().filter(|l| l.pending()) {
                let e = self.async_event("e", end, life.id, json!({ "outcome": "pending" }));
                out.push((end, 2, e));
            }
        }
        // By time; at one instant a request's begin before what is in it,
        // and its end after.
        out.sort_by_key(|(ts, rank, _)| (*ts, *rank));

        w.write_all(b"{\"traceEvents\":[\n")?;
        let mut first = true;
        for v in meta.iter().chain(out.iter().map(|(_, _, v)| v)) {
            if !first {
                w.write_all(b",\n")?;
            }
            first = false;
            serde_json::to_writer(&mut w, v)?;
        }
        let other = json!({
            "source": "preempt",
            "clock": "CLOCK_MONOTONIC",
            "start_ns": self.start_ns,
            "clipped_spans": clipped,
            "dropped_events": self.dropped(),
            "requests": lives.len(),
            "pending_requests": pending,
            "lost_handler_decisions": self.lost_decisions.load(Relaxed),
        });
        write!(
            w,
            "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{other}}}\n"
        )
    }

    /// The whole trace as one JSON value (for tests and small traces).
    pub fn to_json(&self) -> Value {
        let mut buf = Vec::new();
        self.write_to(&mut buf)
            .expect("writing to memory cannot fail");
        serde_json::from_slice(&buf).expect("the tracer writes valid JSON")
    }

    /// Every event, spans nested per track, in timestamp order; and the
    /// number of spans clipped to nest.
    fn sorted_events(&self) -> (Vec<Event>, u64) {
        let mut events: Vec<Event> = Vec::with_capacity(self.len());
        for s in self.shards.iter() {
            events.extend(lock(s).events.iter().cloned());
        }
        // Per track, by start time; longer spans first so that a span and
        // one nested in it at the same start keep parent-then-child order.
        events.sort_by(|a, b| {
            (a.track, a.ts, std::cmp::Reverse(a.dur)).cmp(&(
                b.track,
                b.ts,
                std::cmp::Reverse(b.dur),
            ))
        });
        let clipped = nest_spans(&mut events);
        events.sort_by_key(|e| e.ts);
        (events, clipped)
    }

    /// The async span's and the flow's events for `e`, the `link` part of
    /// `life`'s request.
    fn link_events(&self, e: &Event, link: Link, life: &Life, out: &mut Vec<(u64, u8, Value)>) {
        let flow = |ph: &str| {
            let mut v = json!({
                "name": REQUEST_FLOW, "cat": "preempt", "ph": ph, "id": life.id,
                "ts": self.us(e.ts), "pid": e.track.pid(), "tid": e.track.tid(),
            });
            if ph == "f" {
                v["bp"] = json!("e");
            }
            v
        };
        match link {
            Link::Begin => {
                let (_, _, args) = e.describe(&Names::default());
                out.push((e.ts, 0, self.async_event("b", e.ts, life.id, args)));
                if life.stopped() {
                    out.push((e.ts, 1, flow("s")));
                }
            }
            Link::Step if life.begun => {
                // A request applied again races with its goroutine's stop,
                // which reads the clock before it ends the request: the
                // step can succeed and read the clock after that reading.
                // It is drawn at the stop, inside the span it belongs to.
                let ts = life.closed_at().map_or(e.ts, |end| e.ts.min(end));
                let (_, _, args) = e.describe(&Names::default());
                out.push((ts, 1, self.async_event("n", ts, life.id, args)));
            }
            Link::Stopped if life.begun => {
                let latency = match &e.what {
                    What::Stopped(s) => e.ts.saturating_sub(s.requested_at),
                    _ => 0,
                };
                let args = json!({ "outcome": "stopped", "latency_ns": latency });
                out.push((e.ts, 2, self.async_event("e", e.ts, life.id, args)));
                out.push((e.ts, 2, flow("f")));
            }
            Link::Ended if life.begun && !life.stopped() => {
                let outcome = match &e.what {
                    What::RequestEnded { end, .. } => end.name(),
                    _ => "ended",
                };
                let args = json!({ "outcome": outcome });
                out.push((e.ts, 2, self.async_event("e", e.ts, life.id, args)));
            }
            _ => {}
        }
    }

    /// One event of a request's async span (`b`, `n` or `e`).
    fn async_event(&self, ph: &str, ts: u64, id: u64, args: Value) -> Value {
        json!({
            "name": REQUEST, "cat": "preempt", "ph": ph, "id": id,
            "ts": self.us(ts), "pid": PID_RUNTIME, "tid": TID_RUNTIME, "args": args,
        })
    }

    fn us(&self, ns: u64) -> f64 {
        ns.saturating_sub(self.start_ns) as f64 / 1000.0
    }
}

/// Each request's identity, in order, with what became of it. Ids count
/// from 1 in the order the requests were made.
fn lives(events: &[Event]) -> HashMap<(u64, u64), Life> {
    let mut lives: HashMap<(u64, u64), Life> = HashMap::new();
    let mut next = 1;
    for e in events {
        let Some((key, link)) = e.link() else {
            continue;
        };
        let life = lives.entry(key).or_default();
        match link {
            Link::Begin => {
                life.begun = true;
                life.id = next;
                next += 1;
            }
            Link::Stopped => {
                life.stopped_at.get_or_insert(e.ts);
            }
            Link::Ended => {
                life.ended_at.get_or_insert(e.ts);
            }
            Link::Step => {}
        }
    }
    // Ends whose begin was dropped (the event limit) link nothing.
    lives.retain(|_, l| l.begun);
    lives
}

/// Clips complete events so that, on each track, any two either nest or
/// do not overlap (Perfetto drops improperly nested ones). `events` is
/// sorted by track, then start, then longest first. Returns how many were
/// clipped.
pub(super) fn nest_spans(events: &mut [Event]) -> u64 {
    let mut clipped = 0;
    let mut open: Vec<u64> = Vec::new(); // ends of the enclosing spans
    let mut track = None;
    for e in events.iter_mut() {
        let Some(dur) = e.dur else { continue };
        if track != Some(e.track) {
            track = Some(e.track);
            open.clear();
        }
        let (mut start, end) = (e.ts, e.ts.saturating_add(dur));
        loop {
            while open.last().is_some_and(|&top| top <= start) {
                open.pop();
            }
            match open.last() {
                // Starts inside a span it outlasts: start where that ends.
                Some(&top) if end > top => {
                    start = top;
                    clipped += 1;
                }
                _ => break,
            }
        }
        if start != e.ts {
            e.ts = start;
            e.dur = Some(end - start);
        }
        open.push(end);
    }
    clipped
}

/// Names and order for the processes and each track used.
fn metadata(events: &[Event], names: &Names) -> Vec<Value> {
    let mut tracks = BTreeSet::new();
    let mut tids = BTreeMap::new();
    let mut funcs = BTreeMap::new();
    for e in events {
        tracks.insert(e.track);
        match e.what {
            What::ThreadCreated { m, tid } => {
                tids.insert(m, tid);
            }
            What::Run { g, func, .. } => {
                funcs.entry(g).or_insert(func);
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let processes = [
        (PID_MS, "Ms"),
        (PID_PS, "Ps"),
        (PID_GS, "goroutines"),
        (PID_RUNTIME, "runtime"),
    ];
    for (i, (pid, name)) in processes.iter().enumerate() {
        // The runtime's process holds the requests' async spans.
        if *pid != PID_RUNTIME && !tracks.iter().any(|t| t.pid() == *pid) {
            continue;
        }
        out.push(json!({
            "name": "process_name", "ph": "M", "ts": 0, "pid": pid, "tid": pid,
            "args": { "name": name },
        }));
        out.push(json!({
            "name": "process_sort_index", "ph": "M", "ts": 0, "pid": pid, "tid": pid,
            "args": { "sort_index": i },
        }));
    }
    // The runtime track carries the requests' async spans: always named.
    tracks.insert(Track::Runtime);
    for &t in &tracks {
        let (name, sort) = match t {
            Track::M(m) => match tids.get(&m) {
                Some(tid) => (format!("M{m} (tid {tid})"), u64::from(m)),
                None => (format!("M{m}"), u64::from(m)),
            },
            Track::P(p) => (format!("P{p}"), u64::from(p)),
            Track::G(g) => match funcs.get(&g) {
                Some(f) => (format!("G{g} {}", names.function(*f)), g),
                None => (format!("G{g}"), g),
            },
            Track::Runtime => ("requests (monitor, stopper)".to_string(), 0),
            Track::Gc => ("GC".to_string(), 1),
            Track::World => ("stop the world".to_string(), 2),
        };
        out.push(json!({
            "name": "thread_name", "ph": "M", "ts": 0, "pid": t.pid(), "tid": t.tid(),
            "args": { "name": name },
        }));
        out.push(json!({
            "name": "thread_sort_index", "ph": "M", "ts": 0, "pid": t.pid(), "tid": t.tid(),
            "args": { "sort_index": sort },
        }));
    }
    out
}
