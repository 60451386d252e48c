//! Run statistics: the figures `--stats` prints and `--stats-json` exports.
//!
//! One [`Stats`] is shared by every thread of a run (it is `Sync`). The
//! scheduler bumps its counters from hot paths, so every counter is a relaxed
//! atomic increment; only histograms sit behind a mutex, and they are touched
//! once per preemption or per timer, not per instruction.
//!
//! # What each figure means and how it is measured
//!
//! Counters (events since the `Stats` was made):
//!
//! - **context switches** ([`Stats::context_switch`]): an M switched from its
//!   scheduler stack into a goroutine. Counted once per switch *into* a
//!   goroutine, so a goroutine that yields and is resumed counts twice.
//! - **goroutines created** ([`Stats::goroutines_created_add`]): `spawn`s, plus
//!   the main goroutine.
//! - **threads created (Ms)** ([`Stats::thread_created`]): worker OS threads
//!   started, including those a hand-off or a locked goroutine needs.
//! - **P hand-offs** ([`Stats::handoff`]): the monitor took a P from an M that
//!   sat in foreign code (`ccall`) longer than the retake threshold and gave
//!   it to another M, as Go's `retake` does.
//! - **foreign calls** ([`Stats::foreign_call`]): `ccall`s entered.
//! - **signals sent** ([`Stats::signal_sent`]): preemption signals sent to an
//!   M with `tgkill` (coalesced requests send none).
//! - **preemption requests** ([`Stats::preempt_requested`]): a request to stop
//!   a running goroutine, by why it was made ([`PreemptKind`]: its quantum ran
//!   out, or a stop-the-world needs every goroutine) and by the mechanism the
//!   run uses to ask ([`PreemptMode`]: coop, async, poll, trap, patch).
//! - **preemptions** ([`Stats::preempted`]): a requested goroutine stopped,
//!   by kind and by the mechanism that actually stopped it (in `async` mode a
//!   goroutine may still stop at a poisoned function entry, which is `coop`).
//! - **async-preempt retries** ([`Stats::retry`]): the signal handler found
//!   the goroutine at a PC where it may not stop and returned, by reason (a
//!   `&'static str` such as `"unsafe: write barrier"` or `"not JIT code"`).
//! - **other counts** ([`Stats::count`]): any further named event count.
//!
//! Latency histograms (HDR histograms in nanoseconds, 3 significant digits,
//! auto-resizing, values clamped to [`MAX_TRACKABLE_NS`]):
//!
//! - **time-to-preempt** ([`TIME_TO_PREEMPT`]): from the moment the monitor
//!   recorded a request (its [`monotonic_ns`] reading) to the moment the
//!   goroutine arrived in the scheduler (function-entry check, preemption
//!   stub, poll or patched back-edge). Recorded overall and per mechanism
//!   ([`ttp_name`]) by [`Stats::preempted`].
//! - any named histogram ([`Stats::record`]), e.g. [`STW_LATENCY`] (from the
//!   stop-the-world request until every goroutine stopped) or
//!   [`WAKE_LATENESS`] (how late a sleeping goroutine ran after its deadline).
//!
//! Percentiles are HDR's: the value at which the given fraction of samples
//! lie at or below, to within the histogram's 3 significant digits (so a
//! printed `max` may exceed the largest sample by up to 0.1%).
//!
//! # Signal safety
//!
//! Every counter method, [`Stats::retry`] and [`Stats::count`] included, is
//! lock-free and allocation-free, so it may be called from a signal handler.
//! [`Stats::preempted`] and [`Stats::record`] take a mutex and may allocate:
//! call them from ordinary code (the preemption stub's runtime entry, the
//! monitor), never from a handler.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use hdrhistogram::Histogram;
use preempt_jit::ir::PreemptMode;

mod json;
pub use json::json_key;

