//! Stopping the world: every P stopped, so that no goroutine runs and none
//! is halfway through anything but a safe point. The collector's mark
//! start and mark termination need it.
//!
//! Modelled on Go's `stopTheWorldWithSema`:
//!
//! 1. Under the scheduler lock, set `stopping` (Go's `sched.gcwaiting`)
//!    and take every idle P: from then on a P that would go idle, or be
//!    handed to another M, stops instead ([`Runtime::stop_p`]), and an M
//!    that comes back to its scheduling loop gives its P to the stop
//!    ([`Runtime::park_for_world`]) and parks like an idle M.
//! 2. A P in foreign code (`ccall`) is taken as it is, by one
//!    compare-and-swap from `InForeign` to `Stopped`, as Go takes Ps in
//!    system calls: its goroutine is stopped in a runtime call already,
//!    and when the call returns the M finds its P gone and queues the
//!    goroutine.
//! 3. Every goroutine still running is asked to stop through
//!    [`preempt::request`] with [`PreemptKind::StopTheWorld`], again every
//!    100 µs while the stop waits (a goroutine that had stopped and was
//!    started again before its P was taken drops a stale request, and a
//!    new slice needs a new one), until every P is stopped.
//!
//! The stop-the-world latency (from the request to the last P stopped) is
//! recorded in the [`STW_LATENCY`] histogram. A goroutine that never
//! reaches a safe point (a call-free loop in `coop` mode: the seed's Bug
//! 2) stops the world from ever stopping: the program does not deadlock
//! silently, since after the hang threshold the wait says on stderr which
//! goroutine it waits for and why it does not stop, and the watchdog's
//! report names the stop. [`Runtime::start_the_world`] hands the Ps with
//! work to Ms and puts the rest on the idle list.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{lock, monotonic_nanos, PStatus, Runtime, M};
use crate::gc::cycle::STW_PAUSE;
use crate::preempt;
use crate::stats::{PreemptKind, STW_LATENCY};

/// How often a waiting stop asks the running goroutines again.
const RETRY: Duration = Duration::from_micros(100);
/// How long the stopper watches (yielding) before it sleeps, in ns.
const SPIN: u64 = 50_000;

/// What the world is stopped for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    MarkStart,
    MarkTermination,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::MarkStart => "GC mark start",
            Phase::MarkTermination => "GC mark termination",
        }
    }
}

