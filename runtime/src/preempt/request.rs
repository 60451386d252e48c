//! The stop request: one word per goroutine, changed only by
//! compare-and-swap transitions.
//!
//! Every mechanism stops a goroutine the same way: someone asks
//! (the monitor for a quantum, a stopper for the world, the stress
//! harness), the request is made to take effect on the goroutine (its
//! stack guard poisoned, and by mode its poll word set, its poll-page
//! pointer swapped, the global poll page protected, its function's
//! back-edges patched; the signal of `async` is sent once the request is
//! in effect), the goroutine reaches a point where it honours it, and the
//! effect is undone. Four parties touch a request, each from its own
//! thread and in its own order: the requester, the goroutine, the
//! scheduler (a slice ends) and the end of the run. Earlier versions kept
//! the request in several words (a flag, its time, an "armed" word, the
//! slice it was made in) and lost requests in the gaps between them: a
//! stopper that cleared the flag and then disarmed could undo the arm of
//! a request made in between, leaving a request pending with nothing in
//! effect, and a stop of the world waiting for it forever.
//!
//! Here the request is one word, [`StopRequest`]: a phase, and the
//! request itself (its kind and the time it was made) so that no second
//! word carries the same fact. The *effect* (whatever the mechanism does
//! to make the request felt, [`Effect`]) always has exactly one owner,
//! and only the owner changes it. The machine is drawn in the essay of
//! [`crate::preempt`]; its transitions:
//!
//! | transition | from -> to | who | on the effect |
//! |---|---|---|---|
//! | R1 request | Idle -> Arming | requester | becomes its owner |
//! | R1' stale | Arming -> Idle | requester | nothing was done yet: the slice ended or the run is over ([`StopRequest::request`]'s `current`) |
//! | R2 armed | Arming -> Armed | requester | applied ([`Effect::arm`]); no owner until someone moves it on |
//! | R4 re-request | Armed -> Arming | requester | owner again: applies it again, [`Effect::arm`] with `again` (re-signal, move a patch) |
//! | S1 stop | Armed -> Ending | the goroutine, at a preemption point | owner: undoes it ([`Effect::disarm`]) |
//! | S1 stop | Arming -> Ending | the goroutine, at a preemption point the effect brought it to | none: the arming requester stays the owner, and finds its R2 failed |
//! | E1 withdraw | Armed -> Ending | the scheduler at the end of a slice, the run end | owner: undoes it |
//! | E1 cancel | Arming -> Ending | the scheduler at the end of a slice, the run end | none: the arming requester stays the owner, and finds its R2 failed |
//! | R5 done | Ending -> Idle | whoever owns the effect (the mover into Ending, or the requester whose R2 failed) | after undoing it |
//!
//! What this buys:
//!
//! - **One owner.** Whoever moves the word into `Arming` or `Ending`
//!   owns the effect until it moves the word out again; nobody else
//!   touches it. So every arm is undone exactly once (the `mprotect` and
//!   patch reference counts balance), and an undo can never fall on a
//!   later request's arm: a new request needs `Idle`, which comes only
//!   after the undo.
//! - **Honoured at once.** A goroutine at a preemption point honours a
//!   request in effect or being armed ([`StopRequest::stop`]): the
//!   mechanism's effect may be visible before the requester publishes
//!   it (a patched back-edge before the `membarrier` that follows), and
//!   the goroutine need not wait for the rest of the arm. (The signal of
//!   `async` is sent after R2.)
//! - **No stale request.** Every slice ends with E1 ([`StopRequest::withdraw`]),
//!   a read-modify-write on the word after the slice's sequence number
//!   has moved on. A requester reads the sequence before its R1 and
//!   again after it (`current`): either its R1 comes first in the word's
//!   modification order, and E1 cancels it, or E1 comes first and the
//!   requester's acquire of the word sees the new sequence and withdraws
//!   (R1'). Either way a request made for one slice never survives into
//!   another, without a fence on the scheduler's path (a slice end costs
//!   one compare-and-swap on a line only the goroutine's M writes).
//! - **Nothing outlives the run.** The run end marks the run over, then
//!   does E1 on every goroutine and waits for any owner to finish
//!   ([`StopRequest::close`]); a requester whose R1 comes after sees the
//!   run over and withdraws.
//!
//! The transitions use acquire/release orderings and read-modify-writes
//! only, and run unchanged against the model of the other parties in the
//! `model` tests, where loom explores every interleaving (see
//! `request/model.rs` for the properties, each a named test, and the
//! planted bugs they must catch).