/// The overall time-to-preempt histogram.
pub const TIME_TO_PREEMPT: &str = "time-to-preempt";
/// Asynchronous time-to-preempt, first half: from the request to the
/// signal handler's redirect (the signal's delivery, and its retries).
pub const TTP_DELIVERY: &str = "time-to-preempt (async): request to handler";
/// Second half: from the handler's redirect to the runtime (sigreturn,
/// the stub's saves, the switch to the scheduler).
pub const TTP_STUB: &str = "time-to-preempt (async): handler to scheduler";
/// Of the second half, the handler's own part: from its decision to
/// leaving (by the hand-off, or by returning after a redirect).
pub const TTP_HANDLER: &str = "time-to-preempt (async): handler, decision to leaving";
/// Of the second half, the rest: from leaving the handler to the
/// scheduler (the hand-off's jump; or sigreturn, the stub's saves and its
/// runtime call after a redirect).
pub const TTP_LEAVE: &str = "time-to-preempt (async): leaving the handler to scheduler";
/// The counter of requests withdrawn because their slice ended `how`
/// (the slice-end names the scheduler gives: a request withdrawn as its
/// goroutine "stopped for an earlier request" was made after that stop,
/// and is a requester's mistake).
pub fn withdrawn_key(how: &'static str) -> &'static str {
    match how {
        "blocked" => "requests withdrawn: blocked",
        "foreign call" => "requests withdrawn: foreign call",
        "yield" => "requests withdrawn: yield",
        "exited" => "requests withdrawn: exited",
        "stopped for an earlier request" => "requests withdrawn: stopped for an earlier request",
        _ => "requests withdrawn: slice end",
    }
}

/// The conventional name for stop-the-world latency (request to all stopped).
pub const STW_LATENCY: &str = "stop-the-world latency";
/// Before it stops the world, the stopper gets a P of its own (as Go's
/// stopper runs on one): from wanting the stop to holding that P.
pub const STW_OWN_P: &str = "stop-the-world: the stopper's own P";
/// The conventional name for timer wake lateness (deadline to running).
pub const WAKE_LATENESS: &str = "wake lateness";

/// Larger values are recorded as this (one hour): a bogus timestamp must not
/// make a histogram grow without bound.
pub const MAX_TRACKABLE_NS: u64 = 3_600_000_000_000;

/// Significant decimal digits every histogram keeps.
const SIGFIG: u8 = 3;

/// Distinct keys the lock-free string-keyed counter tables hold; further
/// keys are counted under `"other"`.
const KEY_SLOTS: usize = 64;

/// The current `CLOCK_MONOTONIC` reading in nanoseconds: the clock every
/// timestamp of [`Stats`] and of the tracer is taken on. Async-signal-safe.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer;
    // CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Why a preemption was requested.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PreemptKind {
    /// The goroutine ran past its time slice (`--quantum`).
    Quantum,
    /// A stop-the-world (the GC's mark start and end) needs every goroutine.
    StopTheWorld,
}

impl PreemptKind {
    pub const ALL: &'static [PreemptKind] = &[PreemptKind::Quantum, PreemptKind::StopTheWorld];

    pub fn name(self) -> &'static str {
        match self {
            PreemptKind::Quantum => "quantum",
            PreemptKind::StopTheWorld => "stop-the-world",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The kind at `index` (`Quantum` for anything unknown).
    pub fn from_index(i: u8) -> PreemptKind {
        PreemptKind::ALL
            .get(i as usize)
            .copied()
            .unwrap_or(PreemptKind::Quantum)
    }
}

impl fmt::Display for PreemptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const KINDS: usize = 2;
const MECHS: usize = 5;

fn mech_index(m: PreemptMode) -> usize {
    match m {
        PreemptMode::Coop => 0,
        PreemptMode::Async => 1,
        PreemptMode::Poll => 2,
        PreemptMode::Trap => 3,
        PreemptMode::Patch => 4,
    }
}

/// The name of the per-mechanism time-to-preempt histogram, e.g.
/// `"time-to-preempt (async)"`.
pub fn ttp_name(m: PreemptMode) -> &'static str {
    match m {
        PreemptMode::Coop => "time-to-preempt (coop)",
        PreemptMode::Async => "time-to-preempt (async)",
        PreemptMode::Poll => "time-to-preempt (poll)",
        PreemptMode::Trap => "time-to-preempt (trap)",
        PreemptMode::Patch => "time-to-preempt (patch)",
    }
}

/// The histograms of what arming a goroutine for a stop costs the
/// requester (setting its poll word, swapping its poll page, `mprotect`,
/// rewriting its function's back-edges), and disarming it once stopped:
/// `"arm (patch)"`, `"disarm (patch)"`. Signals (async) and coop arm
/// nothing but the request flag and are not recorded.
pub fn arm_names(m: PreemptMode) -> Option<(&'static str, &'static str)> {
    match m {
        PreemptMode::Coop | PreemptMode::Async => None,
        PreemptMode::Poll => Some(("arm (poll)", "disarm (poll)")),
        PreemptMode::Trap => Some(("arm (trap)", "disarm (trap)")),
        PreemptMode::Patch => Some(("arm (patch)", "disarm (patch)")),
    }
}

