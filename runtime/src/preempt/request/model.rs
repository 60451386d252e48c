//! The stop request's transitions, model-checked with loom against a
//! model of the other parties: requesters (the monitor, a stopper of the
//! world), goroutines that reach preemption points and end their slices,
//! and the end of the run.
//!
//! loom runs each test's closure once per interleaving of its threads'
//! atomic operations (within a bound on preemptions, stated per test),
//! under the C11 memory model for the acquire/release orderings the
//! protocol uses. Why loom rather than shuttle: the protocol is a handful
//! of operations on a few words, small enough to explore exhaustively, and
//! its correctness depends on memory ordering (a stale request is ruled
//! out by a read-modify-write's synchronisation, not by a lock), which
//! loom models and shuttle, a randomized scheduler over sequentially
//! consistent memory, does not.
//!
//! The model's effect ([`Fx`]) stands for every mechanism at once: a
//! per-goroutine part (the poisoned guard, the poll word, the poll-page
//! pointer) and a part shared by goroutines (the global poll page's
//! `mprotect` count, a function's patch count). It asserts the ownership
//! discipline on every call: never armed twice, never disarmed unarmed,
//! never re-armed unarmed, never armed after the run has ended, the shared
//! count never below zero. A goroutine "sees" a request the way JIT code
//! does: through the effect (its own part, or the shared part as a
//! patched back-edge or the protected global page makes every goroutine
//! in that function or loop take its yield path), and then asks the word.
//!
//! Every property is a named test; each planted bug ([`Planted`]) is run
//! against a property it breaks, and the test passes only if the checker
//! fails it.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};

use loom::sync::atomic::{AtomicBool, AtomicU64};
use loom::sync::Arc;
use loom::thread;

use super::{Asked, Effect, Phase, Planted, Request, StopRequest};
use crate::stats::PreemptKind;
use crate::sync::model::{check, Loom};

/// Goroutines in a model.
const GS: usize = 2;

/// The model's world: each goroutine's request word, P and effect, and
/// what they share.
struct World {
    stop: [StopRequest<Loom>; GS],
    /// Each goroutine's P's slice sequence number, as the scheduler
    /// keeps it: odd while a slice runs (the first is 1), even between.
    seq: [AtomicU64; GS],
    /// The per-goroutine part of the effect (0 or 1).
    own: [AtomicU64; GS],
    /// Goroutines counted in the shared part of the effect.
    shared: AtomicU64,
    /// The run is over (what requesters' `current` reads).
    over: AtomicBool,
    /// The run's end has returned: nothing may be armed after it.
    closed: AtomicBool,
    /// Each goroutine has stopped for a request.
    stopped: [AtomicBool; GS],
}

impl World {
    fn new(planted: Option<Planted>) -> Arc<World> {
        let word = || match planted {
            Some(bug) => StopRequest::with_planted(bug),
            None => StopRequest::default(),
        };
        Arc::new(World {
            stop: [word(), word()],
            seq: [AtomicU64::new(1), AtomicU64::new(1)],
            own: [AtomicU64::new(0), AtomicU64::new(0)],
            shared: AtomicU64::new(0),
            over: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            stopped: [AtomicBool::new(false), AtomicBool::new(false)],
        })
    }

    fn fx(&self, g: usize) -> Fx<'_> {
        Fx { w: self, g }
    }

    /// A requester's request for goroutine `g`'s current slice (its time
    /// is the slice's number, so that tests can tell slices apart); none
    /// between slices, where the real requesters find no goroutine on the
    /// P.
    fn request(&self, g: usize) -> Asked {
        let seq = self.seq[g].load(Acquire);
        if seq.is_multiple_of(2) {
            return Asked::Stale;
        }
        let req = Request {
            kind: PreemptKind::StopTheWorld,
            at: seq,
        };
        self.stop[g].request(
            req,
            || self.seq[g].load(Acquire) == seq && !self.over.load(Acquire),
            &self.fx(g),
        )
    }

    /// Goroutine `g`'s slice ends (E1).
    fn end_slice(&self, g: usize) -> Option<Request> {
        let seq = self.seq[g].load(Acquire);
        assert_eq!(seq % 2, 1, "a slice runs");
        self.seq[g].store(seq + 1, Release);
        self.stop[g].withdraw(&self.fx(g))
    }

    /// Goroutine `g` starts its next slice.
    fn begin_slice(&self, g: usize) {
        let seq = self.seq[g].load(Acquire);
        self.seq[g].store(seq + 1, Release);
    }

    /// What goroutine `g`'s code would notice: its own effect, or the
    /// shared one.
    fn felt(&self, g: usize) -> bool {
        self.own[g].load(Acquire) == 1 || self.shared.load(Acquire) > 0
    }

    /// Goroutine `g` at a preemption point (S1): whether it stopped.
    fn point(&self, g: usize) -> bool {
        let stopped = self.stop[g].stop(&self.fx(g)).is_some();
        if stopped {
            self.stopped[g].store(true, Release);
        }
        stopped
    }

    /// Once every party is done: nothing pending, nothing armed.
    fn assert_quiet(&self) {
        for g in 0..GS {
            assert_eq!(self.stop[g].phase(), Phase::Idle, "goroutine {g}'s word");
            assert_eq!(self.own[g].load(Acquire), 0, "goroutine {g} still armed");
        }
        assert_eq!(self.shared.load(Acquire), 0, "shared effect still counted");
    }
}

