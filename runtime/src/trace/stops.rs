//! `--log-stops`: one line on stderr per stop, in the spirit of HotSpot's
//! `-Xlog:safepoint`:
//!
//! ```text
//! (illustrative figures)
//! [0.215337s][stops] Stop "quantum", G2, async on M0 P0, Time since last: 10061322 ns, Requested->stopped: 41872 ns, At: @spin+0x2c, Signals: 1, Declines: 0
//! [0.301002s][stops] Stop "stop-the-world", G3, withdrawn (yield), Time since last: 85664810 ns, Requested->withdrawn: 3011 ns, Signals: 1, Declines: 1 (not in JIT code: 1)
//! [0.301098s][stops] Stop-the-world "GC mark start", Time since last: 4021177 ns, Own P: 2104 ns, Reaching safepoint: 15338 ns, At safepoint: 30121 ns, Total: 47563 ns
//! ```
//!
//! A preemption stop says when, which goroutine, the mechanism that
//! stopped it and where it stopped (function and offset), the time from
//! the request, and the signals sent and the handler's declines while the
//! request was in effect; a request whose goroutine stopped by itself (or
//! whose slice ended) says so. A stop of the world says what it was for,
//! the time to get the stopper its own P, to stop every other P, the time
//! stopped and the total, once the world runs again. "Time since last"
//! is from the previous stop of the same kind (for the world, from the
//! end of the previous stop to the start of this one, as HotSpot's).
//!
//! Nothing is formatted or printed where a stop is measured: each stop
//! appends a record under a mutex (after its time is taken), the signals
//! and declines are counted into the request's record, and a thread of
//! the runtime's own ([`super::Tracer::flush_stops`], from the observer
//! thread every few milliseconds and at the end of the run) sorts the
//! records by time, formats them and writes them to stderr in one write.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::{lock, Decision, Handled, Names, RequestEnd, Stop, WorldStop};
use crate::stats::PreemptKind;

/// Records kept before further ones are dropped (counted, and said).
const MAX_RECORDS: usize = 1 << 20;

/// A request in effect, and what happened while it was.
#[derive(Clone, Debug)]
struct Pending {
    requested_at: u64,
    signals: u32,
    /// Declines by reason.
    declines: Vec<(&'static str, u32)>,
    /// Where the handler interrupted the goroutine when it redirected it.
    redirected_pc: Option<usize>,
}

impl Pending {
    fn new(requested_at: u64) -> Pending {
        Pending {
            requested_at,
            signals: 0,
            declines: Vec::new(),
            redirected_pc: None,
        }
    }
}

/// What a line is made of.
#[derive(Debug)]
enum Record {
    Stopped(Stop, Pending),
    Ended {
        at: u64,
        g: u64,
        kind: PreemptKind,
        end: RequestEnd,
        life: Pending,
    },
    World(WorldStop),
}

impl Record {
    fn at(&self) -> u64 {
        match self {
            Record::Stopped(s, _) => s.at,
            Record::Ended { at, .. } => *at,
            Record::World(w) => w.restarted_at,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// By goroutine, oldest first. A goroutine has one request in effect
    /// at a time, but its stop reaches this log after the goroutine
    /// stopped, and a requester may have made the next request by then.
    pending: HashMap<u64, Vec<Pending>>,
    records: Vec<Record>,
    dropped: u64,
}

/// Requests kept per goroutine.
const PENDING_MAX: usize = 4;

impl State {
    /// The request of `g` that was in effect at `at`: the latest made
    /// before it.
    fn at(&mut self, g: u64, at: u64) -> Option<&mut Pending> {
        let list = self.pending.get_mut(&g)?;
        list.iter_mut().rev().find(|p| p.requested_at <= at)
    }

    /// Takes the request `(g, requested_at)` out, with what happened to
    /// it; a fresh record if none was seen.
    fn take(&mut self, g: u64, requested_at: u64) -> Option<Pending> {
        let list = self.pending.get_mut(&g)?;
        let i = list.iter().position(|p| p.requested_at == requested_at)?;
        let p = list.remove(i);
        if list.is_empty() {
            self.pending.remove(&g);
        }
        Some(p)
    }
}

/// When the last line of each kind was printed about.
#[derive(Debug, Default)]
struct Printed {
    last_stop: Option<u64>,
    last_world: Option<u64>,
}

#[derive(Debug)]
pub(super) struct StopLog {
    start_ns: u64,
    state: Mutex<State>,
    /// Held while a batch is written, so that batches keep their order.
    printed: Mutex<Printed>,
}

impl StopLog {
    pub(super) fn new(start_ns: u64) -> StopLog {
        StopLog {
            start_ns,
            state: Mutex::default(),
            printed: Mutex::default(),
        }
    }

    fn push(st: &mut State, r: Record) {
        if st.records.len() < MAX_RECORDS {
            st.records.push(r);
        } else {
            st.dropped += 1;
        }
    }

    pub(super) fn requested(&self, g: u64, at: u64) {
        let mut st = lock(&self.state);
        let list = st.pending.entry(g).or_default();
        if list.len() == PENDING_MAX {
            list.remove(0);
        }
        list.push(Pending::new(at));
    }

    pub(super) fn signalled(&self, at: u64, g: u64) {
        if let Some(p) = lock(&self.state).at(g, at) {
            p.signals += 1;
        }
    }

    pub(super) fn handled(&self, d: &Decision) {
        let mut st = lock(&self.state);
        let Some(p) = st.at(d.g, d.at) else {
            return;
        };
        match d.handled {
            Handled::Decline(reason) => match p.declines.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, n)) => *n += 1,
                None => p.declines.push((reason, 1)),
            },
            Handled::Redirect { .. } => p.redirected_pc = Some(d.pc),
            Handled::Stale => {}
        }
    }