/// A kind x mechanism matrix of counters.
#[derive(Debug)]
struct Matrix([[AtomicU64; MECHS]; KINDS]);

impl Matrix {
    fn new() -> Matrix {
        Matrix(std::array::from_fn(|_| {
            std::array::from_fn(|_| AtomicU64::new(0))
        }))
    }
    fn add(&self, kind: PreemptKind, mech: PreemptMode) {
        self.0[kind.index()][mech_index(mech)].fetch_add(1, Relaxed);
    }
    fn get(&self, kind: PreemptKind, mech: PreemptMode) -> u64 {
        self.0[kind.index()][mech_index(mech)].load(Relaxed)
    }
    fn by_kind(&self, kind: PreemptKind) -> u64 {
        PreemptMode::ALL.iter().map(|&m| self.get(kind, m)).sum()
    }
    fn by_mech(&self, mech: PreemptMode) -> u64 {
        PreemptKind::ALL.iter().map(|&k| self.get(k, mech)).sum()
    }
    fn total(&self) -> u64 {
        PreemptKind::ALL.iter().map(|&k| self.by_kind(k)).sum()
    }
    /// "quantum 3; coop 2, async 1", naming only non-zero entries.
    fn breakdown(&self) -> String {
        let kinds: Vec<String> = PreemptKind::ALL
            .iter()
            .map(|&k| (k.name(), self.by_kind(k)))
            .filter(|&(_, n)| n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let mechs: Vec<String> = PreemptMode::ALL
            .iter()
            .map(|&m| (m.name(), self.by_mech(m)))
            .filter(|&(_, n)| n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        format!("{}; {}", kinds.join(", "), mechs.join(", "))
    }
}

/// One key of a [`KeyCounters`] table. `ptr` is claimed first (0 = free);
/// `len` is the key's length plus one once published (0 = not yet).
#[derive(Debug)]
struct KeySlot {
    ptr: AtomicUsize,
    len: AtomicUsize,
    count: AtomicU64,
}

/// Counts keyed by `&'static str`, lock-free and allocation-free so that a
/// signal handler may count (a mutex could deadlock against the thread it
/// interrupted). A key is identified by its address and length; two racing
/// first uses of one key may claim two slots, which reading merges by
/// content.
#[derive(Debug)]
struct KeyCounters {
    slots: [KeySlot; KEY_SLOTS],
    overflow: AtomicU64,
}

impl KeyCounters {
    fn new() -> KeyCounters {
        KeyCounters {
            slots: std::array::from_fn(|_| KeySlot {
                ptr: AtomicUsize::new(0),
                len: AtomicUsize::new(0),
                count: AtomicU64::new(0),
            }),
            overflow: AtomicU64::new(0),
        }
    }

    fn add(&self, key: &'static str) {
        let (ptr, len) = (key.as_ptr() as usize, key.len() + 1);
        // The search starts at a slot chosen by the key's address, so that
        // a key is usually found in the first slot tried: the hand-off
        // counts from a handler whose caches a long spin left cold, where
        // each further slot's line could cost a miss.
        let start = (ptr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % KEY_SLOTS;
        let (head, tail) = self.slots.split_at(start);
        for slot in tail.iter().chain(head) {
            let p = slot.ptr.load(Acquire);
            if p == 0 {
                match slot.ptr.compare_exchange(0, ptr, AcqRel, Acquire) {
                    Ok(_) => {
                        slot.len.store(len, Release);
                        slot.count.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(q) if q == ptr && slot.len.load(Acquire) == len => {
                        slot.count.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(_) => continue,
                }
            }
            if p == ptr && slot.len.load(Acquire) == len {
                slot.count.fetch_add(1, Relaxed);
                return;
            }
        }
        self.overflow.fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for slot in &self.slots {
            let len = slot.len.load(Acquire);
            if len == 0 {
                continue;
            }
            let ptr = slot.ptr.load(Acquire);
            // SAFETY: a slot's ptr and len (plus one) are published only by
            // `add`, from one `&'static str`: the bytes live for the whole
            // program and are valid UTF-8.
            let key: &'static str = unsafe {
                std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr as *const u8, len - 1))
            };
            let n = slot.count.load(Relaxed);
            if n > 0 {
                *out.entry(key).or_insert(0) += n;
            }
        }
        let overflow = self.overflow.load(Relaxed);
        if overflow > 0 {
            *out.entry("other").or_insert(0) += overflow;
        }
        out
    }
}

/// Totals of the plain counters, read at one moment (each is exact; they
/// are not one atomic snapshot of each other).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub context_switches: u64,
    pub goroutines_created: u64,
    pub threads_created: u64,
    pub handoffs: u64,
    pub foreign_calls: u64,
    pub signals_sent: u64,
    /// Requests applied again because their goroutine had not stopped
    /// after a back-off (defence in depth: a lost request shows here).
    pub re_requests: u64,
    /// Preemption requests of every kind and mechanism.
    pub preempt_requests: u64,
    /// Completed preemptions of every kind and mechanism.
    pub preemptions: u64,
    /// Asynchronous-preemption retries of every reason.
    pub retries: u64,
}

/// The statistics of one run. See the module documentation for what each
/// figure means.
pub struct Stats {
    context_switches: AtomicU64,
    goroutines_created: AtomicU64,
    threads_created: AtomicU64,
    handoffs: AtomicU64,
    foreign_calls: AtomicU64,
    signals_sent: AtomicU64,
    re_requests: AtomicU64,
    requests: Matrix,
    preemptions: Matrix,
    retries: KeyCounters,
    counts: KeyCounters,
    /// Named histograms in the order they were first recorded into.
    histograms: Mutex<Vec<(&'static str, Histogram<u64>)>>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new()
    }
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats")
            .field("counters", &self.counters())
            .field("histograms", &self.histogram_names())
            .finish()
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new(SIGFIG).expect("3 significant digits is a valid HDR configuration")
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            context_switches: AtomicU64::new(0),
            goroutines_created: AtomicU64::new(0),
            threads_created: AtomicU64::new(0),
            handoffs: AtomicU64::new(0),
            foreign_calls: AtomicU64::new(0),
            signals_sent: AtomicU64::new(0),
            re_requests: AtomicU64::new(0),
            requests: Matrix::new(),
            preemptions: Matrix::new(),
            retries: KeyCounters::new(),
            counts: KeyCounters::new(),
            // Time-to-preempt first, so the report lists it first.
            histograms: Mutex::new(vec![(TIME_TO_PREEMPT, new_histogram())]),
        }
    }

    // ---- counters (lock-free, async-signal-safe) ----

    /// An M switched into a goroutine.
    #[inline]
    pub fn context_switch(&self) {
        self.context_switches.fetch_add(1, Relaxed);
    }

    /// `n` switches counted elsewhere (a scheduler keeping per-thread
    /// counts off its hot path).
    pub fn context_switches_add(&self, n: u64) {
        self.context_switches.fetch_add(n, Relaxed);
    }

    /// `n` goroutines created, counted elsewhere (the scheduler's id
    /// counter, which a spawn bumps anyway: one shared counter per spawn
    /// rather than two).
    pub fn goroutines_created_add(&self, n: u64) {
        self.goroutines_created.fetch_add(n, Relaxed);
    }

    /// A worker OS thread (an M) was started.
    #[inline]
    pub fn thread_created(&self) {
        self.threads_created.fetch_add(1, Relaxed);
    }

    /// A P was taken from an M in foreign code and given to another M.
    #[inline]
    pub fn handoff(&self) {
        self.handoffs.fetch_add(1, Relaxed);
    }

    /// A goroutine entered a foreign call.
    #[inline]
    pub fn foreign_call(&self) {
        self.foreign_calls.fetch_add(1, Relaxed);
    }

    /// A preemption signal was sent to an M.
    #[inline]
    pub fn signal_sent(&self) {
        self.signals_sent.fetch_add(1, Relaxed);
    }

    /// A request in effect was applied again after a back-off.
    #[inline]
    pub fn re_requested(&self) {
        self.re_requests.fetch_add(1, Relaxed);
    }

    /// The monitor requested a preemption, for `kind`, asking through `mech`.
    #[inline]
    pub fn preempt_requested(&self, kind: PreemptKind, mech: PreemptMode) {
        self.requests.add(kind, mech);
    }

    /// The asynchronous-preemption handler declined to stop the goroutine
    /// for `reason`; the monitor will retry.
    #[inline]
    pub fn retry(&self, reason: &'static str) {
        self.retries.add(reason);
    }

    /// One more of a named event.
    #[inline]
    pub fn count(&self, name: &'static str) {
        self.counts.add(name);
    }

    // ---- histograms (mutex; not from signal handlers) ----

    /// A requested goroutine stopped, `ttp_ns` after the request, through
    /// `mech`. Counts the preemption and records time-to-preempt overall and
    /// for `mech`.
    pub fn preempted(&self, kind: PreemptKind, mech: PreemptMode, ttp_ns: u64) {
        self.preemptions.add(kind, mech);
        let mut hs = self.lock();
        record_into(&mut hs, TIME_TO_PREEMPT, ttp_ns);
        record_into(&mut hs, ttp_name(mech), ttp_ns);
    }

    /// Records `ns` into the histogram `name` (made on first use).
    pub fn record(&self, name: &'static str, ns: u64) {
        record_into(&mut self.lock(), name, ns);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, Histogram<u64>)>> {
        self.histograms.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- reading ----

    /// The plain counters' totals.
    pub fn counters(&self) -> Counters {
        Counters {
            context_switches: self.context_switches.load(Relaxed),
            goroutines_created: self.goroutines_created.load(Relaxed),
            threads_created: self.threads_created.load(Relaxed),
            handoffs: self.handoffs.load(Relaxed),
            foreign_calls: self.foreign_calls.load(Relaxed),
            signals_sent: self.signals_sent.load(Relaxed),
            re_requests: self.re_requests.load(Relaxed),
            preempt_requests: self.requests.total(),
            preemptions: self.preemptions.total(),
            retries: self.retries.snapshot().values().sum(),
        }
    }

    /// Preemption requests for `kind` made through `mech`.
    pub fn preempt_requests(&self, kind: PreemptKind, mech: PreemptMode) -> u64 {
        self.requests.get(kind, mech)
    }

    /// Completed preemptions for `kind` that `mech` stopped.
    pub fn preemptions(&self, kind: PreemptKind, mech: PreemptMode) -> u64 {
        self.preemptions.get(kind, mech)
    }

    /// Retries by reason.
    pub fn retries(&self) -> BTreeMap<&'static str, u64> {
        self.retries.snapshot()
    }

    /// Named counts.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.snapshot()
    }

    /// The names of the histograms that have samples, in report order.
    pub fn histogram_names(&self) -> Vec<&'static str> {
        self.lock()
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(n, _)| *n)
            .collect()
    }

    /// The number of samples in histogram `name`.
    pub fn samples(&self, name: &str) -> u64 {
        self.lock()
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, h)| h.len())
    }

    /// The value (ns) at percentile `p` (0 to 100, e.g. 99.9) of histogram
    /// `name`, or None if it has no samples.
    pub fn percentile(&self, name: &str, p: f64) -> Option<u64> {
        self.lock()
            .iter()
            .find(|(n, h)| *n == name && !h.is_empty())
            .map(|(_, h)| h.value_at_percentile(p))
    }

    /// A copy of histogram `name`, for benchmarks that merge or print more.
    pub fn histogram(&self, name: &str) -> Option<Histogram<u64>> {
        self.lock()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h.clone())
    }

    /// The `--stats` text: counters, then one line per non-empty histogram
    /// with count, p50, p99, p99.9 and max in human units.
    pub fn report(&self) -> String {
        let c = self.counters();
        let mut out = String::new();
        let mut line = |label: &str, n: u64, detail: String| {
            let _ = write!(out, "{label:<24}{n:>10}");
            if !detail.is_empty() {
                let _ = write!(out, "  ({detail})");
            }
            out.push('\n');
        };
        line("context switches", c.context_switches, String::new());
        line("goroutines created", c.goroutines_created, String::new());
        line("threads created (Ms)", c.threads_created, String::new());
        line("P hand-offs", c.handoffs, String::new());
        line("foreign calls", c.foreign_calls, String::new());
        line(
            "preemption requests",
            c.preempt_requests,
            breakdown(&self.requests),
        );
        line("preemptions", c.preemptions, breakdown(&self.preemptions));
        line(
            "re-requests",
            c.re_requests,
            "requests applied again after a back-off".to_string(),
        );
        let async_stops = self.preemptions.by_mech(PreemptMode::Async);
        let per = if c.signals_sent > 0 && async_stops > 0 {
            format!(
                "{:.2} per asynchronous preemption",
                c.signals_sent as f64 / async_stops as f64
            )
        } else {
            String::new()
        };
        line("signals sent", c.signals_sent, per);
        let retries = self.retries();
        if !retries.is_empty() {
            line("async-preempt retries", c.retries, join_counts(&retries));
        }
        for (name, n) in self.counts() {
            line(name, n, String::new());
        }

        let hs = self.lock();
        let ttp_mechs = PreemptMode::ALL
            .iter()
            .filter(|&&m| hs.iter().any(|(n, h)| *n == ttp_name(m) && !h.is_empty()))
            .count();
        let rows: Vec<(String, &Histogram<u64>)> = hs
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .filter_map(|(name, h)| {
                // Per-mechanism rows only when they add something.
                match PreemptMode::ALL.iter().find(|&&m| ttp_name(m) == *name) {
                    Some(_) if ttp_mechs < 2 => None,
                    Some(&m) => Some((format!("  {}", m.name()), h)),
                    // The halves of the asynchronous figure, under it.
                    None => match name.strip_prefix("time-to-preempt (async): ") {
                        Some(half) => Some((format!("  async: {half}"), h)),
                        None => Some((name.to_string(), h)),
                    },
                }
            })
            .collect();
        if !rows.is_empty() {
            let width = rows
                .iter()
                .map(|(n, _)| n.chars().count())
                .max()
                .unwrap_or(0)
                .max(24);
            let _ = writeln!(
                out,
                "\n{:<width$}{:>10}{:>10}{:>10}{:>10}{:>10}",
                "latency", "count", "p50", "p99", "p99.9", "max"
            );
            for (name, h) in rows {
                let _ = writeln!(
                    out,
                    "{:<width$}{:>10}{:>10}{:>10}{:>10}{:>10}",
                    name,
                    h.len(),
                    human_ns(h.value_at_percentile(50.0)),
                    human_ns(h.value_at_percentile(99.0)),
                    human_ns(h.value_at_percentile(99.9)),
                    human_ns(h.max()),
                );
            }
        }
        out
    }
}