#[cfg(test)]
mod model;

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use crate::stats::PreemptKind;
use crate::sync::{AtomicU64Ops, Atomics, Std};

/// Where a goroutine's stop request is (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// No request.
    Idle,
    /// A requester is applying the effect (the request is not in effect
    /// yet).
    Arming,
    /// The request is in effect: the goroutine stops at its next
    /// preemption point.
    Armed,
    /// The request is over; the effect's owner is undoing it.
    Ending,
}

/// A request: why, and when (monotonic ns), so that time-to-preempt can
/// be measured from it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Request {
    pub kind: PreemptKind,
    pub at: u64,
}

/// What makes a request felt by the goroutine, and undoes it. Called only
/// by the effect's owner (never by two threads at once for one goroutine),
/// never from a signal handler.
pub trait Effect {
    /// Applies the request (R2), or applies it again (R4, `again`: the
    /// goroutine has not stopped; e.g. under `patch` it may run another
    /// function now).
    fn arm(&self, req: Request, again: bool);
    /// Undoes everything the arms of this request did.
    fn disarm(&self, req: Request);
}

/// The interpreter's stop check: a request in effect.
impl<A: Atomics> preempt_jit::interp::StopRequested for StopRequest<A> {
    #[inline]
    fn stop_requested(&self) -> bool {
        self.pending().is_some()
    }
}

/// What [`StopRequest::request`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Asked {
    /// The request is in effect.
    Armed(Request),
    /// Another request is there already (in this phase); nothing done.
    Busy(Phase),
    /// The slice ended, or the run, before the request could be made:
    /// withdrawn, nothing was applied.
    Stale,
    /// The goroutine's slice ended while the request was being armed: it
    /// was undone.
    Cancelled,
}

/// A bug planted on purpose, for the model-checking tests to find (the
/// switch exists only in test builds, `StopRequest::with_planted`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Planted {
    /// A stop clears the word before it undoes the effect (the order of
    /// the old protocol of several words): a request made in between has
    /// its arm undone, and stays pending with nothing in effect.
    ClearThenDisarm,
    /// A request is published before its effect is applied: a stop in
    /// between finds nothing to undo, and the late arm stays.
    PublishThenArm,
}

const PHASE_MASK: u64 = 0b11;
const KIND_SHIFT: u32 = 2;
const KIND_MASK: u64 = 0b11 << KIND_SHIFT;
const AT_SHIFT: u32 = 4;
/// The largest request time the word holds (2^60 ns: 36 years of uptime).
const AT_MAX: u64 = u64::MAX >> AT_SHIFT;

const IDLE: u64 = 0;

fn phase_of(w: u64) -> Phase {
    match w & PHASE_MASK {
        0 => Phase::Idle,
        1 => Phase::Arming,
        2 => Phase::Armed,
        _ => Phase::Ending,
    }
}

fn phase_bits(p: Phase) -> u64 {
    match p {
        Phase::Idle => 0,
        Phase::Arming => 1,
        Phase::Armed => 2,
        Phase::Ending => 3,
    }
}

fn encode(p: Phase, r: Request) -> u64 {
    (r.at.min(AT_MAX) << AT_SHIFT) | ((r.kind as u64) << KIND_SHIFT) & KIND_MASK | phase_bits(p)
}

fn with_phase(w: u64, p: Phase) -> u64 {
    (w & !PHASE_MASK) | phase_bits(p)
}