/// The state of stopping the world.
#[derive(Debug, Default)]
pub struct World {
    /// From the stop request until the world starts again.
    stopping: AtomicBool,
    /// `Stop::generation`, readable without the lock (the stopper's spin).
    generation: AtomicU64,
    /// Ps stopped so far (a generation count, so that a waiter never
    /// misses a wake-up), and the stop in progress, for diagnoses.
    stopped: Mutex<Stop>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct Stop {
    generation: u64,
    /// What the world is being stopped (or is stopped) for, since when.
    current: Option<(Phase, u64)>,
}

/// A stopped world, to give back to [`Runtime::start_the_world`].
#[derive(Debug)]
#[must_use = "the world stays stopped until start_the_world"]
pub struct Stopped {
    requested_at: u64,
}

impl World {
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The stop in progress or in effect, and since when (monotonic ns).
    pub fn current(&self) -> Option<(Phase, u64)> {
        lock(&self.stopped).current
    }
}

impl Runtime {
    /// Stops every P (see the module docs). Only the collector's thread
    /// calls this, one stop at a time. None if the program ended while it
    /// waited (the world is then left as it is).
    pub fn stop_the_world(&self, phase: Phase) -> Option<Stopped> {
        let requested_at = monotonic_nanos();
        {
            let mut s = lock(&self.sched);
            self.world.stopping.store(true, Ordering::SeqCst);
            for p in std::mem::take(&mut s.pidle) {
                self.ps[p].set_status(PStatus::Stopped);
            }
            self.npidle.store(0, Ordering::Release);
        }
        lock(&self.world.stopped).current = Some((phase, requested_at));
        let hang = self.cfg.hang_threshold.as_nanos() as u64;
        let mut reported = false;
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return None;
            }
            let seen = lock(&self.world.stopped).generation;
            let now = monotonic_nanos();
            let mut all = true;
            let mut waiting_for = None;
            for p in &self.ps {
                match p.status() {
                    PStatus::Stopped => {}
                    PStatus::InForeign if p.cas_status(PStatus::InForeign, PStatus::Stopped) => {}
                    _ => {
                        all = false;
                        let seq = p.slice_seq.load(Ordering::Acquire);
                        let id = p.current.load(Ordering::Acquire);
                        if let Some(g) = (id != 0).then(|| self.g_by_id(id)).flatten() {
                            if !preempt::request(self, p, &g, seq, PreemptKind::StopTheWorld, now)
                                && self.cfg.mode == crate::PreemptMode::Async
                                && g.preempt.load(Ordering::Acquire)
                            {
                                // Still pending (the handler declined, or
                                // has not run): signal again; a signal in
                                // flight coalesces with this one.
                                self.signal_p(p);
                            }
                            waiting_for.get_or_insert((p.id, g));
                        }
                    }
                }
            }
            if all {
                break;
            }
            if let (Some((p, g)), false) = (&waiting_for, reported) {
                let age = now.saturating_sub(requested_at);
                if hang > 0 && age >= hang {
                    reported = true;
                    let m = self.ps[*p].m.load(Ordering::Acquire);
                    if let Some(text) = crate::diagnose::stw_stuck(self, phase, *p, m, g, age) {
                        eprint!("{text}");
                    }
                }
            }
            // Watch for the next P to stop for a while before sleeping,
            // yielding the CPU meanwhile: with more runnable threads than
            // CPUs, a goroutine's thread may be waiting for this very CPU
            // to run the handler of the signal just sent; otherwise the
            // stop is seen at once, without the wake-up of a sleeping
            // thread (tens of microseconds on a VM).
            let spin_until = monotonic_nanos() + SPIN;
            while self.world.generation.load(Ordering::Acquire) == seen
                && monotonic_nanos() < spin_until
            {
                std::thread::yield_now();
            }
            let st = lock(&self.world.stopped);
            if st.generation == seen {
                let _ = self.world.cv.wait_timeout(st, RETRY);
            }
        }
        let latency = monotonic_nanos().saturating_sub(requested_at);
        self.cfg.stats.sched.record(STW_LATENCY, latency);
        Some(Stopped { requested_at })
    }

    /// Starts the world again: Ps with work go to Ms, the rest idle.
    pub fn start_the_world(&self, w: Stopped) {
        let mut starts = Vec::new();
        let all_idle = {
            let mut s = lock(&self.sched);
            self.world.stopping.store(false, Ordering::SeqCst);
            let mut global = s.runq.len();
            for p in 0..self.ps.len() {
                if self.ps[p].status() != PStatus::Stopped {
                    continue;
                }
                let work = if self.ps[p].queued() > 0 {
                    true
                } else if global > 0 {
                    global -= 1;
                    true
                } else {
                    false
                };
                if work {
                    self.ps[p].set_status(PStatus::Running);
                    starts.push((p, s.midle.pop()));
                } else {
                    self.ps[p].set_status(PStatus::Idle);
                    self.ps[p].m.store(usize::MAX, Ordering::Release);
                    s.pidle.push(p);
                    self.npidle.fetch_add(1, Ordering::AcqRel);
                }
            }
            self.npidle.load(Ordering::Acquire) == self.ps.len()
        };
        lock(&self.world.stopped).current = None;
        let pause = monotonic_nanos().saturating_sub(w.requested_at);
        self.cfg.stats.sched.record(STW_PAUSE, pause);
        let started = !starts.is_empty();
        for (p, m) in starts {
            self.start_m(p, m);
        }
        if started {
            self.sysmon.wake();
        }
        if all_idle {
            self.check_dead();
        }
    }

    /// P `p`, which would go idle or to another M, stops for the world
    /// instead. Under the scheduler lock, while the world stops.
    pub(super) fn stop_p(&self, p: usize) {
        self.stop_spinning(p);
        self.ps[p].set_status(PStatus::Stopped);
        self.ps[p].m.store(usize::MAX, Ordering::Release);
        let mut st = lock(&self.world.stopped);
        st.generation += 1;
        self.world
            .generation
            .store(st.generation, Ordering::Release);
        self.world.cv.notify_all();
    }

    /// An M back in its scheduling loop while the world stops: gives its P
    /// to the stop and goes idle (it waits for a P in `m_main`). False if
    /// the stop ended meanwhile or the M has no P.
    pub(super) fn park_for_world(&self, m: &Arc<M>) -> bool {
        let mut s = lock(&self.sched);
        if !self.world.is_stopping() {
            return false;
        }
        let Some(p) = m.take_p() else {
            return false;
        };
        self.stop_p(p);
        // A locked M waits for its goroutine, not for any P (the hand-off
        // to it brings both).
        if !m.locked.load(Ordering::Acquire) {
            s.midle.push(m.clone());
        }
        true
    }
}