    pub(super) fn stopped(&self, s: &Stop) {
        let mut st = lock(&self.state);
        let life = st
            .take(s.g, s.requested_at)
            .unwrap_or_else(|| Pending::new(s.requested_at));
        Self::push(&mut st, Record::Stopped(*s, life));
    }

    pub(super) fn ended(
        &self,
        at: u64,
        g: u64,
        requested_at: u64,
        kind: PreemptKind,
        end: RequestEnd,
    ) {
        let mut st = lock(&self.state);
        let life = st.take(g, requested_at);
        // Only a request that was in effect is a stop worth a line.
        if let (RequestEnd::SliceEnded(_), Some(life)) = (end, life) {
            let r = Record::Ended {
                at,
                g,
                kind,
                end,
                life,
            };
            Self::push(&mut st, r);
        }
    }

    pub(super) fn world(&self, w: &WorldStop) {
        Self::push(&mut lock(&self.state), Record::World(*w));
    }

    /// Formats and writes the records gathered so far (see the module
    /// docs); a failed write is ignored, as for any diagnostic.
    pub(super) fn flush(&self, names: &Names, w: &mut dyn std::io::Write) {
        let mut printed = lock(&self.printed);
        let (mut records, dropped) = {
            let mut st = lock(&self.state);
            (
                std::mem::take(&mut st.records),
                std::mem::take(&mut st.dropped),
            )
        };
        if records.is_empty() && dropped == 0 {
            return;
        }
        records.sort_by_key(Record::at);
        let mut text = String::new();
        for r in &records {
            self.line(r, names, &mut printed, &mut text);
        }
        if dropped > 0 {
            let _ = writeln!(
                text,
                "[stops] {dropped} stops not logged: more than {MAX_RECORDS} waited to be printed"
            );
        }
        let _ = w.write_all(text.as_bytes());
        let _ = w.flush();
    }

    fn line(&self, r: &Record, names: &Names, printed: &mut Printed, out: &mut String) {
        let secs = |at: u64| at.saturating_sub(self.start_ns) as f64 / 1e9;
        let since = |last: &mut Option<u64>, at: u64| {
            let from = last.unwrap_or(self.start_ns);
            *last = Some(at);
            at.saturating_sub(from)
        };
        match r {
            Record::Stopped(s, life) => {
                let at = match s.pc.or(life.redirected_pc) {
                    Some(pc) => names.describe_pc(pc),
                    None => "unknown".into(),
                };
                let place = match s.p {
                    Some(p) => format!("M{} P{p}", s.m),
                    None => format!("M{}", s.m),
                };
                let _ = write!(
                    out,
                    "[{:.6}s][stops] Stop \"{}\", G{}, {} on {place}, Time since last: {} ns, Requested->stopped: {} ns, At: {at}, ",
                    secs(s.at),
                    s.kind.name(),
                    s.g,
                    s.mech.name(),
                    since(&mut printed.last_stop, s.at),
                    s.at.saturating_sub(s.requested_at),
                );
                counts(life, out);
            }
            Record::Ended {
                at,
                g,
                kind,
                end,
                life,
            } => {
                let why = match end {
                    RequestEnd::SliceEnded(why) => why,
                    _ => end.name(),
                };
                let _ = write!(
                    out,
                    "[{:.6}s][stops] Stop \"{}\", G{g}, withdrawn ({why}), Time since last: {} ns, Requested->withdrawn: {} ns, ",
                    secs(*at),
                    kind.name(),
                    since(&mut printed.last_stop, *at),
                    at.saturating_sub(life.requested_at),
                );
                counts(life, out);
            }
            Record::World(w) => {
                // As HotSpot: logged when the world runs again; the time
                // since the last is from the end of the previous stop to
                // the start of this one.
                let from = printed.last_world.replace(w.restarted_at);
                let _ = writeln!(
                    out,
                    "[{:.6}s][stops] Stop-the-world \"{}\", Time since last: {} ns, Own P: {} ns, Reaching safepoint: {} ns, At safepoint: {} ns, Total: {} ns",
                    secs(w.restarted_at),
                    w.why,
                    w.wanted_at.saturating_sub(from.unwrap_or(self.start_ns)),
                    w.requested_at.saturating_sub(w.wanted_at),
                    w.stopped_at.saturating_sub(w.requested_at),
                    w.restarted_at.saturating_sub(w.stopped_at),
                    w.restarted_at.saturating_sub(w.wanted_at),
                );
            }
        }
    }
}

/// `Signals: 2, Declines: 3 (not in JIT code: 2, unsafe: write barrier: 1)`.
fn counts(life: &Pending, out: &mut String) {
    let declines: u32 = life.declines.iter().map(|(_, n)| n).sum();
    let _ = write!(out, "Signals: {}, Declines: {declines}", life.signals);
    if declines > 0 {
        let list: Vec<String> = life
            .declines
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        let _ = write!(out, " ({})", list.join(", "));
    }
    out.push('\n');
}