/// Runs `f` as a party of the model, on a thread of its own.
fn party(w: &Arc<World>, f: impl FnOnce(&World) + Send + 'static) -> thread::JoinHandle<()> {
    let w = w.clone();
    thread::spawn(move || f(&w))
}

/// The model's effect on goroutine `g` (see the module docs).
struct Fx<'a> {
    w: &'a World,
    g: usize,
}

impl Effect for Fx<'_> {
    fn arm(&self, _: Request, again: bool) {
        assert!(
            !self.w.closed.load(Acquire),
            "armed after the run's end returned"
        );
        if again {
            assert_eq!(self.w.own[self.g].load(Acquire), 1, "re-armed unarmed");
            return;
        }
        assert_eq!(
            self.w.own[self.g].fetch_add(1, AcqRel),
            0,
            "armed twice: an undo is still to come for the earlier arm"
        );
        self.w.shared.fetch_add(1, AcqRel);
    }

    fn disarm(&self, _: Request) {
        assert_eq!(
            self.w.own[self.g].fetch_sub(1, AcqRel),
            1,
            "undo without its arm: disarmed what was not armed"
        );
        let before = self.w.shared.fetch_sub(1, AcqRel);
        assert!(
            before > 0,
            "undo without its arm: the shared count went below zero"
        );
    }
}

/// A request races with the goroutine's preemption point and the end of
/// its slice; in its next slice, no request of the last one is in effect,
/// and a stop is always for the slice it happens in. Preemption bound 3:
/// every placement of the slice's end among the request's four steps.
fn request_vs_slice_end(planted: Option<Planted>) {
    check(3, move || {
        let w = World::new(planted);
        let requester = party(&w, |w| {
            w.request(0);
        });
        // Slice 1: a preemption point, then the end.
        if w.felt(0) {
            w.point(0);
        }
        if let Some(r) = w.end_slice(0) {
            assert_eq!(r.at, 1, "slice 1 ended a request of another slice");
        }
        // Slice 3: a request of slice 1 is never in effect here.
        w.begin_slice(0);
        if let Some(r) = w.stop[0].armed() {
            assert_eq!(r.at, 3, "a request of slice 1 is armed in slice 3");
        }
        if w.felt(0) && w.point(0) {
            assert!(w.stopped[0].load(Acquire));
        }
        requester.join().unwrap();
        w.end_slice(0);
        w.assert_quiet();
    });
}

#[test]
fn a_request_stops_its_slice_or_is_withdrawn_before_the_next() {
    request_vs_slice_end(None);
}

/// A request and a re-request (the monitor's follow-up, or a stopper's
/// back-off) race with the goroutine stopping and its slice ending; once
/// all are done, nothing is armed. Bound 3.
fn rerequest_vs_stop(planted: Option<Planted>) {
    check(3, move || {
        let w = World::new(planted);
        let requester = party(&w, |w| {
            if matches!(w.request(0), Asked::Armed(_)) {
                w.stop[0].rerequest(&w.fx(0));
            }
        });
        if w.felt(0) {
            w.point(0);
        }
        w.end_slice(0);
        requester.join().unwrap();
        w.assert_quiet();
    });
}

#[test]
fn nothing_stays_armed_once_its_request_is_cleared() {
    rerequest_vs_stop(None);
}