fn decode(w: u64) -> Request {
    Request {
        kind: PreemptKind::from_index(((w & KIND_MASK) >> KIND_SHIFT) as u8),
        at: w >> AT_SHIFT,
    }
}

/// A goroutine's stop request (see the module docs).
#[derive(Debug)]
pub struct StopRequest<A: Atomics = Std> {
    word: A::U64,
    /// The bug planted in this word's transitions (tests only).
    planted: crate::sync::Planted<Planted>,
}

impl<A: Atomics> Default for StopRequest<A> {
    fn default() -> Self {
        StopRequest {
            word: A::U64::new(IDLE),
            planted: Default::default(),
        }
    }
}

impl<A: Atomics> StopRequest<A> {
    /// A request word with `bug` planted in its transitions.
    #[cfg(test)]
    pub fn with_planted(bug: Planted) -> Self {
        StopRequest {
            word: A::U64::new(IDLE),
            planted: crate::sync::Planted::bug(bug),
        }
    }

    /// The phase, and the request if there is one (any phase but `Idle`).
    pub fn load(&self) -> (Phase, Option<Request>) {
        let w = self.word.load(Acquire);
        let p = phase_of(w);
        (p, (p != Phase::Idle).then(|| decode(w)))
    }

    pub fn phase(&self) -> Phase {
        phase_of(self.word.load(Acquire))
    }

    /// The request in effect, if any (`Armed`): what a requester follows
    /// up.
    #[inline]
    pub fn armed(&self) -> Option<Request> {
        let w = self.word.load(Acquire);
        (phase_of(w) == Phase::Armed).then(|| decode(w))
    }

    /// The request in effect or being armed, if any: what a preemption
    /// point, a signal handler or the interpreter's check stops for.
    #[inline]
    pub fn pending(&self) -> Option<Request> {
        let w = self.word.load(Acquire);
        matches!(phase_of(w), Phase::Arming | Phase::Armed).then(|| decode(w))
    }

    /// R1, R1', R2 (or, cancelled, R5): makes `req`. `current` says, after the word
    /// has been claimed, whether the slice the requester saw is still the
    /// goroutine's and the run still on; if not, the request is withdrawn
    /// before anything is applied.
    pub fn request(&self, req: Request, current: impl FnOnce() -> bool, fx: &impl Effect) -> Asked {
        let arming = encode(Phase::Arming, req);
        if let Err(w) = self.word.compare_exchange(IDLE, arming, AcqRel, Acquire) {
            return Asked::Busy(phase_of(w));
        }
        if !current() {
            // R1' (or, if the slice's end got here first, R5 from the
            // Ending it left for us: nothing was applied either way).
            if self
                .word
                .compare_exchange(arming, IDLE, AcqRel, Acquire)
                .is_err()
            {
                self.done(with_phase(arming, Phase::Ending));
            }
            return Asked::Stale;
        }
        if self.planted.is(Planted::PublishThenArm) {
            let published = self.publish(arming, req);
            fx.arm(req, false);
            return match published {
                Ok(()) => Asked::Armed(req),
                Err(()) => {
                    self.done(with_phase(arming, Phase::Ending));
                    Asked::Cancelled
                }
            };
        }
        fx.arm(req, false);
        self.publish_or_undo(arming, req, fx)
    }

    /// R4: the goroutine has not stopped; apply the armed request again.
    /// The request applied again, or `None` if it is not armed any more
    /// (it stopped, or was withdrawn).
    pub fn rerequest(&self, fx: &impl Effect) -> Option<Request> {
        let w = self.word.load(Acquire);
        if phase_of(w) != Phase::Armed {
            return None;
        }
        let req = decode(w);
        let arming = with_phase(w, Phase::Arming);
        if self
            .word
            .compare_exchange(w, arming, AcqRel, Acquire)
            .is_err()
        {
            return None;
        }
        fx.arm(req, true);
        match self.publish_or_undo(arming, req, fx) {
            Asked::Armed(req) => Some(req),
            _ => None,
        }
    }

