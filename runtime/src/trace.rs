//! `--trace FILE`: a scheduling timeline in Chrome's trace-event JSON, the
//! format chrome://tracing and Perfetto open.
//!
//! # Tracks
//!
//! - process **Ms**: one track per M (worker OS thread), named
//!   `M3 (tid 12345)` once [`Tracer::thread_created`] told its kernel tid;
//! - process **Ps**: one track per P, named `P0`, `P1`, ...;
//! - process **runtime**: one track for global events (the monitor, sysmon).
//!
//! # Events
//!
//! | call | phase | tracks |
//! | --- | --- | --- |
//! | [`Tracer::run`]: a goroutine ran, `G<id> @func`, args goroutine, function, how it ended ([`RunEnd`]) | `X` complete | its M and its P |
//! | [`Tracer::foreign_call`]: `ccall sleep` / `ccall spin` ... | `X` | its M |
//! | [`Tracer::preempt_requested`]: goroutine, reason, mechanism | `i` instant | runtime and the goroutine's P |
//! | [`Tracer::preempted`]: goroutine, mechanism, time-to-preempt | `i` | the M and P it stopped on |
//! | [`Tracer::handoff`]: P taken from an M in foreign code, given to another | `i` | the P and runtime |
//! | [`Tracer::thread_created`]: an M started, with its tid | `i` | runtime and the new M |
//! | [`Tracer::instant`], [`Tracer::span`]: anything else | `i`, `X` | any |
//!
//! Metadata (`M`) events name each process and each track used and fix
//! their order (`process_sort_index`, `thread_sort_index`).
//!
//! # Time
//!
//! Every timestamp the API takes is a [`monotonic_ns`] reading
//! (`CLOCK_MONOTONIC`, nanoseconds), the clock [`crate::stats`] uses too, so
//! the scheduler can read the clock once and give the same instant to both.
//! The file holds microseconds since the tracer was made, as numbers with
//! nanosecond precision (`"ts": 1234.567`), and `"displayTimeUnit": "ns"`.
//! (Some older Perfetto releases read `displayTimeUnit` as the unit of `ts`,
//! against the format's definition, and show such a file 1000 times too
//! short; current Perfetto ignores the key and chrome://tracing uses it only
//! for display, as defined.)
//!
//! # Cost
//!
//! A disabled tracer ([`Tracer::disabled`]) returns from every call after
//! one test of a plain `bool`. An enabled one appends a 72-byte record
//! (names and args are formatted only when writing) to one of [`SHARDS`]
//! mutex-guarded buffers chosen by the calling thread, so threads rarely
//! contend and share no counter per event. At most
//! [`DEFAULT_EVENT_LIMIT`] events are kept (2 million, about 150 MB in
//! memory and 350 MB of JSON; [`Tracer::with_limit`] sets another); later
//! ones are counted as dropped (`otherData.dropped_events`). None of this
//! is async-signal-safe: record from ordinary code, never from a handler.
//!
//! # What Perfetto needs, and what [`Tracer::write`] guarantees
//!
//! Every event has `name`, `ph`, `ts`, `pid` and `tid`; `X` events have a
//! non-negative `dur`; instants have a scope `s` of `"t"`. Track ids (`tid`)
//! are distinct across the three processes, because Perfetto identifies a
//! thread by its tid (a tid seen under another pid is taken for a new thread). Perfetto accepts complete events on one track only if they
//! nest, so a span that starts inside the previous one on its track and
//! outlasts it is clipped to start where the previous ends (counted in
//! `otherData.clipped_spans`). Events are written in timestamp order.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use preempt_jit::ir::{ForeignFn, PreemptMode};
use serde_json::{json, Map, Value};

pub use crate::stats::monotonic_ns;
use crate::stats::{human_ns, PreemptKind};

/// Event buffers per tracer; a thread always appends to the same one.
pub const SHARDS: usize = 64;

/// Events kept by default before further ones are dropped.
pub const DEFAULT_EVENT_LIMIT: usize = 2_000_000;

const PID_MS: u32 = 1;
const PID_PS: u32 = 2;
const PID_RUNTIME: u32 = 3;
/// Track ids are offset per process so that no two tracks share a tid.
const TID_BASE_M: u64 = 1_000_000;
const TID_BASE_P: u64 = 2_000_000;
const TID_RUNTIME: u64 = 3_000_000;