/// Two goroutines (one function, so they share the patch count, or one
/// global poll page), each requested by its own requester, while each
/// stops, is requested again after it stopped, and ends its slice: the
/// effect is applied and undone in pairs, and the shared count balances.
/// Bound 2 (four threads).
fn two_goroutines_share_an_effect(planted: Option<Planted>) {
    check(2, move || {
        let w = World::new(planted);
        let requesters: Vec<_> = (0..GS)
            .map(|g| {
                party(&w, move |w| {
                    w.request(g);
                    // A second request, once the first is over or not.
                    w.request(g);
                })
            })
            .collect();
        let other = party(&w, |w| {
            if w.felt(1) {
                w.point(1);
            }
            w.end_slice(1);
        });
        if w.felt(0) {
            w.point(0);
        }
        w.end_slice(0);
        for r in requesters {
            r.join().unwrap();
        }
        other.join().unwrap();
        w.assert_quiet();
    });
}

#[test]
fn every_arm_is_undone_once() {
    two_goroutines_share_an_effect(None);
}

/// The run ends while a requester arms and the goroutine runs: once the
/// end returns, nothing is armed and nothing can be. Bound 3.
fn run_end_vs_request(planted: Option<Planted>) {
    check(3, move || {
        let w = World::new(planted);
        let requester = party(&w, |w| {
            w.request(0);
            w.request(0);
        });
        let end = party(&w, |w| {
            w.over.store(true, Release);
            for g in 0..GS {
                w.stop[g].close(&w.fx(g));
            }
            w.closed.store(true, Release);
        });
        if w.felt(0) {
            w.point(0);
        }
        end.join().unwrap();
        requester.join().unwrap();
        w.assert_quiet();
        assert!(
            !matches!(w.request(0), Asked::Armed(_)),
            "a request after the run's end"
        );
    });
}

#[test]
fn the_end_of_a_run_leaves_nothing_armed() {
    run_end_vs_request(None);
}

/// A stopper of the world asks two goroutines, which run one function on
/// two Ps, to stop, while the monitor asks one of them for its quantum;
/// the goroutines run a loop without a preemption point of their own,
/// which stops only once it feels a request, as call-free loops under
/// `poll`, `trap` and `patch` do. The stopper waits as long as a request
/// of its own or another's is in effect, and never re-requests (that is
/// defence in depth, tested apart), so a request left pending with
/// nothing in effect would leave it waiting forever. Rather than spin
/// forever (which loom would report only as an exhausted branch budget),
/// each goroutine takes a turn of its loop, and once every party is
/// done, any request still pending must be felt: the goroutine's next turn
/// stops. Bound 2.
fn stopper_vs_spinners(planted: Option<Planted>) {
    check(2, move || {
        let w = World::new(planted);
        let spinners: Vec<_> = (0..GS)
            .map(|g| {
                party(&w, move |w| {
                    if w.felt(g) && w.point(g) {
                        w.end_slice(g);
                    }
                })
            })
            .collect();
        let monitor = party(&w, |w| {
            w.request(0);
        });
        for g in 0..GS {
            w.request(g);
        }
        for s in spinners {
            s.join().unwrap();
        }
        monitor.join().unwrap();
        for g in 0..GS {
            if w.stopped[g].load(Acquire) {
                continue;
            }
            match w.stop[g].load() {
                (Phase::Armed, _) => {
                    assert!(w.felt(g), "goroutine {g}: a request in effect, not felt");
                    assert!(
                        w.point(g),
                        "goroutine {g}: felt, but its point does not stop"
                    );
                    w.end_slice(g);
                }
                (phase, _) => panic!("goroutine {g} running, not stopped, request {phase:?}"),
            }
        }
        w.assert_quiet();
    });
}

#[test]
fn a_stopper_never_waits_on_a_request_nobody_acts_on() {
    stopper_vs_spinners(None);
}

// ---- the planted bugs: the checker must fail them -------------------------

#[test]
#[should_panic(expected = "armed twice")]
fn planted_clear_then_disarm_is_caught_by_the_stopper() {
    // The same bug seen the way the runtime saw it: two requests for one
    // goroutine, the first's stop and the second's arm crossing.
    stopper_vs_spinners(Some(Planted::ClearThenDisarm));
}

#[test]
#[should_panic(expected = "armed twice")]
fn planted_clear_then_disarm_is_caught() {
    // A stop clears the word, a new request arms, then the old undo
    // lands on it.
    two_goroutines_share_an_effect(Some(Planted::ClearThenDisarm));
}

#[test]
#[should_panic(expected = "undo without its arm")]
fn planted_publish_then_arm_is_caught() {
    // Published before armed: a stop in between undoes nothing, and the
    // late arm outlives its request.
    rerequest_vs_stop(Some(Planted::PublishThenArm));
}
