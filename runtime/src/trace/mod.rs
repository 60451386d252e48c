//! `--trace FILE`: a scheduling timeline in Chrome's trace-event JSON, the
//! format chrome://tracing and Perfetto open; and `--log-stops`, a line
//! per stop on stderr fed by the same calls.
//!
//! # Tracks
//!
//! - process **Ms**: one track per M (worker OS thread), named
//!   `M3 (tid 12345)` once [`Tracer::thread_created`] told its kernel tid;
//! - process **Ps**: one track per P, named `P0`, `P1`, ...;
//! - process **goroutines**: one track per goroutine, named `G2 @spin`
//!   after the function it started in;
//! - process **runtime**: the requesters (the monitor, the stopper of the
//!   world), the collector (`GC`) and the stops of the world.
//!
//! # Events
//!
//! Every event's `name` is one of a fixed set (a run span is named after
//! its function), so a viewer groups by name; what varies is in `args`.
//!
//! | call | name | phase | tracks |
//! | --- | --- | --- | --- |
//! | [`Tracer::run`] | the function, `@spin`; args g, end, mechanism or blocked_on | `X` | M, P, G |
//! | [`Tracer::foreign_call`] | `ccall sleep`, `ccall spin` | `X` | M, G |
//! | [`Tracer::preempt_requested`] | `preempt request`; g, p, reason, mechanism | `i` | runtime, P, G |
//! | [`Tracer::rerequested`] | `re-request`; g, why | `i` | runtime, G |
//! | [`Tracer::request_ended`] | `request ended`; g, outcome (stale, cancelled, withdrawn), at | `i` | G |
//! | [`Tracer::signal_sent`] | `signal sent`; g, m, p, signal | `i` | M, G |
//! | [`Tracer::handled`] | `handler redirect`, `handler decline`, `handler stale`; g, m, trigger, pc, function, reason | `i` | M, G |
//! | [`Tracer::effect`] | `arm`, `disarm`; g, mechanism, effect, again, cost_ns | `i` | G |
//! | [`Tracer::preempted`] | `preempted`; g, m, p, mechanism, reason, latency_ns, pc, function | `i` | M, P, G |
//! | [`Tracer::stopped_the_world`] | `stop the world` and within it `waiting for a P`, `stopping`, `world stopped`; why | `X` | world |
//! | [`Tracer::gc_cycle`], [`Tracer::gc_phase`] | `GC cycle`; cycle. `mark start`, `concurrent mark`, `mark termination`, `sweep` | `X` | GC |
//! | [`Tracer::handoff`] | `hand-off`; p, from_m, to_m | `i` | P, runtime |
//! | [`Tracer::thread_created`] | `thread created`; m, tid | `i` | M, runtime |
//! | [`Tracer::instant`], [`Tracer::span`] | anything else | `i`, `X` | any |
//!
//! Each request is linked to what became of it twice over: an async span
//! (`b`/`e`, name `preempt request`, one `id` per request, a `n` step per
//! re-request) from the request to its stop or end, and a flow (`s` on
//! the requester's track, `f` bound to the `preempted` instant on the M)
//! from a request to the stop it produced. Metadata (`M`) events name
//! each process and each track used and fix their order.
//!
//! # Handler decisions
//!
//! A signal or fault handler cannot call the tracer (it locks and
//! allocates). It leaves each decision in its M's fixed ring of atomics
//! ([`crate::preempt::record`]), with the time it read the clock, and a
//! normal thread turns the ring into [`Tracer::handled`] calls: the M
//! itself when the goroutine stops or its slice ends, the monitor on each
//! pass, and the end of the run. Events carry their own timestamps and the
//! file is sorted by them, so the order in which threads hand events over
//! does not matter.
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
//! A tracer that records nothing ([`Tracer::disabled`]) returns from every
//! call after one test of a plain `bool`. A recording one appends a record
//! (names and args are formatted only when writing) to one of [`SHARDS`]
//! mutex-guarded buffers chosen by the calling thread, so threads rarely
//! contend and share no counter per event. At most
//! [`DEFAULT_EVENT_LIMIT`] events are kept (2 million, a few hundred MB in
//! memory; [`Tracer::with_limit`] sets another); later ones are counted as
//! dropped (`otherData.dropped_events`). None of this is
//! async-signal-safe: record from ordinary code, never from a handler.
//!
//! # What Perfetto needs, and what [`Tracer::write`] guarantees
//!
//! Every event has `name`, `ph`, `ts`, `pid` and `tid`; `X` events have a
//! non-negative `dur`; instants have a scope `s` of `"t"`. Track ids (`tid`)
//! are distinct across the processes, because Perfetto identifies a thread
//! by its tid (a tid seen under another pid is taken for a new thread).
//! Perfetto accepts complete events on one track only if they nest, so a
//! span that starts inside the previous one on its track and outlasts it
//! is clipped to start where the previous ends (counted in
//! `otherData.clipped_spans`). Every async `b` has its `e` and every flow
//! `s` its `f` (a request still pending when the trace is written ends at
//! the last event, outcome `pending`). Events are written in timestamp
//! order.