    /// R2: Arming -> Armed; Err if the request was cancelled meanwhile
    /// (the word is Ending, and the effect still the caller's).
    fn publish(&self, arming: u64, req: Request) -> Result<(), ()> {
        let armed = encode(Phase::Armed, req);
        self.word
            .compare_exchange(arming, armed, AcqRel, Acquire)
            .map(drop)
            .map_err(drop)
    }

    /// R2, or if it was cancelled meanwhile, the undo and R5.
    fn publish_or_undo(&self, arming: u64, req: Request, fx: &impl Effect) -> Asked {
        match self.publish(arming, req) {
            Ok(()) => Asked::Armed(req),
            Err(()) => {
                fx.disarm(req);
                self.done(with_phase(arming, Phase::Ending));
                Asked::Cancelled
            }
        }
    }

    /// S1: the goroutine is at a preemption point. If a request is there
    /// (in effect, or being armed), ends it and returns it: the goroutine
    /// stops for it. One in effect is undone here; one being armed is
    /// cancelled, and its requester undoes what it applied when it finds
    /// its R2 failed (the goroutine need not wait for an arm that takes
    /// tens of microseconds, a patch's `membarrier`, to stop: the
    /// mechanism's effect is what brought it here).
    pub fn stop(&self, fx: &impl Effect) -> Option<Request> {
        let mut w = self.word.load(Acquire);
        loop {
            match phase_of(w) {
                Phase::Idle | Phase::Ending => return None,
                Phase::Armed => {
                    if self.end(w, fx) {
                        return Some(decode(w));
                    }
                }
                Phase::Arming => {
                    let ending = with_phase(w, Phase::Ending);
                    if self
                        .word
                        .compare_exchange(w, ending, AcqRel, Acquire)
                        .is_ok()
                    {
                        return Some(decode(w));
                    }
                }
            }
            w = self.word.load(Acquire);
        }
    }

    /// E1: the goroutine's slice has ended (after its sequence number
    /// moved on), or it stopped by itself (parked, yielded, exited). A
    /// request in effect is ended and undone and returned (the goroutine
    /// stopped, if not for it); one being armed is cancelled, for its
    /// requester to undo. Always a read-modify-write, even with nothing
    /// there: see the module docs (no stale request).
    pub fn withdraw(&self, fx: &impl Effect) -> Option<Request> {
        let mut w = self.word.load(Relaxed);
        loop {
            let next = match phase_of(w) {
                Phase::Idle | Phase::Ending => w,
                Phase::Arming => with_phase(w, Phase::Ending),
                Phase::Armed => {
                    if self.end(w, fx) {
                        return Some(decode(w));
                    }
                    w = self.word.load(Relaxed);
                    continue;
                }
            };
            match self.word.compare_exchange(w, next, AcqRel, Acquire) {
                Ok(_) => return None,
                Err(now) => w = now,
            }
        }
    }

    /// S1/E1 from `w` (Armed): Armed -> Ending, undo, R5.
    /// False if the word is no longer `w`.
    fn end(&self, w: u64, fx: &impl Effect) -> bool {
        if self.planted.is(Planted::ClearThenDisarm) {
            let cleared = self.word.compare_exchange(w, IDLE, AcqRel, Acquire).is_ok();
            if cleared {
                fx.disarm(decode(w));
            }
            return cleared;
        }
        let ending = with_phase(w, Phase::Ending);
        if self
            .word
            .compare_exchange(w, ending, AcqRel, Acquire)
            .is_err()
        {
            return false;
        }
        fx.disarm(decode(w));
        self.done(ending);
        true
    }

    /// R5: the owner of the effect has undone it: `ending` -> Idle. A
    /// compare-and-swap, not a store, so that every write of the word is
    /// a read-modify-write and all of them are ordered with the
    /// withdrawals that may rewrite `ending` meanwhile (with the same
    /// value, so this cannot fail).
    fn done(&self, ending: u64) {
        let r = self.word.compare_exchange(ending, IDLE, AcqRel, Acquire);
        debug_assert!(r.is_ok(), "only the owner moves the word out of Ending");
    }

