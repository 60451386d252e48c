//! Preemption: how a running goroutine is made to stop.
//!
//! The monitor decides *when* (a goroutine has run for its quantum) and so
//! does the GC (it needs the world stopped); both call [`request`], and the
//! mechanism decides *how* the request reaches the goroutine.
//!
//! # The stop request
//!
//! Whatever the mechanism, a request to stop one goroutine is one word of
//! the goroutine's ([`request::StopRequest`]), changed only by
//! compare-and-swap, and the request's *effect* on the goroutine (its
//! poisoned stack guard, and by mode its poll word, its poll-page pointer,
//! the global poll page's protection, its function's patched back-edges:
//! [`effect`]) always has exactly one owner:
//!
//! ```text
//!                    R1 request
//!   +------+  (requester owns the effect) +--------+
//!   | Idle | ---------------------------> | Arming |<-------------+
//!   +------+                              +--------+              |
//!    ^  ^  R5 owner undid the effect   R2 armed |   | S1 / E1     |
//!    |  |    (Ending -> Idle)                   v   v  cancelled  | R4 re-request
//!    |  |                                 +-------+ +--------+    | (requester
//!    |  +-------------------------------- | Ending| |  Armed |----+  owns it again)
//!    |                                    +-------+ +--------+
//!    |                                        ^         |
//!    +-- R1' stale (Arming -> Idle)           +---------+
//!                                       S1 stop / E1 slice end / run end
//!                                       (the mover owns the effect)
//! ```
//!
//! Its parties: the *requester* (the monitor for a quantum, the stopper of
//! the world, the stress harness) makes a request for the slice it saw
//! (R1), applies the effect and publishes it (R2), or withdraws it if the
//! slice ended first (R1'), and applies it again if the goroutine has not
//! stopped after a back-off (R4: [`Requester::rerequest`], counted as `re-requests`
//! in `--stats`, as Go's `suspendG` re-sends: a lost request would show as
//! a number and cost a back-off, never a hang). The *goroutine* honours a
//! request at a preemption point (S1). The *scheduler* withdraws
//! whatever request is left when the goroutine's slice ends (E1), and the
//! *end of the run* does so for every goroutine and lets no request be
//! made after it. (A stop or a withdrawal that finds the request still
//! being armed cancels it, and its requester undoes the arm.) Each transition, who makes it and what it does to the
//! effect are tabled in [`request`], with why the whole cannot lose a
//! request; its model-checking tests run the transitions against a model
//! of the other parties under loom.
//!
//! # The five mechanisms
//!
//! Every mechanism ends in the same place: the goroutine reaches a
//! preemption point, the scheduler honours its request (the protocol's
//! S1) and records the time from the request to that point. They differ in
//! how the request reaches a goroutine that is running, each in its file,
//! which opens with what it is, what it costs and what it cannot stop:
//!
//! | mode | the request's effect | where the goroutine stops | file |
//! |---|---|---|---|
//! | `coop` | the stack guard poisoned | its next function entry or runtime call | [`coop`] |
//! | `async` | the guard, and a signal to its thread | wherever [`decide`] allows: any instruction outside the unsafe regions | [`asynchronous`] |
//! | `poll` | the guard, and its poll word set | its next back-edge, through the stub | [`poll`] |
//! | `trap` | the guard, and its poll-page pointer (or the global page) made to fault | its next back-edge's load, through the fault handler and the stub | [`trap`] |
//! | `patch` | the guard, and its function's back-edges rewritten | its next back-edge, through a trampoline and the stub | [`patch`] |
//!
//! [`effect`] applies and undoes the effect for the request's owner.
//! The handlers that redirect a thread into the stub (the signal's and the
//! fault's; the stepping harness's too) share one picture of the worker
//! they interrupt ([`worker`]) and one policy ([`decide`]). The stub, which
//! every mechanism but `coop` enters, saves every register the JIT code
//! may use on the goroutine's own stack and makes a runtime call; when the
//! goroutine is resumed it restores them and returns to the instruction it
//! was stopped before (its frame is drawn in `jit/src/isa/*/stubs.rs`).

#[path = "async.rs"]
pub mod asynchronous;
pub mod coop;
pub mod decide;
pub mod effect;
pub mod patch;
pub mod poll;
pub mod qtimer;
pub mod record;
pub mod request;
pub mod trap;
pub mod worker;

use preempt_jit::ir::PreemptMode;

use crate::g::G;
use crate::stats::{monotonic_ns, PreemptKind, Stats};
use crate::trace::{RequestEnd, Tracer};
use effect::Arming;
use request::{Asked, Request};

