//! The wake-up protocol: idle Ps, spinning Ms, and the rule that no
//! runnable goroutine waits while a P is idle and no M looks for it.
//!
//! Go keeps this invariant with `wakep` and spinning Ms (proc.go, "Worker
//! thread parking/unparking"), and so does the scheduler here. Its parties
//! are the *readier* (any thread that makes a goroutine runnable: a
//! spawn, a channel operation, a timer, a yield, a preemption, the end of
//! a foreign call) and the *Ms* that run out of work and give their P up
//! (or whose P is released for them: a hand-off, the monitor's retake).
//! Two counters, kept here, say what they need to know of each other
//! without the scheduler lock: how many Ps are idle (`npidle`), and how
//! many Ms are *spinning*, woken to look for work and not yet either
//! running some or giving up (`nspinning`).
//!
//! The rules:
//!
//! - **W1, ready.** Put the goroutine in a queue with a read-modify-write
//!   (the `runnext` swap, the local ring's tail, the global queue under
//!   the scheduler lock), then [`Idle::wanted`]: if a P is idle and no M
//!   spins, claim an idle P for a new spinning M under the lock
//!   ([`Idle::claim_for_spinning`]) and start it. One spinning M is
//!   enough: a burst of spawns wakes one thread, not one per goroutine.
//! - **W2, give up.** An M that found no work stops spinning
//!   ([`Idle::stop_spinning`]), then under the lock looks at the global
//!   queue once more and puts its P on the idle list ([`Idle::idled`]);
//!   then, with the lock released, it looks at every P's `runnext` and
//!   local ring again, each with a read-modify-write ([`Idle::recheck`]),
//!   and if any holds work it does W1's wake-up itself.
//! - **W3, found.** A spinning M that found work stops spinning and does
//!   W1's wake-up: there may be more (Go's `resetspinning`).
//! - **W4, released.** A P released for an M (a locked goroutine's M, the
//!   monitor retaking a P from foreign code) goes to an M if its own queue
//!   or the global one has work, else idle with W2's re-check.
//!
//! Why it holds. Take a goroutine queued on a P's local ring and an M
//! giving its own P up at the same time. Either the readier's
//! read-modify-write of the ring comes first in the ring's modification
//! order, and the M's re-check (a read-modify-write of the same word,
//! after its P went idle) sees the goroutine and wakes an M; or the M's
//! comes first, and then the readier's acquires it, so the readier's
//! look at the counters afterwards sees the idle P and the M no longer
//! spinning, and wakes one itself. In the global queue the scheduler lock
//! orders the two the same way: the M checks the queue under the lock
//! it idles its P under, after it stopped spinning. An M that is still
//! spinning when a readier looks will, when it gives up, re-check after it
//! stopped. No fence is needed on the readier's path beyond the
//! read-modify-write that queues the goroutine (the `runnext` hand-over of
//! a channel ping-pong is a swap already). The failure this rules out was
//! seen: a goroutine yielded onto a P's ring as a spinning M finished its
//! last look, the M gave its P up, and the goroutine waited for the
//! quantum (or, under `coop`, forever) while a P sat idle.
//!
//! The counters use acquire/release and read-modify-writes only, and the
//! rules run against a model of the readier, the Ms and the queues in
//! `idle/model.rs`, where loom checks every interleaving, with the planted
//! bugs of the old scheduler ([`Planted`]) that it must catch.

#[cfg(test)]
mod model;

use std::sync::atomic::Ordering::{AcqRel, Acquire};

use crate::sync::{AtomicU64Ops, Atomics, Std};

/// A rule of the protocol left out on purpose, for the model-checking
/// tests to find (the switch exists only in test builds,
/// `Idle::with_planted`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Planted {
    /// W2 without its re-check of every P's queue (the scheduler before
    /// the protocol was written down).
    NoRecheck,
    /// W1 without its wake-up (a yield or a preemption queued its
    /// goroutine and woke nobody, as the scheduler did).
    NoWakeOnReady,
}

/// The idle-P and spinning-M counters (see the module docs).
#[derive(Debug)]
pub struct Idle<A: Atomics = Std> {
    npidle: A::U64,
    nspinning: A::U64,
    /// The rule left out (tests only).
    planted: crate::sync::Planted<Planted>,
}

impl<A: Atomics> Idle<A> {
    /// `idle` Ps idle, no M spinning.
    pub fn new(idle: usize) -> Idle<A> {
        Idle {
            npidle: A::U64::new(idle as u64),
            nspinning: A::U64::new(0),
            planted: Default::default(),
        }
    }

    #[cfg(test)]
    pub fn with_planted(idle: usize, bug: Planted) -> Idle<A> {
        Idle {
            planted: crate::sync::Planted::bug(bug),
            ..Idle::new(idle)
        }
    }

    /// Idle Ps.
    pub fn npidle(&self) -> usize {
        self.npidle.load(Acquire) as usize
    }

    /// Spinning Ms.
    pub fn nspinning(&self) -> usize {
        self.nspinning.load(Acquire) as usize
    }

    /// W1, after the goroutine is queued: whether an M should be started
    /// (a P is idle and no M spins). The caller then claims under the
    /// lock, where the answer is checked again.
    #[inline]
    pub fn wanted(&self) -> bool {
        self.npidle.load(Acquire) > 0
            && self.nspinning.load(Acquire) == 0
            && !self.planted.is(Planted::NoWakeOnReady)
    }

    /// W1 under the lock guarding `pidle`: an idle P for a new spinning
    /// M, unless none is idle or an M spins already.
    pub fn claim_for_spinning(&self, pidle: &mut Vec<usize>) -> Option<usize> {
        if self.nspinning.load(Acquire) > 0 {
            return None;
        }
        let p = pidle.pop()?;
        self.npidle.fetch_sub(1, AcqRel);
        self.nspinning.fetch_add(1, AcqRel);
        Some(p)
    }

    /// Under the lock guarding `pidle`: an idle P for another use (the
    /// world's stopper, an M back from foreign code without its P).
    pub fn take(&self, pidle: &mut Vec<usize>) -> Option<usize> {
        let p = pidle.pop()?;
        self.npidle.fetch_sub(1, AcqRel);
        Some(p)
    }

    /// W2/W4 under the lock guarding `pidle`: P `p` is idle. Returns the
    /// number of idle Ps now.
    pub fn idled(&self, pidle: &mut Vec<usize>, p: usize) -> usize {
        pidle.push(p);
        self.npidle.fetch_add(1, AcqRel) as usize + 1
    }

    /// Under the lock guarding `pidle`: every idle P taken at once (the
    /// world stops).
    pub fn take_all(&self, pidle: &mut Vec<usize>) -> Vec<usize> {
        let all = std::mem::take(pidle);
        self.npidle.fetch_sub(all.len() as u64, AcqRel);
        all
    }

    /// W2/W3: a spinning M stops spinning.
    pub fn stop_spinning(&self) {
        self.nspinning.fetch_sub(1, AcqRel);
    }

    /// W2/W4, after the P went idle and the lock was released: `work`
    /// looks at every P's queues, each with a read-modify-write; whether
    /// it found some (the caller then does W1's wake-up).
    pub fn recheck(&self, work: impl FnOnce() -> bool) -> bool {
        !self.planted.is(Planted::NoRecheck) && work()
    }
}