    /// The run is over (the caller made that visible to the requesters'
    /// `current` first): ends any request, and waits until no requester
    /// owns an effect. Once it returns, nothing is armed and nothing will
    /// be: one E1 suffices, since a requester whose R1 comes after it in
    /// the word's order acquires the run's end with it and withdraws, and
    /// one before it is cancelled by it.
    pub fn close(&self, fx: &impl Effect) {
        self.withdraw(fx);
        while self.phase() != Phase::Idle {
            // A requester is arming (to be cancelled), undoing a cancelled
            // arm, or withdrawing a stale request.
            A::spin_wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Counts arms and disarms (single-threaded tests).
    #[derive(Default)]
    struct Count {
        arms: Cell<u32>,
        again: Cell<u32>,
        disarms: Cell<u32>,
    }

    impl Effect for Count {
        fn arm(&self, _: Request, again: bool) {
            if again {
                self.again.set(self.again.get() + 1);
            } else {
                self.arms.set(self.arms.get() + 1);
            }
        }
        fn disarm(&self, _: Request) {
            self.disarms.set(self.disarms.get() + 1);
        }
    }

    fn req(at: u64) -> Request {
        Request {
            kind: PreemptKind::StopTheWorld,
            at,
        }
    }

    #[test]
    fn a_request_round_trip() {
        let s = StopRequest::<Std>::default();
        let fx = Count::default();
        assert_eq!(s.request(req(42), || true, &fx), Asked::Armed(req(42)));
        assert_eq!(s.load(), (Phase::Armed, Some(req(42))));
        assert_eq!(s.armed(), Some(req(42)));
        assert_eq!(
            s.request(req(43), || true, &fx),
            Asked::Busy(Phase::Armed),
            "one request at a time"
        );
        assert!(s.rerequest(&fx).is_some());
        assert_eq!(s.stop(&fx), Some(req(42)));
        assert_eq!(s.load(), (Phase::Idle, None));
        assert_eq!(s.stop(&fx), None, "nothing twice");
        assert_eq!((fx.arms.get(), fx.again.get(), fx.disarms.get()), (1, 1, 1));
    }

    #[test]
    fn a_stale_request_applies_nothing() {
        let s = StopRequest::<Std>::default();
        let fx = Count::default();
        assert_eq!(s.request(req(1), || false, &fx), Asked::Stale);
        assert_eq!(s.phase(), Phase::Idle);
        assert_eq!((fx.arms.get(), fx.disarms.get()), (0, 0));
    }

    #[test]
    fn withdraw_ends_an_armed_request_and_close_leaves_idle() {
        let s = StopRequest::<Std>::default();
        let fx = Count::default();
        assert_eq!(s.withdraw(&fx), None);
        s.request(req(7), || true, &fx);
        assert_eq!(s.withdraw(&fx), Some(req(7)));
        s.request(req(8), || true, &fx);
        s.close(&fx);
        assert_eq!(s.phase(), Phase::Idle);
        assert_eq!(fx.arms.get(), fx.disarms.get());
        assert!(s.rerequest(&fx).is_none(), "nothing to re-request");
    }

    #[test]
    fn the_word_keeps_kind_and_time() {
        for kind in PreemptKind::ALL {
            for at in [0, 1, 123_456_789_012, AT_MAX] {
                let r = Request { kind: *kind, at };
                for p in [Phase::Arming, Phase::Armed, Phase::Ending] {
                    let w = encode(p, r);
                    assert_eq!((phase_of(w), decode(w)), (p, r));
                }
            }
        }
        // Times past the word's range saturate rather than wrap.
        assert_eq!(decode(encode(Phase::Armed, req(u64::MAX))).at, AT_MAX);
    }
}