fn breakdown(m: &Matrix) -> String {
    if m.total() == 0 {
        String::new()
    } else {
        m.breakdown()
    }
}

fn join_counts(m: &BTreeMap<&'static str, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn record_into(hs: &mut Vec<(&'static str, Histogram<u64>)>, name: &'static str, ns: u64) {
    let ns = ns.min(MAX_TRACKABLE_NS);
    let h = match hs.iter().position(|(n, _)| *n == name) {
        Some(i) => &mut hs[i].1,
        None => {
            hs.push((name, new_histogram()));
            &mut hs.last_mut().expect("just pushed").1
        }
    };
    // The histogram grows to fit (`saturating_record` would clamp to its
    // current top instead); the clamp above keeps that growth bounded.
    if h.record(ns).is_err() {
        h.saturating_record(ns);
    }
}

/// A duration in Go's style, rounded to 3 significant digits: `850ns`,
/// `12.3µs`, `1.5ms`, `2.25s`.
pub fn human_ns(ns: u64) -> String {
    const UNITS: [(&str, f64); 4] = [("ns", 1.0), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)];
    if ns < 1000 {
        return format!("{ns}ns");
    }
    let mut i = match ns {
        0..=999_999 => 1,
        1_000_000..=999_999_999 => 2,
        _ => 3,
    };
    loop {
        let v = ns as f64 / UNITS[i].1;
        let decimals = if v < 10.0 {
            2
        } else if v < 100.0 {
            1
        } else {
            0
        };
        let s = format!("{v:.decimals$}");
        // 999.6µs rounds to "1000": say 1ms instead.
        if s.starts_with("1000") && i < 3 {
            i += 1;
            continue;
        }
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        return format!("{s}{}", UNITS[i].0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn human_units() {
        assert_eq!(human_ns(0), "0ns");
        assert_eq!(human_ns(850), "850ns");
        assert_eq!(human_ns(1_000), "1µs");
        assert_eq!(human_ns(12_345), "12.3µs");
        assert_eq!(human_ns(500_000), "500µs");
        assert_eq!(human_ns(999_600), "1ms");
        assert_eq!(human_ns(1_500_000), "1.5ms");
        assert_eq!(human_ns(10_480_000), "10.5ms");
        assert_eq!(human_ns(2_250_000_000), "2.25s");
        assert_eq!(human_ns(61_200_000_000), "61.2s");
    }

    #[test]
    fn counters_count() {
        let s = Stats::new();
        for _ in 0..5 {
            s.context_switch();
        }
        s.goroutines_created_add(1);
        s.goroutines_created_add(1);
        s.thread_created();
        s.handoff();
        s.foreign_call();
        s.signal_sent();
        s.preempt_requested(PreemptKind::Quantum, PreemptMode::Async);
        s.preempt_requested(PreemptKind::StopTheWorld, PreemptMode::Async);
        s.preempted(PreemptKind::Quantum, PreemptMode::Coop, 1_000);
        let c = s.counters();
        assert_eq!(
            c,
            Counters {
                context_switches: 5,
                goroutines_created: 2,
                threads_created: 1,
                handoffs: 1,
                foreign_calls: 1,
                signals_sent: 1,
                re_requests: 0,
                preempt_requests: 2,
                preemptions: 1,
                retries: 0,
            }
        );
        assert_eq!(
            s.preempt_requests(PreemptKind::Quantum, PreemptMode::Async),
            1
        );
        assert_eq!(
            s.preempt_requests(PreemptKind::Quantum, PreemptMode::Coop),
            0
        );
        assert_eq!(s.preemptions(PreemptKind::Quantum, PreemptMode::Coop), 1);
        assert_eq!(s.samples(TIME_TO_PREEMPT), 1);
        assert_eq!(s.samples(ttp_name(PreemptMode::Coop)), 1);
        assert_eq!(s.samples(ttp_name(PreemptMode::Async)), 0);
    }

    #[test]
    fn percentiles_of_known_inputs() {
        let s = Stats::new();
        // 1µs, 2µs, ..., 1000µs: p50 is 500µs, p99 990µs, max 1000µs.
        for us in 1..=1000u64 {
            s.record(WAKE_LATENESS, us * 1000);
        }
        let within = |got: Option<u64>, want: u64| {
            let got = got.expect("samples");
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(err <= 0.001, "got {got}, want {want} within 0.1%");
        };
        within(s.percentile(WAKE_LATENESS, 50.0), 500_000);
        within(s.percentile(WAKE_LATENESS, 99.0), 990_000);
        // p99.9 of 1000 samples lies between the 999th and the 1000th.
        let p999 = s.percentile(WAKE_LATENESS, 99.9).unwrap();
        assert!((999_000..=1_001_000).contains(&p999), "{p999}");
        within(s.percentile(WAKE_LATENESS, 100.0), 1_000_000);
        within(s.percentile(WAKE_LATENESS, 0.0), 1_000);
        assert_eq!(s.samples(WAKE_LATENESS), 1000);
        assert_eq!(s.percentile("no such histogram", 50.0), None);
        // An empty pre-registered histogram has no percentiles either.
        assert_eq!(s.percentile(TIME_TO_PREEMPT, 50.0), None);
    }

    #[test]
    fn huge_values_are_clamped_not_lost() {
        let s = Stats::new();
        s.record("x", u64::MAX);
        s.record("x", 5);
        assert_eq!(s.samples("x"), 2);
        let max = s.percentile("x", 100.0).unwrap();
        assert!((MAX_TRACKABLE_NS..=MAX_TRACKABLE_NS + MAX_TRACKABLE_NS / 1000).contains(&max));
        assert_eq!(s.percentile("x", 50.0), Some(5));
    }

    #[test]
    fn retries_by_reason() {
        let s = Stats::new();
        for _ in 0..3 {
            s.retry("unsafe: write barrier");
        }
        s.retry("not JIT code");
        // The same text from a different allocation merges by content.
        let leaked: &'static str = Box::leak(String::from("not JIT code").into_boxed_str());
        s.retry(leaked);
        s.retry("");
        let r = s.retries();
        assert_eq!(r.get("unsafe: write barrier"), Some(&3));
        assert_eq!(r.get("not JIT code"), Some(&2));
        assert_eq!(r.get(""), Some(&1));
        assert_eq!(s.counters().retries, 6);
    }

    #[test]
    fn key_table_overflow_goes_to_other() {
        let s = Stats::new();
        for i in 0..KEY_SLOTS + 3 {
            let k: &'static str = Box::leak(format!("reason {i}").into_boxed_str());
            s.retry(k);
        }
        let r = s.retries();
        assert_eq!(r.get("other"), Some(&3));
        assert_eq!(r.values().sum::<u64>(), KEY_SLOTS as u64 + 3);
    }

    #[test]
    fn counters_from_many_threads() {
        let s = Arc::new(Stats::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        s.context_switch();
                        s.retry(if i % 2 == 0 { "even" } else { "odd" });
                        if i % 100 == 0 {
                            s.preempted(PreemptKind::Quantum, PreemptMode::Coop, 1000 * (t + 1));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.counters().context_switches, 40_000);
        let r = s.retries();
        assert_eq!(r.get("even"), Some(&20_000));
        assert_eq!(r.get("odd"), Some(&20_000));
        assert_eq!(s.samples(TIME_TO_PREEMPT), 400);
        assert_eq!(s.counters().preemptions, 400);
    }

    #[test]
    fn report_text_has_the_figures() {
        let s = Stats::new();
        for _ in 0..1234 {
            s.context_switch();
        }
        for _ in 0..3 {
            s.thread_created();
        }
        s.handoff();
        s.handoff();
        for _ in 0..10 {
            s.preempt_requested(PreemptKind::Quantum, PreemptMode::Coop);
        }
        // TTPs of 1ms..10ms: p50 5ms, p99 and max 10ms.
        for ms in 1..=10 {
            s.preempted(PreemptKind::Quantum, PreemptMode::Coop, ms * 1_000_000);
        }
        let text = s.report();
        let find = |label: &str| -> String {
            text.lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no {label:?} line in\n{text}"))
                .to_string()
        };
        assert!(find("context switches").ends_with(" 1234"), "{text}");
        assert!(find("threads created (Ms)").ends_with(" 3"), "{text}");
        assert!(find("P hand-offs").ends_with(" 2"), "{text}");
        assert!(
            find("preemption requests").contains("10  (quantum 10; coop 10)"),
            "{text}"
        );
        let ttp: Vec<String> = find("time-to-preempt")
            .split_whitespace()
            .map(String::from)
            .collect();
        assert_eq!(
            ttp,
            ["time-to-preempt", "10", "5ms", "10ms", "10ms", "10ms"],
            "{text}"
        );
        // One mechanism: no per-mechanism rows; no retries; no empty histograms.
        assert!(!text.contains("  coop "), "{text}");
        assert!(!text.contains("retries"), "{text}");
        assert!(!text.contains(STW_LATENCY), "{text}");
        assert!(text.contains("latency"), "{text}");
    }

    #[test]
    fn report_breaks_ttp_down_when_mechanisms_mix() {
        let s = Stats::new();
        s.preempted(PreemptKind::Quantum, PreemptMode::Coop, 2_000_000);
        s.preempted(PreemptKind::Quantum, PreemptMode::Async, 20_000);
        s.retry("unsafe: write barrier");
        s.record(STW_LATENCY, 45_600);
        let text = s.report();
        assert!(text.contains("  coop "), "{text}");
        assert!(text.contains("  async "), "{text}");
        assert!(text.contains("async-preempt retries"), "{text}");
        assert!(text.contains("(unsafe: write barrier 1)"), "{text}");
        let stw = text
            .lines()
            .find(|l| l.starts_with(STW_LATENCY))
            .expect(&text);
        assert!(stw.contains("45.6µs"), "{text}");
        // Time-to-preempt is listed before later histograms.
        assert!(text.find(TIME_TO_PREEMPT).unwrap() < text.find(STW_LATENCY).unwrap());
    }

    #[test]
    fn empty_report_has_counters_only() {
        let text = Stats::new().report();
        assert!(text.contains("context switches"));
        assert!(!text.contains("latency"), "{text}");
        assert!(!text.contains("p50"), "{text}");
    }

    #[test]
    fn json_has_the_figures() {
        let s = Stats::new();
        s.context_switch();
        s.preempt_requested(PreemptKind::StopTheWorld, PreemptMode::Async);
        s.preempted(PreemptKind::StopTheWorld, PreemptMode::Async, 30_000);
        s.retry("not JIT code");
        s.count("steals");
        let j = s.to_json();
        assert_eq!(j["context_switches"], 1);
        assert_eq!(j["preempt_requests"]["total"], 1);
        assert_eq!(j["preempt_requests"]["by_kind"]["stop_the_world"], 1);
        assert_eq!(j["preempt_requests"]["by_kind"]["quantum"], 0);
        assert_eq!(j["preemptions"]["by_mechanism"]["async"], 1);
        assert_eq!(j["retries"]["not_jit_code"], 1);
        assert_eq!(j["counts"]["steals"], 1);
        let ttp = &j["histograms"]["time_to_preempt"];
        assert_eq!(ttp["count"], 1);
        let p50 = ttp["p50_ns"].as_u64().unwrap();
        assert!((29_970..=30_030).contains(&p50), "{p50}");
        assert!(j["histograms"].get(json_key(STW_LATENCY)).is_none());
        assert!(j["histograms"]
            .get(json_key(ttp_name(PreemptMode::Async)))
            .is_some());
        // It round-trips through text.
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), j);
    }

    #[test]
    fn stats_is_sync_and_send() {
        fn check<T: Send + Sync>() {}
        check::<Stats>();
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = monotonic_ns();
        assert!(b >= a + 2_000_000, "{a} {b}");
    }
}
