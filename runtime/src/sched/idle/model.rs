//! The wake-up protocol's rules, model-checked with loom against a model
//! of the scheduler: a readier queueing a goroutine, Ms giving their Ps
//! up, the scheduler lock, and the queues (a P's `runnext` and ring are
//! modelled as a count of queued goroutines, changed and re-checked by
//! read-modify-writes as `runq.rs` does; the global queue as a count
//! under the lock).
//!
//! The property every test checks once its parties are done is the one
//! the protocol exists for: no goroutine is queued while a P is idle and
//! no M spins (an M started by a wake-up spins until it has looked). Each
//! scenario is one of the ways the old scheduler broke it; each planted
//! bug is run against a scenario it breaks, and must be caught.

use std::sync::atomic::Ordering::{AcqRel, Acquire};

use loom::sync::atomic::AtomicU64;
use loom::sync::{Arc, Mutex};
use loom::thread;

use super::{Idle, Planted};
use crate::sync::model::{check, Loom};

/// Ps in the model: P0 runs a goroutine that never comes back to the
/// scheduler (a call-free loop under `coop`, or the rest of a quantum);
/// P1 is the one that goes idle.
const PS: usize = 2;

struct World {
    idle: Idle<Loom>,
    /// Under the scheduler lock: the global queue's length, the idle Ps.
    sched: Mutex<(u64, Vec<usize>)>,
    /// Each P's local queue (runnext and ring).
    local: [AtomicU64; PS],
}

impl World {
    /// Every P running; P1's M spinning if `spinning`, or P1 idle if
    /// `p1_idle`.
    fn new(planted: Option<Planted>, spinning: bool, p1_idle: bool) -> Arc<World> {
        let idle = match planted {
            Some(bug) => Idle::with_planted(0, bug),
            None => Idle::new(0),
        };
        let w = World {
            idle,
            sched: Mutex::new((0, Vec::new())),
            local: [AtomicU64::new(0), AtomicU64::new(0)],
        };
        if spinning || p1_idle {
            let mut s = w.sched.lock().unwrap();
            w.idle.idled(&mut s.1, 1);
            if spinning {
                // P1 was given to a spinning M by a wake-up.
                assert_eq!(w.idle.claim_for_spinning(&mut s.1), Some(1));
            }
        }
        Arc::new(w)
    }

    /// W1's wake-up: claims an idle P for a new spinning M (which then
    /// counts as spinning until it has looked).
    fn wakep(&self) {
        if self.idle.wanted() {
            let mut s = self.sched.lock().unwrap();
            self.idle.claim_for_spinning(&mut s.1);
        }
    }

    /// W1 onto P `p`'s local queue (the ring's tail, or the `runnext`
    /// swap): a read-modify-write, then the wake-up.
    fn ready_local(&self, p: usize) {
        self.local[p].fetch_add(1, AcqRel);
        self.wakep();
    }

    /// W1 onto the global queue (a timer, a preempted goroutine).
    fn ready_global(&self) {
        self.sched.lock().unwrap().0 += 1;
        self.wakep();
    }

    /// W2 (or W4 for an M that was not spinning): the M of P `p` found
    /// nothing and gives `p` up.
    fn give_up(&self, p: usize, spinning: bool) {
        if spinning {
            self.idle.stop_spinning();
        }
        {
            let mut s = self.sched.lock().unwrap();
            if s.0 > 0 {
                // Work after all: it runs it, keeping its P.
                s.0 -= 1;
                return;
            }
            self.idle.idled(&mut s.1, p);
        }
        let found = self.idle.recheck(|| {
            // Every P's queue, each read with a read-modify-write.
            (0..PS).any(|q| self.local[q].fetch_add(0, AcqRel) > 0)
        });
        if found {
            self.wakep();
        }
    }

    /// Once every party is done: nothing queued while a P is idle and no
    /// M spins.
    fn assert_no_stranded(&self) {
        let queued = self.sched.lock().unwrap().0
            + (0..PS).map(|q| self.local[q].load(Acquire)).sum::<u64>();
        if queued > 0 && self.idle.npidle() > 0 {
            assert!(
                self.idle.nspinning() > 0,
                "stranded: {queued} goroutine(s) queued, {} P(s) idle, no M spinning",
                self.idle.npidle()
            );
        }
    }
}

/// A goroutine yields (or is readied by the running one) onto P0's queue
/// as P1's spinning M, which looked at P0 before, gives P1 up. Bound 3.
fn local_ready_vs_last_spinner(planted: Option<Planted>) {
    check(3, move || {
        let w = World::new(planted, true, false);
        let m1 = {
            let w = w.clone();
            thread::spawn(move || w.give_up(1, true))
        };
        w.ready_local(0);
        m1.join().unwrap();
        w.assert_no_stranded();
    });
}

#[test]
fn a_goroutine_queued_locally_as_the_last_spinner_gives_up_is_taken_up() {
    local_ready_vs_last_spinner(None);
}

/// A timer readies a goroutine onto the global queue as P1's spinning M
/// gives P1 up. Bound 3.
#[test]
fn a_goroutine_queued_globally_as_the_last_spinner_gives_up_is_taken_up() {
    check(3, || {
        let w = World::new(None, true, false);
        let timer = {
            let w = w.clone();
            thread::spawn(move || w.ready_global())
        };
        w.give_up(1, true);
        timer.join().unwrap();
        w.assert_no_stranded();
    });
}

/// P1 is released (its M's locked goroutine parked, or the monitor took
/// it from foreign code) as P0's goroutine yields onto P0's queue; nobody
/// was spinning. Bound 3.
#[test]
fn a_goroutine_queued_as_a_p_is_released_is_taken_up() {
    check(3, || {
        let w = World::new(None, false, false);
        let release = {
            let w = w.clone();
            thread::spawn(move || w.give_up(1, false))
        };
        w.ready_local(0);
        release.join().unwrap();
        w.assert_no_stranded();
    });
}

/// P1 is idle already; P0's goroutine yields, or is preempted, onto a
/// queue, local and global. Bound 3.
fn ready_while_a_p_is_idle(planted: Option<Planted>) {
    check(3, move || {
        let w = World::new(planted, false, true);
        let timer = {
            let w = w.clone();
            thread::spawn(move || w.ready_global())
        };
        w.ready_local(0);
        timer.join().unwrap();
        w.assert_no_stranded();
    });
}

#[test]
fn a_goroutine_readied_while_a_p_is_idle_wakes_an_m() {
    ready_while_a_p_is_idle(None);
}

// ---- the planted bugs: the checker must fail them -------------------------

#[test]
#[should_panic(expected = "stranded")]
fn planted_no_recheck_is_caught() {
    local_ready_vs_last_spinner(Some(Planted::NoRecheck));
}

#[test]
#[should_panic(expected = "stranded")]
fn planted_no_wake_on_ready_is_caught() {
    ready_while_a_p_is_idle(Some(Planted::NoWakeOnReady));
}