/// A timeline track.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Track {
    /// The worker thread M`n`.
    M(u32),
    /// The processor P`n`.
    P(u32),
    /// Global runtime events (the monitor).
    Runtime,
}

impl Track {
    fn pid(self) -> u32 {
        match self {
            Track::M(_) => PID_MS,
            Track::P(_) => PID_PS,
            Track::Runtime => PID_RUNTIME,
        }
    }
    fn tid(self) -> u64 {
        match self {
            Track::M(m) => TID_BASE_M + u64::from(m),
            Track::P(p) => TID_BASE_P + u64::from(p),
            Track::Runtime => TID_RUNTIME,
        }
    }
}

/// What a blocked goroutine waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlockReason {
    /// `send` on a channel.
    Send,
    /// `recv` on a channel.
    Recv,
    /// `select` with no ready arm.
    Select,
    /// `sleep`, or a timer.
    Sleep,
    /// Anything else, named.
    Other(&'static str),
}

impl BlockReason {
    pub fn name(self) -> &'static str {
        match self {
            BlockReason::Send => "chan send",
            BlockReason::Recv => "chan recv",
            BlockReason::Select => "select",
            BlockReason::Sleep => "sleep",
            BlockReason::Other(s) => s,
        }
    }
}

/// How a goroutine's run on an M ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RunEnd {
    /// It called `yield`.
    Yield,
    /// A preemption request stopped it, through this mechanism.
    Preempted(PreemptMode),
    /// It blocked.
    Blocked(BlockReason),
    /// It returned from its function or called `goexit`.
    Exited,
    /// It entered foreign code (`ccall`): its M left Go code.
    Foreign,
}

impl RunEnd {
    /// `yield`, `preempted`, `blocked`, `exited` or `foreign`.
    pub fn name(self) -> &'static str {
        match self {
            RunEnd::Yield => "yield",
            RunEnd::Preempted(_) => "preempted",
            RunEnd::Blocked(_) => "blocked",
            RunEnd::Exited => "exited",
            RunEnd::Foreign => "foreign",
        }
    }
}

impl fmt::Display for RunEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunEnd::Preempted(m) => write!(f, "preempted ({})", m.name()),
            RunEnd::Blocked(b) => write!(f, "blocked ({})", b.name()),
            other => f.write_str(other.name()),
        }
    }
}

