//! The monitor (Go's sysmon): a thread of its own that
//!
//! - requests the preemption of a goroutine that has run for its time
//!   slice (`--quantum`, 10 ms by default);
//! - retakes the P of an M that has been in foreign code for a tick (about
//!   20 µs) when other goroutines could use it, as Go's `retake` does;
//! - reports a goroutine that has not stopped long after a preemption
//!   request, with what the compiler's tables say about why.
//!
//! Its tick is Go's: 20 µs, doubling after 1 ms (50 ticks) without
//! anything to do, up to 10 ms (both bounds configurable). It times slices
//! in one of two ways ([`Model`]):
//!
//! - **precise** (the default): the monitor never backs off past a tenth
//!   of a quantum while a goroutine runs, and sleeps exactly to the end of
//!   the slice it has seen, so the request goes out within 1.1 quanta
//!   whatever the tick had backed off to; entering foreign code wakes it
//!   in time to hand the P on one minimum tick later.
//! - **go** (`--sched go`), Go 1.27's `sysmon` and `retake` (proc.go): a
//!   slice is first seen on a tick and preempted on the first tick at
//!   least a quantum later; preempting a goroutine does not count as work,
//!   so under a busy goroutine the tick backs off to 10 ms and slices last
//!   10 to 20 ms; a P in foreign code is retaken on the first tick after
//!   the one that saw it there (when its own queue has work, or no P is
//!   idle and no M spins to pick work up), or after 10 ms; with every P
//!   idle the monitor sleeps deeply (until the next timer), and only a P
//!   becoming active wakes it (a goroutine entering or leaving foreign
//!   code, a worker started), resetting its tick to the minimum (Go's
//!   `sysmonwait`, woken by `entersyscall`, `exitsyscall` and
//!   `startTheWorld`).

mod deep;

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use preempt_jit::ir::PreemptMode;

use super::diagnose;
use super::{lock, monotonic_nanos, PStatus, Runtime};
use crate::preempt;
use crate::preempt::request::Asked;
use crate::preempt::Again;
use crate::stats::PreemptKind;

/// How the monitor times slices and foreign calls (see the module's
/// documentation).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Model {
    #[default]
    Precise,
    Go,
}