mod event;
mod stops;
#[cfg(test)]
mod tests;
mod write;

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use preempt_jit::ir::{ForeignFn, PreemptMode};

pub use crate::stats::monotonic_ns;
use crate::stats::PreemptKind;
use event::{Event, What};

/// Event buffers per tracer; a thread always appends to the same one.
pub const SHARDS: usize = 64;

/// Events kept by default before further ones are dropped.
pub const DEFAULT_EVENT_LIMIT: usize = 2_000_000;

/// A timeline track.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Track {
    /// The worker thread M`n`.
    M(u32),
    /// The processor P`n`.
    P(u32),
    /// The goroutine G`n`.
    G(u64),
    /// The requesters: the monitor's requests, the stopper's.
    Runtime,
    /// The collector's cycles and phases.
    Gc,
    /// The stops of the world.
    World,
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

/// An argument of a generic span or instant.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Arg {
    Int(i64),
    Str(&'static str),
}

/// What woke a handler.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HandlerTrigger {
    /// The preemption signal.
    Signal,
    /// A poll-page fault (`--preempt trap`).
    Fault,
}

impl HandlerTrigger {
    pub fn name(self) -> &'static str {
        match self {
            HandlerTrigger::Signal => "signal",
            HandlerTrigger::Fault => "fault",
        }
    }
}

/// What a handler decided.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Handled {
    /// Sent the goroutine into the stub, to resume at `resume_pc`.
    Redirect { resume_pc: usize },
    /// Returned without redirecting, for this reason (the names of
    /// `RetryReason`).
    Decline(&'static str),
    /// Found no request to honour (the goroutine stopped since, or the
    /// worker runs none).
    Stale,
}

/// One handler decision, as a normal thread hands it over.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Decision {
    /// When the handler read the clock.
    pub at: u64,
    pub m: u32,
    /// The goroutine the worker ran (0: none).
    pub g: u64,
    pub trigger: HandlerTrigger,
    pub handled: Handled,
    /// The interrupted PC.
    pub pc: usize,
}

/// How a request ended without its goroutine stopping for it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RequestEnd {
    /// Withdrawn before anything was applied: the slice it was made for
    /// had ended, or the run.
    Stale,
    /// The slice ended while the request was being armed: undone.
    Cancelled,
    /// In effect when the goroutine's slice ended for another reason:
    /// `yield`, `blocked`, `exited`, `foreign call`.
    SliceEnded(&'static str),
}

impl RequestEnd {
    pub fn name(self) -> &'static str {
        match self {
            RequestEnd::Stale => "stale",
            RequestEnd::Cancelled => "cancelled",
            RequestEnd::SliceEnded(_) => "withdrawn",
        }
    }
}

/// A goroutine stopped for a request: what [`Tracer::preempted`] records.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stop {
    /// When it reached the runtime.
    pub at: u64,
    pub m: u32,
    pub p: Option<u32>,
    pub g: u64,
    /// The mechanism that stopped it.
    pub mech: PreemptMode,
    pub kind: PreemptKind,
    /// When the request was made (the request's identity, with `g`).
    pub requested_at: u64,
    /// Where it stopped: the PC it resumes at (the stub's resume address,
    /// or the runtime call's return address), when known.
    pub pc: Option<usize>,
}

/// A stop of the world, once the world runs again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WorldStop {
    /// What it was for.
    pub why: &'static str,
    /// The stop was wanted (the stopper began looking for a P of its own).
    pub wanted_at: u64,
    /// The stopper held a P and asked every other to stop.
    pub requested_at: u64,
    /// Every P stopped.
    pub stopped_at: u64,
    /// The world started again.
    pub restarted_at: u64,
}

/// A request's effect applied or undone on a goroutine.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EffectChange {
    pub at: u64,
    pub g: u64,
    pub mech: PreemptMode,
    /// Applied (`arm`) or undone (`disarm`).
    pub arm: bool,
    /// Applied again (a re-request), or moved (a patch that follows).
    pub again: bool,
    /// What was done: `guard`, `poll word`, `trap page`, `global page`,
    /// `patch`.
    pub effect: &'static str,
    /// Under `patch`, the function whose back-edges were rewritten.
    pub function: Option<u32>,
    /// How long it took (0 when not timed).
    pub cost_ns: u64,
}