/// What happened; formatted into a name and args only when writing.
#[derive(Clone, Debug)]
enum What {
    Run {
        g: u64,
        func: u32,
        end: RunEnd,
    },
    Foreign {
        g: u64,
        f: ForeignFn,
    },
    Span {
        name: &'static str,
    },
    PreemptRequest {
        g: u64,
        kind: PreemptKind,
        mech: PreemptMode,
    },
    Preempted {
        g: u64,
        mech: PreemptMode,
        ttp_ns: u64,
    },
    Handoff {
        p: u32,
        from_m: u32,
        to_m: u32,
    },
    ThreadCreated {
        m: u32,
        tid: i32,
    },
    Instant {
        name: &'static str,
        args: Box<[(&'static str, i64)]>,
    },
}

/// One recorded event: `dur` is `Some` for complete events.
#[derive(Clone, Debug)]
struct Event {
    ts: u64,
    dur: Option<u64>,
    track: Track,
    what: What,
}

/// One thread group's buffer, and how many more events it may keep before
/// it takes another chunk of the tracer's budget.
#[derive(Debug, Default)]
struct Shard {
    events: Vec<Event>,
    budget: usize,
}

/// Events a shard takes from the shared budget at a time, so that the
/// limit costs one shared atomic operation per this many events.
const BUDGET_CHUNK: usize = 1024;

/// Records scheduling events and writes them as Chrome trace JSON. Shared
/// by all threads (`Sync`); see the module documentation.
pub struct Tracer {
    enabled: bool,
    start_ns: u64,
    shards: Box<[Mutex<Shard>]>,
    /// Events not yet handed to a shard's budget.
    budget: AtomicUsize,
    dropped: AtomicU64,
    /// Function names by index, for `G<id> @func`.
    functions: Mutex<Vec<String>>,
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracer")
            .field("enabled", &self.enabled)
            .field("events", &self.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

thread_local! {
    /// This thread's shard number, assigned on first use.
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn shard_index() -> usize {
    SHARD.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
            s.set(i);
        }
        i
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Tracer {
    fn default() -> Tracer {
        Tracer::disabled()
    }
}

impl Tracer {
    /// An enabled tracer whose time zero is now.
    pub fn new() -> Tracer {
        Tracer::with_limit(DEFAULT_EVENT_LIMIT)
    }

    /// An enabled tracer that keeps at most `limit` events.
    pub fn with_limit(limit: usize) -> Tracer {
        Tracer {
            enabled: true,
            start_ns: monotonic_ns(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            budget: AtomicUsize::new(limit),
            dropped: AtomicU64::new(0),
            functions: Mutex::new(Vec::new()),
        }
    }

    /// A tracer that records nothing, at the cost of one branch per call.
    pub fn disabled() -> Tracer {
        Tracer {
            enabled: false,
            start_ns: 0,
            shards: Box::new([]),
            budget: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            functions: Mutex::new(Vec::new()),
        }
    }

    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The [`monotonic_ns`] reading that is time zero in the file.
    pub fn start_ns(&self) -> u64 {
        self.start_ns
    }

    /// The program's function names by index (`Module::names.functions`),
    /// used for `G<id> @func`; a function without one is written `@f<index>`.
    pub fn set_function_names(&self, names: Vec<String>) {
        if self.enabled {
            *lock(&self.functions) = names;
        }
    }

    /// Events recorded (and kept) so far.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).events.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events dropped because the limit was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    #[inline]
    fn push(&self, ts: u64, dur: Option<u64>, track: Track, what: What) {
        let mut shard = lock(&self.shards[shard_index()]);
        if shard.budget == 0 {
            shard.budget = self.take_budget();
            if shard.budget == 0 {
                self.dropped.fetch_add(1, Relaxed);
                return;
            }
        }
        shard.budget -= 1;
        shard.events.push(Event {
            ts,
            dur,
            track,
            what,
        });
    }

    /// Up to [`BUDGET_CHUNK`] events from the shared budget.
    fn take_budget(&self) -> usize {
        let mut left = self.budget.load(Relaxed);
        loop {
            let take = left.min(BUDGET_CHUNK);
            if take == 0 {
                return 0;
            }
            match self
                .budget
                .compare_exchange_weak(left, left - take, Relaxed, Relaxed)
            {
                Ok(_) => return take,
                Err(now) => left = now,
            }
        }
    }

    // ---- events ----

    /// Goroutine `g`, running function index `func`, ran on M `m` (holding
    /// P `p`) from `start` to `end` and stopped as `how`. Records a span on
    /// the M's track and on the P's.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        m: u32,
        p: Option<u32>,
        g: u64,
        func: u32,
        start: u64,
        end: u64,
        how: RunEnd,
    ) {
        if !self.enabled {
            return;
        }
        let dur = Some(end.saturating_sub(start));
        let what = What::Run { g, func, end: how };
        if let Some(p) = p {
            self.push(start, dur, Track::P(p), what.clone());
        }
        self.push(start, dur, Track::M(m), what);
    }

    /// Goroutine `g` on M `m` was in the foreign function `f` from `start`
    /// to `end` (`ccall sleep`, `ccall spin`, ...).
    pub fn foreign_call(&self, m: u32, g: u64, f: ForeignFn, start: u64, end: u64) {
        if !self.enabled {
            return;
        }
        let dur = Some(end.saturating_sub(start));
        self.push(start, dur, Track::M(m), What::Foreign { g, f });
    }

    /// At `at`, the monitor asked goroutine `g` (running on P `p`) to stop,
    /// for `kind`, through `mech`.
    pub fn preempt_requested(
        &self,
        at: u64,
        p: Option<u32>,
        g: u64,
        kind: PreemptKind,
        mech: PreemptMode,
    ) {
        if !self.enabled {
            return;
        }
        let what = What::PreemptRequest { g, kind, mech };
        if let Some(p) = p {
            self.push(at, None, Track::P(p), what.clone());
        }
        self.push(at, None, Track::Runtime, what);
    }

    /// At `at`, goroutine `g` stopped on M `m` (P `p`) through `mech`,
    /// `ttp_ns` after the request.
    pub fn preempted(
        &self,
        at: u64,
        m: u32,
        p: Option<u32>,
        g: u64,
        mech: PreemptMode,
        ttp_ns: u64,
    ) {
        if !self.enabled {
            return;
        }
        let what = What::Preempted { g, mech, ttp_ns };
        if let Some(p) = p {
            self.push(at, None, Track::P(p), what.clone());
        }
        self.push(at, None, Track::M(m), what);
    }

    /// At `at`, the monitor took P `p` from M `from_m`, which is in foreign
    /// code, and gave it to M `to_m`.
    pub fn handoff(&self, at: u64, p: u32, from_m: u32, to_m: u32) {
        if !self.enabled {
            return;
        }
        let what = What::Handoff { p, from_m, to_m };
        self.push(at, None, Track::P(p), what.clone());
        self.push(at, None, Track::Runtime, what);
    }

    /// At `at`, M `m` started as kernel thread `tid`; its track is named
    /// `M<m> (tid <tid>)`.
    pub fn thread_created(&self, at: u64, m: u32, tid: i32) {
        if !self.enabled {
            return;
        }
        let what = What::ThreadCreated { m, tid };
        self.push(at, None, Track::M(m), what.clone());
        self.push(at, None, Track::Runtime, what);
    }

    /// A named instant on `track`, with integer args.
    pub fn instant(&self, at: u64, track: Track, name: &'static str, args: &[(&'static str, i64)]) {
        if !self.enabled {
            return;
        }
        let args = args.to_vec().into_boxed_slice();
        self.push(at, None, track, What::Instant { name, args });
    }

    /// A named span on `track` from `start` to `end`.
    pub fn span(&self, track: Track, name: &'static str, start: u64, end: u64) {
        if !self.enabled {
            return;
        }
        let dur = Some(end.saturating_sub(start));
        self.push(start, dur, track, What::Span { name });
    }

    // ---- output ----

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
        let (meta, events, clipped) = self.prepare();
        let functions = lock(&self.functions).clone();
        w.write_all(b"{\"traceEvents\":[\n")?;
        let mut first = true;
        let rest = events.iter().map(|e| self.event_json(e, &functions));
        for v in meta.into_iter().chain(rest) {
            if !first {
                w.write_all(b",\n")?;
            }
            first = false;
            serde_json::to_writer(&mut w, &v)?;
        }
        let other = json!({
            "source": "preempt",
            "clock": "CLOCK_MONOTONIC",
            "start_ns": self.start_ns,
            "clipped_spans": clipped,
            "dropped_events": self.dropped(),
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

    /// Metadata events, the other events in timestamp order, and the
    /// number of spans clipped to keep each track properly nested.
    fn prepare(&self) -> (Vec<Value>, Vec<Event>, u64) {
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

        let mut tids = std::collections::BTreeMap::new();
        let mut tracks = std::collections::BTreeSet::new();
        for e in &events {
            tracks.insert(e.track);
            if let What::ThreadCreated { m, tid } = e.what {
                tids.insert(m, tid);
            }
        }
        (metadata(&tracks, &tids), events, clipped)
    }

    fn us(&self, ns: u64) -> f64 {
        ns.saturating_sub(self.start_ns) as f64 / 1000.0
    }

    fn event_json(&self, e: &Event, functions: &[String]) -> Value {
        let func_name = |f: u32| match functions.get(f as usize) {
            Some(n) => format!("@{n}"),
            None => format!("@f{f}"),
        };
        let (name, cat, args): (String, &str, Value) = match &e.what {
            What::Run { g, func, end } => {
                let mut args = json!({
                    "goroutine": g,
                    "function": func_name(*func),
                    "end": end.name(),
                });
                match end {
                    RunEnd::Preempted(m) => args["mechanism"] = json!(m.name()),
                    RunEnd::Blocked(b) => args["blocked_on"] = json!(b.name()),
                    _ => {}
                }
                (format!("G{g} {}", func_name(*func)), "goroutine", args)
            }
            What::Foreign { g, f } => (
                format!("ccall {}", f.name()),
                "foreign",
                json!({ "goroutine": g, "function": f.name() }),
            ),
            What::Span { name } => (name.to_string(), "runtime", json!({})),
            What::PreemptRequest { g, kind, mech } => (
                format!("preempt request G{g}"),
                "preempt",
                json!({ "goroutine": g, "reason": kind.name(), "mechanism": mech.name() }),
            ),
            What::Preempted { g, mech, ttp_ns } => (
                format!("preempted G{g} ({})", human_ns(*ttp_ns)),
                "preempt",
                json!({
                    "goroutine": g,
                    "mechanism": mech.name(),
                    "time_to_preempt_ns": ttp_ns,
                    "time_to_preempt": human_ns(*ttp_ns),
                }),
            ),
            What::Handoff { p, from_m, to_m } => (
                format!("hand-off P{p}: M{from_m} -> M{to_m}"),
                "handoff",
                json!({
                    "p": p,
                    "from_m": from_m,
                    "to_m": to_m,
                    "reason": "M in foreign code",
                }),
            ),
            What::ThreadCreated { m, tid } => (
                format!("M{m} created"),
                "thread",
                json!({ "m": m, "tid": tid }),
            ),
            What::Instant { name, args } => {
                let map: Map<String, Value> = args
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                (name.to_string(), "runtime", Value::Object(map))
            }
        };
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
        v
    }
}

/// Clips complete events so that, on each track, any two either nest or
/// do not overlap (Perfetto drops improperly nested ones). `events` is
/// sorted by track, then start, then longest first. Returns how many were
/// clipped.
fn nest_spans(events: &mut [Event]) -> u64 {
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
fn metadata(
    tracks: &std::collections::BTreeSet<Track>,
    tids: &std::collections::BTreeMap<u32, i32>,
) -> Vec<Value> {
    let mut out = Vec::new();
    let processes = [(PID_MS, "Ms"), (PID_PS, "Ps"), (PID_RUNTIME, "runtime")];
    for (i, (pid, name)) in processes.iter().enumerate() {
        if !tracks.iter().any(|t| t.pid() == *pid) {
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
    for &t in tracks {
        let (name, sort) = match t {
            Track::M(m) => match tids.get(&m) {
                Some(tid) => (format!("M{m} (tid {tid})"), m),
                None => (format!("M{m}"), m),
            },
            Track::P(p) => (format!("P{p}"), p),
            Track::Runtime => ("runtime (sysmon)".to_string(), 0),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};
    use std::sync::Arc;

    const US: u64 = 1_000;

    /// A small scheduling story on 2 Ms and 2 Ps, at fixed offsets from the
    /// tracer's start.
    fn story() -> Tracer {
        let t = Tracer::new();
        t.set_function_names(vec!["main".into(), "spinner".into(), "sleeper".into()]);
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
            RunEnd::Preempted(PreemptMode::Coop),
        );
        t.preempt_requested(
            t0 + 10_000 * US,
            Some(1),
            2,
            PreemptKind::Quantum,
            PreemptMode::Coop,
        );
        t.preempted(t0 + 10_012 * US, 1, Some(1), 2, PreemptMode::Coop, 12 * US);
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
        t.span(Track::Runtime, "sysmon sleep", t0 + 61 * US, t0 + 81 * US);
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

    /// The structural rules Perfetto's JSON importer relies on.
    fn check_structure(v: &Value) {
        assert_eq!(v["displayTimeUnit"], "ns");
        let evs = events(v);
        let mut named: BTreeSet<(u64, u64)> = BTreeSet::new();
        let mut named_pids: BTreeSet<u64> = BTreeSet::new();
        let mut used: BTreeSet<(u64, u64)> = BTreeSet::new();
        let mut tid_pid: HashMap<u64, u64> = HashMap::new();
        let mut last_ts = f64::MIN;
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
            "runtime (sysmon)",
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
        assert_eq!(procs, ["Ms", "Ps", "runtime"]);
        assert_eq!(v["otherData"]["clipped_spans"], 0);
        assert_eq!(v["otherData"]["dropped_events"], 0);
    }

    #[test]
    fn run_spans_on_m_and_p_with_args() {
        let v = story().to_json();
        let runs: Vec<&Value> = events(&v)
            .iter()
            .filter(|e| e["ph"] == "X" && e["name"] == "G2 @spinner")
            .collect();
        // Two runs of G2, each on M1 and on P1.
        assert_eq!(runs.len(), 4);
        let preempted = runs
            .iter()
            .find(|e| e["args"]["end"] == "preempted")
            .expect("a preempted run");
        assert_eq!(preempted["args"]["mechanism"], "coop");
        assert_eq!(preempted["args"]["goroutine"], 2);
        assert_eq!(preempted["args"]["function"], "@spinner");
        assert_eq!(preempted["ts"].as_f64().unwrap(), 12.0);
        assert_eq!(preempted["dur"].as_f64().unwrap(), 10_000.0);
        let blocked = events(&v)
            .iter()
            .find(|e| e["name"] == "G1 @main" && e["args"]["end"] == "blocked")
            .unwrap();
        assert_eq!(blocked["args"]["blocked_on"], "chan recv");
        let pids: BTreeSet<u64> = runs.iter().map(|e| e["pid"].as_u64().unwrap()).collect();
        assert_eq!(pids, BTreeSet::from([u64::from(PID_MS), u64::from(PID_PS)]));
    }

    #[test]
    fn instants_and_foreign_calls() {
        let v = story().to_json();
        let evs = events(&v);
        let find =
            |name: &str| -> Vec<&Value> { evs.iter().filter(|e| e["name"] == name).collect() };
        let req = find("preempt request G2");
        assert_eq!(req.len(), 2, "on P1 and on the runtime track");
        assert!(req.iter().all(|e| e["ph"] == "i"));
        assert_eq!(req[0]["args"]["reason"], "quantum");
        assert_eq!(req[0]["args"]["mechanism"], "coop");
        let done = find("preempted G2 (12µs)");
        assert_eq!(done.len(), 2);
        assert_eq!(done[0]["args"]["time_to_preempt_ns"], 12_000);
        let h = find("hand-off P0: M0 -> M2");
        assert_eq!(h.len(), 2);
        let tracks: BTreeSet<u64> = h.iter().map(|e| e["tid"].as_u64().unwrap()).collect();
        assert_eq!(tracks, BTreeSet::from([TID_BASE_P, TID_RUNTIME]));
        assert_eq!(h[0]["args"]["from_m"], 0);
        assert_eq!(h[0]["args"]["to_m"], 2);
        let cc = find("ccall sleep");
        assert_eq!(cc.len(), 1);
        assert_eq!(cc[0]["ph"], "X");
        assert_eq!(cc[0]["dur"].as_f64().unwrap(), 1000.0);
        assert_eq!(cc[0]["tid"].as_u64().unwrap(), TID_BASE_M);
        let tick = find("sysmon tick");
        assert_eq!(tick[0]["args"]["delay_us"], 20);
        assert_eq!(find("sysmon sleep")[0]["ph"], "X");
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
        assert_eq!(e["name"], "G7 @f0");
    }

    #[test]
    fn overlapping_spans_are_clipped_to_nest() {
        let t = Tracer::new();
        let t0 = t.start_ns();
        // Two runs on M0 whose clock readings overlap by 3 ns, and a span
        // properly nested in the first.
        t.run(0, None, 1, 0, t0 + 1000, t0 + 2003, RunEnd::Yield);
        t.run(0, None, 2, 0, t0 + 2000, t0 + 3000, RunEnd::Yield);
        t.span(Track::M(0), "inner", t0 + 1500, t0 + 1600);
        let v = written(&t);
        check_structure(&v);
        assert_eq!(v["otherData"]["clipped_spans"], 1);
        let g2 = events(&v).iter().find(|e| e["name"] == "G2 @f0").unwrap();
        assert_eq!((g2["ts"].as_f64().unwrap() * 1000.0).round() as u64, 2003);
        assert_eq!((g2["dur"].as_f64().unwrap() * 1000.0).round() as u64, 997);
    }

    #[test]
    fn disabled_tracer_records_nothing() {
        let t = Tracer::disabled();
        assert!(!t.is_enabled());
        t.run(0, Some(0), 1, 0, 0, 10, RunEnd::Exited);
        t.handoff(5, 0, 0, 1);
        t.instant(5, Track::Runtime, "x", &[]);
        assert_eq!(t.len(), 0);
        let v = t.to_json();
        assert!(events(&v).is_empty());
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
                        t.run(m, Some(m % 2 + 2 * (m / 2)), i, 0, s, s + 90, RunEnd::Yield);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert_eq!(t.len(), 4 + 4 + 4000 * 2);
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
}
