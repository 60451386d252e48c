//! The monitor's deep sleep under `--sched go`, and the handshake that
//! makes it safe: with every P idle the monitor sleeps until the next
//! timer, so a P that becomes active meanwhile (a worker started for a
//! readied goroutine, a goroutine back from foreign code, one entering
//! it) must wake it, or a goroutine could run for a whole deep sleep
//! (up to 60 s) with no monitor to end its slice.
//!
//! The two halves, both sequentially consistent:
//!
//! - the monitor publishes `deep`, then (after a fence) checks that every
//!   P is still idle, and sleeps only if so ([`DeepSleep::enter`]);
//! - a waker marks its P active, then (after a fence) reads `deep`, and
//!   wakes the monitor if it is set ([`DeepSleep::must_wake`]).
//!
//! Either the monitor sees the active P, or the waker sees `deep` and
//! wakes it (the wake is a flag under the monitor's lock, so a wake that
//! comes before the monitor waits is not lost). Checking the Ps before
//! publishing `deep` loses the wake-up: the first version did that, and 1
//! run in 8 of a sleeper behind a spinner hung with the spinner never
//! asked to stop. `model.rs` checks both under loom.

#[cfg(test)]
mod model;

use std::sync::atomic::Ordering::SeqCst;

use crate::sync::{AtomicU64Ops, Atomics, Planted, Std};

/// The handshake's rule left out on purpose, for the model to find.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// The monitor checks the Ps before it publishes `deep`.
    CheckBeforePublish,
}

/// Whether the monitor is (about to be) in its deep sleep.
#[derive(Debug)]
pub struct DeepSleep<A: Atomics = Std> {
    deep: A::U64,
    planted: Planted<Bug>,
}

impl<A: Atomics> Default for DeepSleep<A> {
    fn default() -> Self {
        DeepSleep {
            deep: A::U64::new(0),
            planted: Planted::default(),
        }
    }
}

impl<A: Atomics> DeepSleep<A> {
    #[cfg(test)]
    pub fn with_planted(bug: Bug) -> Self {
        DeepSleep {
            deep: A::U64::new(0),
            planted: Planted::bug(bug),
        }
    }

    /// The monitor: whether it may sleep deeply (every P idle, as
    /// `all_idle` says once `deep` is published). When it returns true the
    /// monitor sleeps and calls [`DeepSleep::leave`] after.
    pub fn enter(&self, all_idle: impl Fn() -> bool) -> bool {
        if self.planted.is(Bug::CheckBeforePublish) {
            let idle = all_idle();
            self.deep.store(1, SeqCst);
            if !idle {
                self.deep.store(0, SeqCst);
            }
            return idle;
        }
        self.deep.store(1, SeqCst);
        A::fence(SeqCst);
        if all_idle() {
            return true;
        }
        self.deep.store(0, SeqCst);
        false
    }

    /// The monitor is awake again.
    pub fn leave(&self) {
        self.deep.store(0, SeqCst);
    }

    /// A waker whose P is already marked active: whether the monitor
    /// must be woken.
    pub fn must_wake(&self) -> bool {
        A::fence(SeqCst);
        self.deep.load(SeqCst) != 0
    }
}