/// The monitor's sleep, which running goroutines may cut short.
#[derive(Debug, Default)]
pub struct Monitor {
    model: Model,
    /// When the monitor will wake (monotonic ns; 0 while awake).
    sleeping_until: AtomicU64,
    /// How long it sleeps at most while a goroutine runs (ns; 0 until its
    /// loop starts): a worker that starts while it sleeps no longer than
    /// that need not wake it.
    running_tick: AtomicU64,
    /// Its deep sleep (`--sched go`, every P idle), and the handshake with
    /// the Ps that wake it ([`deep`]).
    deep: deep::DeepSleep,
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Monitor {
    pub fn new(model: Model) -> Monitor {
        Monitor {
            model,
            ..Monitor::default()
        }
    }

    /// A goroutine entered foreign code, retakable at `deadline`. Precise:
    /// wake the monitor if it would sleep past that. Go: wake it only from
    /// its deep sleep.
    pub fn foreign_entered(&self, deadline: u64) {
        match self.model {
            Model::Precise => {
                let until = self.sleeping_until.load(Ordering::Acquire);
                if until != 0 && deadline < until {
                    self.wake();
                }
            }
            Model::Go => self.wake_if_deep(),
        }
    }

    /// A worker starts running, or a goroutine leaves foreign code.
    /// Precise: the monitor must not be on a long sleep. Go: only a
    /// monitor in its deep sleep is woken (Go's `exitsyscall` and
    /// `startTheWorld` wake it when a P becomes active; `startm` alone does
    /// not wake a monitor on a backed-off tick).
    pub fn worker_started(&self) {
        match self.model {
            Model::Precise => {
                // What the wake is for: a pass of the monitor within a
                // running tick of the worker's start, so that its slice is
                // seen in time. A monitor that sleeps no longer than that
                // makes the pass anyway; one that sleeps longer, or is
                // awake (0: it may be about to choose a long sleep), is
                // woken as before. Waking it every time cost a futex call
                // on every start of an idle P (a channel hand-over between
                // Ps starts one each time) and a pass of the monitor. The
                // fence pairs with the monitor's after it stores 0 on
                // waking: a deadline read here belongs to a sleep that had
                // not ended when the P was marked running.
                fence(Ordering::SeqCst);
                let until = self.sleeping_until.load(Ordering::SeqCst);
                let tick = self.running_tick.load(Ordering::Relaxed);
                if until == 0 || tick == 0 || until > monotonic_nanos().saturating_add(tick) {
                    self.wake();
                }
            }
            Model::Go => self.wake_if_deep(),
        }
    }

    /// A goroutine back from foreign code took an idle P. Go: a monitor
    /// in its deep sleep wakes (`exitsyscall`); precise: nothing to do.
    pub fn foreign_left(&self) {
        if self.model == Model::Go {
            self.wake_if_deep();
        }
    }

    /// Whether the monitor is in (or entering) its deep sleep: Go's
    /// `sysmonwait`, for `scheddetail`.
    pub fn sleeps_deeply(&self) -> bool {
        self.deep.must_wake()
    }

    /// The waker's half of the deep sleep's handshake (its P is already
    /// marked active).
    fn wake_if_deep(&self) {
        if self.deep.must_wake() {
            self.wake();
        }
    }

    pub fn wake(&self) {
        *lock(&self.woken) = true;
        self.cv.notify_one();
    }

    /// Sleeps for `d` unless woken; whether it was woken.
    fn sleep(&self, d: Duration) -> bool {
        let mut w = lock(&self.woken);
        if !*w {
            self.sleeping_until
                .store(monotonic_nanos() + d.as_nanos() as u64, Ordering::Release);
            w = self
                .cv
                .wait_timeout(w, d)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let woken = std::mem::replace(&mut *w, false);
        self.sleeping_until.store(0, Ordering::SeqCst);
        // Pairs with `worker_started`'s fence: the pass that follows reads
        // the Ps after this store.
        fence(Ordering::SeqCst);
        woken
    }

    /// `--sched go`: if `all_idle` still holds once `deep` is published,
    /// sleeps until `d` has passed (the next timer) or a P becomes active,
    /// and says whether the latter woke it (Go's `syscallWake`: the tick
    /// starts again at its minimum); None if a P was active after all.
    fn deep_sleep_if(&self, all_idle: impl Fn() -> bool, d: Duration) -> Option<bool> {
        if !self.deep.enter(all_idle) {
            return None;
        }
        let woken = self.sleep(d);
        self.deep.leave();
        Some(woken)
    }
}

/// How long an M may stay in foreign code before its P is retaken when
/// there is other work (one minimum tick, as Go).
pub const RETAKE_AFTER: u64 = 20_000;
/// ... and when there is none: Go retakes after 10 ms regardless.
const RETAKE_IDLE_AFTER: u64 = 10_000_000;

/// Idle passes at the shortest tick before the tick starts doubling (Go:
/// 50, about 1 ms).
const BACKOFF_AFTER: u32 = 50;
/// Passes at the shortest tick after a quantum request.
const FAST_AFTER_REQUEST: u32 = 5;

/// How often the monitor forwards arrived signals while `notify`
/// channels exist.
const NOTIFY_TICK: u64 = 1_000_000;

/// What the monitor last saw of one P's time slice. Like Go's
/// `sysmontick`, slices are timed by observation: the hot path only bumps
/// `slice_seq`, and the monitor notes when it first saw each value.
#[derive(Clone, Copy, Default)]
struct SliceSeen {
    seq: u64,
    since: u64,
    /// A quantum request of this slice was armed: the slice is not asked
    /// again. (Between a goroutine's stop and the end of its slice the
    /// P still shows the slice; a second request there found the
    /// goroutine in the scheduler, and its signals were all declined.)
    asked: bool,
    retry: Resend,
    again: preempt::Backoff,
}

/// First back-off before the preemption signal is sent again, and the
/// longest (it doubles in between).
const RESEND_FIRST: u64 = 5_000;
const RESEND_MAX: u64 = 1_000_000;
/// A signal still undelivered after this long (blocked on the thread, or
/// discarded while the disposition was SIG_IGN) no longer holds back the
/// next one.
const RESEND_STUCK: u64 = 10_000_000;

/// Re-signalling one P's goroutine while its request stays pending.
#[derive(Clone, Copy, Default, Debug)]
struct Resend {
    /// The request being retried (its time).
    at: u64,
    /// When the next signal may go, and the back-off after it.
    next: u64,
    backoff: u64,
}

impl Resend {
    /// Sends again if the back-off has passed and the last signal reached
    /// the handler (which declined to redirect: an unsafe region, a
    /// shallow stack, the goroutine in a runtime call). Returns when to
    /// look again.
    fn step(&mut self, rt: &Runtime, p: &super::P, at: u64, now: u64) -> Option<u64> {
        if rt.cfg.sched == Model::Go {
            // Go's preemptM: a signal on every look while the previous one
            // has reached the handler; none while one is pending, ever (a
            // discarded or blocked signal is never followed by another).
            let m = rt.m_of(p)?;
            if !m.sig.pending.load(Ordering::Acquire) {
                rt.signal_p(p);
            }
            return None;
        }
        if self.at != at {
            *self = Resend {
                at,
                next: at + RESEND_FIRST,
                backoff: RESEND_FIRST,
            };
        }
        if now < self.next {
            return Some(self.next);
        }
        let m = rt.m_of(p)?;
        if m.sig.pending.load(Ordering::Acquire) {
            if now.saturating_sub(self.next) < RESEND_STUCK {
                return Some(self.next + RESEND_STUCK);
            }
            m.sig.pending.store(false, Ordering::Release);
        } else if m.sig.stopped_by_handler() {
            // The handler ran after the last signal and stopped the
            // goroutine (a redirect or its hand-off): it is on its way to
            // the scheduler, and another signal would only find it there.
            // The request's own back-off (`Again::Backoff`) stays the
            // defence against a stop that never arrives.
            self.next = now + self.backoff;
            return Some(self.next);
        } else if m.writing.load(Ordering::Acquire) {
            // Serving a `print`, which a full pipe can block for good: a
            // signal would find it in the runtime (a decline), and it
            // sees the request when the write returns. (A program whose
            // output nobody read drew a signal a millisecond.)
            self.next = now + self.backoff;
            return Some(self.next);
        }
        rt.signal_p(p);
        self.backoff = (self.backoff * 2).min(RESEND_MAX);
        self.next = now + self.backoff;
        Some(self.next)
    }
}

/// The monitor's loop; returns at shutdown.
pub fn run(rt: &Runtime) {
    let min = rt.cfg.sysmon_min_tick.as_nanos().max(1) as u64;
    let max = rt.cfg.sysmon_max_tick.as_nanos().max(min as u128) as u64;
    // With each worker's own quantum timer, the monitor is the backstop:
    // it asks a slice to stop after two quanta (see preempt::qtimer).
    let quantum = rt.cfg.quantum.as_nanos() as u64
        * if rt
            .signals
            .as_ref()
            .and_then(|s| s.quantum_timer())
            .is_some()
        {
            2
        } else {
            1
        };
    // While a goroutine runs, look at least this often: a slice that began
    // just after a look is then seen within a tenth of a quantum, so no
    // slice runs longer than 1.1 quanta before its request.
    let running_tick = (quantum / 10).max(min);
    rt.sysmon
        .running_tick
        .store(running_tick, Ordering::Relaxed);
    let hang = rt.cfg.hang_threshold.as_nanos() as u64;
    let async_mode = rt.signals_preempt();
    // Sleeps here are short and must be on time: no timer slack.
    // SAFETY: PR_SET_TIMERSLACK changes only this thread's slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
    let mut forwarded = 0u64;
    let mut seen = vec![SliceSeen::default(); rt.ps.len()];
    let mut delay = min;
    let mut idle = 0u32;
    let go = rt.cfg.sched == Model::Go;
    // When the previous pass looked (Go mode: a foreign call that began
    // before it was seen by it).
    let mut last_look = 0u64;
    // Go mode: when the next tick is due. The monitor also wakes between
    // ticks for duties of its own (forwarding signals to `notify`
    // channels, hang reports), which Go does elsewhere: those passes look
    // at no slice and retake no P, so that slices are timed by the tick
    // alone, as Go's are.
    let mut next_tick = 0u64;
    while !rt.shutdown.load(Ordering::Acquire) {
        let now = monotonic_nanos();
        let tick = !go || now >= next_tick;
        let mut acted = false;
        let mut requested = false;
        let mut running = false;
        let mut next_deadline = u64::MAX;
        for (p, seen) in rt.ps.iter().zip(seen.iter_mut()) {
            // Time slices.
            let seq = p.slice_seq.load(Ordering::Acquire);
            let id = p.current.load(Ordering::Acquire);
            if !tick {
                running |= id != 0;
            } else if id == 0 {
                seen.seq = seq;
            } else {
                running = true;
                if seen.seq != seq || seen.since == 0 {
                    *seen = SliceSeen {
                        seq,
                        since: now,
                        ..SliceSeen::default()
                    };
                }
                if now.saturating_sub(seen.since) < quantum {
                    if !go {
                        next_deadline = next_deadline.min(seen.since + quantum);
                    }
                } else if seen.asked {
                    // Asked once: it stops, or the request's back-off
                    // applies it again.
                } else if let Some(g) = rt.running_on(p, id) {
                    seen.asked = matches!(
                        rt.preempt(p, &g, seq, PreemptKind::Quantum, now),
                        Asked::Armed(_)
                    );
                    requested |= seen.asked;
                }
            }
            // A request in effect (for the quantum or the GC) is of this
            // slice: the slice's end would have withdrawn it. Signal again
            // if the handler could not stop the goroutine, apply it again
            // after a back-off, and say why it does not stop once it is
            // stuck.
            if id != 0 {
                let pending = rt
                    .running_on(p, id)
                    .and_then(|g| g.stop.armed().map(|r| (g, r.at)));
                if let Some((g, at)) = pending {
                    if async_mode && tick {
                        if let Some(when) = seen.retry.step(rt, p, at, now) {
                            next_deadline = next_deadline.min(when);
                        }
                    }
                    // Patch: the goroutine may have left the function whose
                    // back-edges were rewritten for it.
                    if rt.cfg.mode == PreemptMode::Patch && g.patched_elsewhere() {
                        rt.preempt_again(p, &g, Again::Follow);
                    }
                    match seen.again.due(at, now) {
                        Ok(()) => {
                            rt.preempt_again(p, &g, Again::Backoff);
                        }
                        Err(when) => next_deadline = next_deadline.min(when),
                    }
                    if hang > 0
                        && now.saturating_sub(at) >= hang
                        && g.diagnosed_request.swap(at, Ordering::AcqRel) != at
                    {
                        let m = p.m.load(Ordering::Acquire);
                        if let Some(text) = diagnose::stuck(rt, m, &g, now.saturating_sub(at)) {
                            crate::output::diagnose(&text);
                        }
                        reinstall_if_replaced(rt);
                    } else if hang > 0 && now < at + hang {
                        next_deadline = next_deadline.min(at + hang);
                    }
                }
            }
            // Foreign calls.
            if p.status() == PStatus::InForeign && tick {
                let since = p.foreign_since.load(Ordering::Acquire);
                let waited = now.saturating_sub(since);
                if go {
                    // Go's retake: a P seen in its syscall by the previous
                    // look is taken unless its own queue is empty and an
                    // idle P or a spinning M could pick work up (Go reads
                    // `runqempty(pp)` and `nmspinning + npidle`, not the
                    // global queue); any P after 10 ms.
                    let seen_before = since <= last_look;
                    let nobody_else = lock(&rt.sched).pidle.is_empty()
                        && !rt.ps.iter().any(|q| q.spinning.load(Ordering::Acquire));
                    let work = p.queued() > 0 || nobody_else;
                    if (seen_before && work) || waited >= RETAKE_IDLE_AFTER {
                        acted |= rt.retake(p.id);
                    }
                    continue;
                }
                let work = p.queued() > 0 || !lock(&rt.sched).runq.is_empty();
                if (waited >= RETAKE_AFTER && work) || waited >= RETAKE_IDLE_AFTER {
                    acted |= rt.retake(p.id);
                } else {
                    let at = if work {
                        RETAKE_AFTER
                    } else {
                        RETAKE_IDLE_AFTER
                    };
                    next_deadline = next_deadline.min(since + at);
                }
            }
        }
        // The handlers' decisions, to the tracer while they are fresh (a
        // goroutine that does not stop fills its M's ring otherwise).
        if rt.obs.tracer.is_on() {
            rt.drain_all_decisions();
        }
        // Preemption signals that arrived, offered to `notify` channels.
        if let Some(sh) = &rt.signals {
            let arrived = sh.arrived.load(Ordering::Acquire);
            if arrived != forwarded {
                rt.forward_signals(arrived - forwarded);
                forwarded = arrived;
            }
            if !lock(&rt.notify).is_empty() {
                next_deadline = next_deadline.min(now + NOTIFY_TICK);
            }
        }
        if !tick {
            // Go mode between ticks: the tick's schedule stands.
        } else if acted {
            idle = 0;
            delay = min;
        } else if requested && !go {
            // A quantum request: look again at the shortest tick for a few
            // passes, long enough to see the next slice start (the stop
            // takes tens of microseconds), then back off as usual. (Go's
            // sysmon does not count preemptions as work at all; counting
            // them fully kept this thread polling every 20 us for 1 ms of
            // every quantum, a tenth of a CPU.)
            idle = idle.max(BACKOFF_AFTER - FAST_AFTER_REQUEST);
            delay = min;
        } else {
            idle += 1;
            if idle > BACKOFF_AFTER {
                delay = (delay * 2).min(max);
            }
        }
        if tick {
            last_look = now;
            next_tick = now + delay;
        }
        if go {
            // Go's condition is `npidle == gomaxprocs`: the Ps' state, not
            // whether a goroutine is on them (one in foreign code whose P
            // was retaken still names it).
            let all_idle =
                || !rt.world.is_stopping() && rt.ps.iter().all(|p| p.status() == PStatus::Idle);
            if all_idle() {
                // Every P idle: Go's sysmon sleeps until the next timer
                // (at most half the forced-GC period, 60 s), and a P that
                // becomes active wakes it to a fresh tick.
                let until = rt.timers.next().unwrap_or(u64::MAX);
                let d = until
                    .saturating_sub(monotonic_nanos())
                    .clamp(min, 60_000_000_000);
                if rt.sysmon.deep_sleep_if(all_idle, Duration::from_nanos(d)) == Some(true) {
                    idle = 0;
                    delay = min;
                }
                next_tick = 0;
            } else {
                let mut sleep = next_tick.saturating_sub(monotonic_nanos()).max(1_000);
                if next_deadline != u64::MAX {
                    // Only the monitor's own duties (re-signals, hang
                    // reports, notify), never a slice's end.
                    sleep = sleep.min(next_deadline.saturating_sub(monotonic_nanos()).max(1_000));
                }
                let _ = rt.sysmon.sleep(Duration::from_nanos(sleep));
            }
            continue;
        }
        let mut sleep = delay;
        if running {
            sleep = sleep.min(running_tick);
        }
        if next_deadline != u64::MAX {
            sleep = sleep.min(next_deadline.saturating_sub(monotonic_nanos()).max(1_000));
        }
        let _ = rt.sysmon.sleep(Duration::from_nanos(sleep));
    }
}

/// With `--reinstall-preempt-handler`: a stuck goroutine whose signals go
/// to a handler that is not the runtime's (the seed's bug 13: foreign code
/// installed SIG_IGN, or its own handler) gets the runtime's handler put
/// back, and the monitor's next signal stops it.
fn reinstall_if_replaced(rt: &Runtime) {
    let sig = rt.cfg.preempt_signal;
    if !rt.cfg.reinstall_handler
        || rt.cfg.mode != crate::PreemptMode::Async
        || crate::preempt::asynchronous::installed(sig)
    {
        return;
    }
    crate::preempt::asynchronous::restore_handler(rt.cfg.mode, rt.cfg.preempt_signal);
    crate::output::diagnose(&format!(
        "preempt: reinstalled the runtime's handler for {} (--reinstall-preempt-handler)\n",
        diagnose::signal_name(sig)
    ));
}
