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
//! [`arm`]) always has exactly one owner:
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
//! stopped after a back-off (R4: [`rerequest`], counted as `re-requests`
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
//! # Cooperative (`coop`, Go before 1.14, `asyncpreemptoff=1`)
//!
//! A request's effect poisons the goroutine's stack guard (the word every
//! JIT function entry compares SP with). The next function entry fails
//! its check and calls the runtime, which sees the request in effect,
//! ends it (restoring the guard) and moves the goroutine to the global
//! run queue. Runtime operations check for a request in effect after they
//! are served. The interpreter checks at function entries. A loop with no
//! call and no runtime operation has no preemption point at all: it runs
//! until it ends, whatever the request. (The interpreter, in every other
//! mode, checks at every instruction boundary: it is those modes' oracle
//! too.)
//!
//! # Asynchronous (`async`, Go 1.14+, the default)
//!
//! Everything the cooperative path does, and a signal. The protocol, end
//! to end:
//!
//! 1. **Request.** [`request`] makes the request (in effect: the guard
//!    poisoned), then sends the preemption signal (`--preempt-signal`,
//!    SIGURG by default) to the worker thread (M) holding the goroutine's
//!    P with `tgkill`.
//!    A per-M `pending` flag coalesces sends: while one signal is in
//!    flight no other is sent, and the handler clears the flag when it
//!    runs. A per-M pair of counters (`sent`, `seen`) says whether the
//!    handler has run since the last send.
//! 2. **Decision.** The handler ([`signal`]) reads the interrupted PC and
//!    SP through `MachineContext` and asks [`decide::decide`], a pure
//!    function of the PC, the SP, the compiler's tables and the running
//!    goroutine, with its conditions numbered in its documentation: the
//!    thread runs this goroutine's JIT code (not the scheduler, a runtime
//!    call, foreign code or a stub, so no runtime lock is held), there is
//!    room on the goroutine stack for the stub, and the PC is not in an
//!    unsafe region (frame set-up and tear-down, runtime-call transitions,
//!    scratch-register use, atomic sequences, write barriers); a
//!    restartable region resumes at its start.
//! 3. **Redirect.** `MachineContext::push_call(async_preempt, resume_pc)`
//!    makes the thread, once the handler returns, enter the stub as if the
//!    interrupted instruction had called it. The stub (emitted by each
//!    backend, frame drawn in its file header) saves every register JIT
//!    code may use, the flags and the vector registers on the goroutine's
//!    own stack and makes an `AsyncPreempt` runtime call; the scheduler
//!    records the time from request to here, and queues the goroutine.
//!    When it is resumed, the stub restores everything and returns to
//!    `resume_pc`: the goroutine continues at the exact instruction.
//! 4. **Retry.** Otherwise the handler returns at once, never blocking,
//!    counting the reason. The monitor sees its request still pending
//!    after the handler has run, and signals again after a back-off that
//!    starts at a few microseconds and doubles; a stop of the world signals
//!    again from its own wait loop (at most every 50 us). A goroutine in a runtime
//!    call needs no second signal: the call honours the request when it
//!    returns. The stats show signals sent per preemption, and retries by
//!    reason.
//! 5. **Not ours.** A preemption signal the runtime did not send (another
//!    process, `raise`) goes on to the handler that was installed before
//!    the runtime's; every arrival is also counted for `notify` (seed bug
//!    9).
//!
//! What can still stop the protocol, and the hang diagnosis names each:
//! the signal blocked on the thread (`ccall block_preempt_signal`, bug 5),
//! its disposition replaced (`ccall ignore_preempt_signal`, bug 13), a
//! goroutine that spends all its time in unsafe regions or foreign code.

pub mod arm;
pub mod decide;
pub mod request;
pub mod signal;
pub mod trap;

use std::sync::atomic::Ordering;

use preempt_jit::ir::PreemptMode;

use crate::sched::g::G;
use crate::sched::{monotonic_nanos, Runtime, P};
use crate::stats::PreemptKind;
use request::{Asked, Request};

/// Asks `g`, running on `p` in the slice numbered `seq`, to stop, for
/// `kind`, through the run's mechanism (the protocol of [`request`]):
/// the request is withdrawn if the slice or the run ends first, and under
/// `async` the signal goes out once it is in effect.
pub fn request(rt: &Runtime, p: &P, g: &G, seq: u64, kind: PreemptKind, now: u64) -> Asked {
    // Time-to-preempt starts here, when the request is made, not when the
    // caller's pass began (a monitor pass may have done other work since
    // it read the clock).
    let req = Request {
        kind,
        at: monotonic_nanos().max(now),
    };
    let stats = &rt.cfg.stats.sched;
    let asked = g.stop.request(
        req,
        || p.slice_seq.load(Ordering::Acquire) == seq && !rt.shutdown.load(Ordering::Acquire),
        &rt.arming.fx(g, stats),
    );
    if let Asked::Armed(_) = asked {
        stats.preempt_requested(kind, rt.cfg.mode);
        rt.cfg
            .tracer
            .preempt_requested(req.at, Some(p.id as u32), g.id, kind, rt.cfg.mode);
        if rt.cfg.mode == PreemptMode::Async {
            // If the handler declines, the requester signals again: the
            // monitor for its quantum requests (with back-off), a stop of
            // the world from its own wait loop.
            rt.signal_p(p);
        }
    }
    asked
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

/// Applies `g`'s request again, through the mode's own mechanism (the
/// protocol's R4), and under `async` signals again. False if the request
/// is no longer in effect.
pub fn rerequest(rt: &Runtime, p: &P, g: &G, why: Again) -> bool {
    let stats = &rt.cfg.stats.sched;
    if !g.stop.rerequest(&rt.arming.fx(g, stats)) {
        return false;
    }
    if why == Again::Backoff {
        stats.re_requested();
    }
    if rt.cfg.mode == PreemptMode::Async {
        rt.signal_p(p);
    }
    true
}

/// Puts the runtime's handler for the preemption signal back (the
/// `ccall restore_preempt_signal` of seed bug 13). With cooperative
/// preemption no handler is installed, so the disposition goes back to the
/// default.
pub fn restore_handler(rt: &Runtime) {
    if rt.cfg.mode == PreemptMode::Async && signal::install(rt.cfg.preempt_signal).is_ok() {
        return;
    }
    // SAFETY: restores the default disposition of a signal the runtime
    // does not otherwise handle in this mode.
    unsafe {
        libc::signal(rt.cfg.preempt_signal, libc::SIG_DFL);
    }
}