/// The requester's side of the protocol: the run's mechanism, and where a
/// request is recorded. The scheduler makes one for each request
/// (`Runtime::preempt`), from the monitor, the stopper of the world and
/// the stress harness alike.
#[derive(Clone, Copy, Debug)]
pub struct Requester<'a> {
    pub arming: &'a Arming,
    pub stats: &'a Stats,
    pub tracer: &'a Tracer,
}

impl Requester<'_> {
    /// Asks `g`, running on P `p`, to stop, for `kind`, through the run's
    /// mechanism (the protocol of [`request`]): `current` answers whether
    /// the slice the caller saw is still running and the run still going
    /// (else the request is withdrawn, R1'); under `async`, `signal` sends
    /// the signal once the request is in effect.
    pub fn request(
        &self,
        p: u32,
        g: &G,
        kind: PreemptKind,
        now: u64,
        current: impl Fn() -> bool,
        signal: impl FnOnce(),
    ) -> Asked {
        // Time-to-preempt starts here, when the request is made, not when
        // the caller's pass began (a monitor pass may have done other work
        // since it read the clock).
        let req = Request {
            kind,
            at: monotonic_ns().max(now),
        };
        let mode = self.arming.mode();
        let asked = g
            .stop
            .request(req, current, &self.arming.fx(g, self.stats, self.tracer));
        let withdrawn = match asked {
            Asked::Armed(_) => None,
            Asked::Busy(_) => return asked,
            Asked::Stale => Some(RequestEnd::Stale),
            Asked::Cancelled => Some(RequestEnd::Cancelled),
        };
        self.tracer
            .preempt_requested(req.at, Some(p), g.id, kind, mode);
        if let Some(end) = withdrawn {
            if self.tracer.is_on() {
                self.tracer
                    .request_ended(monotonic_ns(), g.id, req.at, kind, end);
            }
            return asked;
        }
        self.stats.preempt_requested(kind, mode);
        if mode == PreemptMode::Async {
            // If the handler declines, the requester signals again:
            // the monitor for its quantum requests (with back-off), a
            // stop of the world from its own wait loop.
            signal();
        }
        asked
    }

    /// Applies `g`'s request again, through the mode's own mechanism (the
    /// protocol's R4), and under `async` signals again. False if the
    /// request is no longer in effect.
    pub fn rerequest(&self, g: &G, why: Again, signal: impl FnOnce()) -> bool {
        let Some(req) = g
            .stop
            .rerequest(&self.arming.fx(g, self.stats, self.tracer))
        else {
            return false;
        };
        if why == Again::Backoff {
            self.stats.re_requested();
        }
        if self.tracer.is_enabled() {
            // The request applied again, not whichever is there now (it
            // may have stopped, and another been made, since).
            self.tracer
                .rerequested(monotonic_ns(), g.id, req.at, why.name());
        }
        if self.arming.mode() == PreemptMode::Async {
            signal();
        }
        true
    }
}

/// Why a request already in effect is applied again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Again {
    /// The goroutine has not stopped after a back-off: defence in depth
    /// against a lost request (as Go's `suspendG` re-sends), counted as a
    /// re-request.
    Backoff,
    /// Under `patch`: it runs another function than the one patched for
    /// it, and the patch follows it.
    Follow,
}

impl Again {
    /// How the trace names it.
    pub fn name(self) -> &'static str {
        match self {
            Again::Backoff => "back-off",
            Again::Follow => "follow",
        }
    }
}

/// A request in effect is applied again this long after it was made if
/// its goroutine has not stopped, then after twice as long, up to
/// [`AGAIN_MAX`]. A default quantum: far above a stop on an idle machine
/// (time-to-preempt is microseconds to tens of microseconds at p99 here)
/// and above most of what an oversubscribed one adds (a goroutine's
/// thread waiting for a CPU: a few milliseconds), so that a re-request
/// stands for something wrong or slow: a lost request, a mechanism that
/// cannot reach the goroutine (coop and a call-free loop), a goroutine in
/// an unsafe region or off the CPU for a quantum.
pub const AGAIN_FIRST: u64 = 10_000_000;
pub const AGAIN_MAX: u64 = 160_000_000;

/// The back-off of re-requests for one requester.
#[derive(Clone, Copy, Default, Debug)]
pub struct Backoff {
    /// The request being followed (its time).
    at: u64,
    next: u64,
    step: u64,
}

impl Backoff {
    /// For the request made at `at`, still in effect at `now`: Ok if it is
    /// due to be applied again now, else when it will be.
    pub fn due(&mut self, at: u64, now: u64) -> Result<(), u64> {
        if self.at != at {
            *self = Backoff {
                at,
                next: at.saturating_add(AGAIN_FIRST),
                step: AGAIN_FIRST,
            };
        }
        if now < self.next {
            return Err(self.next);
        }
        self.step = (self.step * 2).min(AGAIN_MAX);
        self.next = now.saturating_add(self.step);
        Ok(())
    }
}