/// A JIT function's code, for naming PCs (`@spin+0x1f`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CodeRange {
    pub start: usize,
    pub end: usize,
    pub func: u32,
}

/// Function names and code ranges, for naming goroutines and PCs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    functions: Vec<String>,
    /// Sorted by start.
    code: Vec<CodeRange>,
}

impl Names {
    /// `@name` of function index `f`, or `@f<index>`.
    pub(crate) fn function(&self, f: u32) -> String {
        match self.functions.get(f as usize) {
            Some(n) => format!("@{n}"),
            None => format!("@f{f}"),
        }
    }

    /// The function holding `pc` and the offset into it.
    pub(crate) fn locate(&self, pc: usize) -> Option<(String, usize)> {
        let i = self.code.partition_point(|r| r.start <= pc);
        let r = self.code.get(i.checked_sub(1)?)?;
        (pc < r.end).then(|| (self.function(r.func), pc - r.start))
    }

    /// `@spin+0x1f`, or the bare address outside the JIT's functions.
    pub(crate) fn describe_pc(&self, pc: usize) -> String {
        match self.locate(pc) {
            Some((f, off)) => format!("{f}+{off:#x}"),
            None => format!("{pc:#x}"),
        }
    }
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

/// Records scheduling events and writes them as Chrome trace JSON, and
/// feeds the stop log. Shared by all threads (`Sync`); see the module
/// documentation.
pub struct Tracer {
    /// Anything observes: the timeline, the stop log or both. The one
    /// test every call makes first.
    on: bool,
    /// The timeline is recorded.
    timeline: bool,
    start_ns: u64,
    shards: Box<[Mutex<Shard>]>,
    /// Events not yet handed to a shard's budget.
    budget: AtomicUsize,
    dropped: AtomicU64,
    /// Handler decisions lost because a worker's ring was full.
    lost_decisions: AtomicU64,
    names: Mutex<Names>,
    /// `--log-stops`.
    stops: Option<stops::StopLog>,
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracer")
            .field("timeline", &self.timeline)
            .field("stop_log", &self.stops.is_some())
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
    /// A tracer recording the timeline, whose time zero is now.
    pub fn new() -> Tracer {
        Tracer::with_limit(DEFAULT_EVENT_LIMIT)
    }

    /// A tracer recording the timeline that keeps at most `limit` events.
    pub fn with_limit(limit: usize) -> Tracer {
        Tracer {
            on: true,
            timeline: true,
            start_ns: monotonic_ns(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            budget: AtomicUsize::new(limit),
            dropped: AtomicU64::new(0),
            lost_decisions: AtomicU64::new(0),
            names: Mutex::default(),
            stops: None,
        }
    }

    /// A tracer that records nothing, at the cost of one branch per call.
    pub fn disabled() -> Tracer {
        Tracer {
            on: false,
            timeline: false,
            start_ns: monotonic_ns(),
            shards: Box::new([]),
            budget: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            lost_decisions: AtomicU64::new(0),
            names: Mutex::default(),
            stops: None,
        }
    }

    /// This tracer, also keeping the stop log of `--log-stops` (see
    /// [`Tracer::flush_stops`]).
    pub fn with_stop_log(mut self) -> Tracer {
        self.stops = Some(stops::StopLog::new(self.start_ns));
        self.on = true;
        self
    }

    /// Whether the timeline is recorded.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.timeline
    }

    /// Whether anything is observed (the timeline or the stop log): the
    /// callers that must do work to make an event ask this first.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Whether `--log-stops` is on.
    pub fn logs_stops(&self) -> bool {
        self.stops.is_some()
    }

    /// The [`monotonic_ns`] reading that is time zero in the file.
    pub fn start_ns(&self) -> u64 {
        self.start_ns
    }

    /// The program's function names by index (`Module::names.functions`),
    /// which name run spans and goroutine tracks; a function without one
    /// is written `@f<index>`.
    pub fn set_function_names(&self, names: Vec<String>) {
        if self.on {
            lock(&self.names).functions = names;
        }
    }

    /// The JIT functions' code ranges, which name PCs (`@spin+0x1f`).
    pub fn set_code(&self, mut code: Vec<CodeRange>) {
        if self.on {
            code.sort_by_key(|r| r.start);
            lock(&self.names).code = code;
        }
    }

    /// `@spin+0x1f` for `pc` (its bare address outside JIT code).
    pub fn describe_pc(&self, pc: usize) -> String {
        lock(&self.names).describe_pc(pc)
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

    /// Records `what` at `ts` on each of `tracks` (a complete event when
    /// `dur` is given).
    fn push(&self, ts: u64, dur: Option<u64>, tracks: &[Track], what: What) {
        if !self.timeline {
            return;
        }
        let mut shard = lock(&self.shards[shard_index()]);
        for &track in tracks {
            if shard.budget == 0 {
                shard.budget = self.take_budget();
                if shard.budget == 0 {
                    self.dropped.fetch_add(1, Relaxed);
                    continue;
                }
            }
            shard.budget -= 1;
            shard.events.push(Event {
                ts,
                dur,
                track,
                what: what.clone(),
            });
        }
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
    /// the M's track, the P's and the goroutine's.
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
        if !self.timeline {
            return;
        }
        let dur = Some(end.saturating_sub(start));
        let what = What::Run { g, func, end: how };
        match p {
            Some(p) => self.push(start, dur, &[Track::M(m), Track::P(p), Track::G(g)], what),
            None => self.push(start, dur, &[Track::M(m), Track::G(g)], what),
        }
    }

    /// Goroutine `g` on M `m` was in the foreign function `f` from `start`
    /// to `end` (`ccall sleep`, `ccall spin`, ...).
    pub fn foreign_call(&self, m: u32, g: u64, f: ForeignFn, start: u64, end: u64) {
        if !self.timeline {
            return;
        }
        let dur = Some(end.saturating_sub(start));
        self.push(
            start,
            dur,
            &[Track::M(m), Track::G(g)],
            What::Foreign { g, f },
        );
    }

    /// At `at`, a requester asked goroutine `g` (running on P `p`) to
    /// stop, for `kind`, through `mech`: the request's identity is `(g,
    /// at)`.
    pub fn preempt_requested(
        &self,
        at: u64,
        p: Option<u32>,
        g: u64,
        kind: PreemptKind,
        mech: PreemptMode,
    ) {
        if !self.on {
            return;
        }
        if let Some(log) = &self.stops {
            log.requested(g, at);
        }
        let what = What::Request { g, p, kind, mech };
        match p {
            Some(p) => self.push(at, None, &[Track::Runtime, Track::P(p), Track::G(g)], what),
            None => self.push(at, None, &[Track::Runtime, Track::G(g)], what),
        }
    }

    /// At `at`, the request `(g, requested_at)` was applied again, for
    /// `why` (`back-off`, `follow`).
    pub fn rerequested(&self, at: u64, g: u64, requested_at: u64, why: &'static str) {
        if !self.timeline {
            return;
        }
        let what = What::Rerequest {
            g,
            requested_at,
            why,
        };
        self.push(at, None, &[Track::Runtime, Track::G(g)], what);
    }

    /// At `at`, the request `(g, requested_at)` for `kind` ended without
    /// its goroutine stopping for it.
    pub fn request_ended(
        &self,
        at: u64,
        g: u64,
        requested_at: u64,
        kind: PreemptKind,
        end: RequestEnd,
    ) {
        if !self.on {
            return;
        }
        if let Some(log) = &self.stops {
            log.ended(at, g, requested_at, kind, end);
        }
        let what = What::RequestEnded {
            g,
            requested_at,
            kind,
            end,
        };
        self.push(at, None, &[Track::G(g)], what);
    }

    /// At `at`, the preemption signal `signo` went to M `m`, holding P
    /// `p`, which ran goroutine `g` (0: none).
    pub fn signal_sent(&self, at: u64, m: u32, p: u32, g: u64, signo: i32) {
        if !self.on {
            return;
        }
        if let Some(log) = &self.stops {
            log.signalled(at, g);
        }
        let what = What::Signal { g, m, p, signo };
        if g == 0 {
            self.push(at, None, &[Track::M(m)], what);
        } else {
            self.push(at, None, &[Track::M(m), Track::G(g)], what);
        }
    }

    /// A handler's decision, handed over by a normal thread.
    pub fn handled(&self, d: Decision) {
        if !self.on {
            return;
        }
        if let Some(log) = &self.stops {
            log.handled(&d);
        }
        let what = What::Handler(d);
        if d.g == 0 {
            self.push(d.at, None, &[Track::M(d.m)], what);
        } else {
            self.push(d.at, None, &[Track::M(d.m), Track::G(d.g)], what);
        }
    }

    /// `n` handler decisions were lost (a worker's ring was full before a
    /// normal thread emptied it); counted in `otherData`.
    pub fn decisions_lost(&self, n: u64) {
        if self.on && n > 0 {
            self.lost_decisions.fetch_add(n, Relaxed);
        }
    }

    /// A request's effect was applied or undone.
    pub fn effect(&self, e: EffectChange) {
        if !self.timeline {
            return;
        }
        self.push(e.at, None, &[Track::G(e.g)], What::Effect(e));
    }

    /// A goroutine stopped for its request.
    pub fn preempted(&self, s: Stop) {
        if !self.on {
            return;
        }
        if let Some(log) = &self.stops {
            log.stopped(&s);
        }
        let what = What::Stopped(s);
        match s.p {
            Some(p) => self.push(
                s.at,
                None,
                &[Track::M(s.m), Track::P(p), Track::G(s.g)],
                what,
            ),
            None => self.push(s.at, None, &[Track::M(s.m), Track::G(s.g)], what),
        }
    }

    /// A stop of the world, once the world runs again: a span for the
    /// whole, and within it one per phase.
    pub fn stopped_the_world(&self, w: WorldStop) {
        if !self.on {
            return;
        }
        if let Some(log) = &self.stops {
            log.world(&w);
        }
        let phases = [
            ("stop the world", w.wanted_at, w.restarted_at),
            ("waiting for a P", w.wanted_at, w.requested_at),
            ("stopping", w.requested_at, w.stopped_at),
            ("world stopped", w.stopped_at, w.restarted_at),
        ];
        for (name, start, end) in phases {
            let dur = Some(end.saturating_sub(start));
            self.push(
                start,
                dur,
                &[Track::World],
                What::World { name, why: w.why },
            );
        }
    }

    /// Collection number `n` ran from `start` to `end`.
    pub fn gc_cycle(&self, n: u64, start: u64, end: u64) {
        if !self.timeline {
            return;
        }
        let dur = Some(end.saturating_sub(start));
        self.push(start, dur, &[Track::Gc], What::GcCycle { n });
    }

    /// A phase of collection `n`, `mark start`, `concurrent mark`, `mark
    /// termination` or `sweep`, ran from `start` to `end`.
    pub fn gc_phase(&self, n: u64, name: &'static str, start: u64, end: u64) {
        if !self.timeline {
            return;
        }
        let dur = Some(end.saturating_sub(start));
        self.push(start, dur, &[Track::Gc], What::GcPhase { n, name });
    }

    /// At `at`, the monitor took P `p` from M `from_m`, which is in foreign
    /// code, and gave it to M `to_m`.
    pub fn handoff(&self, at: u64, p: u32, from_m: u32, to_m: u32) {
        if !self.timeline {
            return;
        }
        let what = What::Handoff { p, from_m, to_m };
        self.push(at, None, &[Track::P(p), Track::Runtime], what);
    }

    /// At `at`, M `m` started as kernel thread `tid`; its track is named
    /// `M<m> (tid <tid>)`.
    pub fn thread_created(&self, at: u64, m: u32, tid: i32) {
        if !self.timeline {
            return;
        }
        let what = What::ThreadCreated { m, tid };
        self.push(at, None, &[Track::M(m), Track::Runtime], what);
    }

    /// A named instant on `track`, with integer args.
    pub fn instant(&self, at: u64, track: Track, name: &'static str, args: &[(&'static str, i64)]) {
        if !self.timeline {
            return;
        }
        let args = args.iter().map(|&(k, v)| (k, Arg::Int(v))).collect();
        self.push(at, None, &[track], What::Instant { name, args });
    }

    /// A named span on `track` from `start` to `end`, with args.
    pub fn span(
        &self,
        track: Track,
        name: &'static str,
        start: u64,
        end: u64,
        args: &[(&'static str, Arg)],
    ) {
        if !self.timeline {
            return;
        }
        let dur = Some(end.saturating_sub(start));
        let args = args.to_vec().into_boxed_slice();
        self.push(start, dur, &[track], What::Span { name, args });
    }

    // ---- the stop log ----

    /// Writes the stop log's lines gathered so far to `w` (stderr), in
    /// time order, and forgets them; nothing without `--log-stops`. Called
    /// from a thread of its own, never where a stop is measured: the
    /// stops themselves only append a record under a mutex.
    pub fn flush_stops(&self, w: &mut dyn std::io::Write) {
        if let Some(log) = &self.stops {
            let names = lock(&self.names).clone();
            log.flush(&names, w);
        }
    }
}
