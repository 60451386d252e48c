//! The effect of a stop request: what each mechanism does to make a
//! goroutine feel a request, and undoes once the request is over. The
//! protocol that decides *when* ([`super::request`]) calls it through
//! [`Fx`], always from the one party that owns the effect.
//!
//! In every mode the goroutine's stack guard is poisoned, so that its
//! next function entry calls the runtime ([`super::coop`]). Then the
//! mode's own part, each in its file: the poll word ([`super::poll`]),
//! the poll-page pointer or the global page's protection
//! ([`super::trap`]), the back-edges of the function it runs
//! ([`super::patch`]); `async` adds nothing here (the requester sends the
//! signal once the request is in effect, [`super::asynchronous`]).
//!
//! What an owner applied is recorded in the goroutine ([`G::applied`],
//! [`G::patched`]), which only the owner writes, so the undo undoes
//! exactly that: the `mprotect` and patch reference counts balance however
//! requests, re-requests and stops interleave (the request protocol's
//! model checks that property). The costs of arming and disarming are
//! recorded per mode ([`crate::stats::arm_names`]). Nothing here runs in
//! a signal handler, except [`Fx::guard_only`]'s arm (one atomic store),
//! which the stepping harness makes from its trap-flag handler.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use preempt_jit::abi::POLL_PAGE_READY;
use preempt_jit::ir::PreemptMode;
use preempt_jit::module::Module;

use super::patch::{self, Patcher};
use super::poll::Poll;
use super::request::{Effect, Phase, Request};
use super::trap::{Trap, TrapArm};
use crate::g::G;
use crate::stats::monotonic_ns as monotonic_nanos;
use crate::stats::{arm_names, Stats};
use crate::trace::{EffectChange, Tracer};

/// The run's mechanism: its mode and what the mode needs (the trap pages,
/// the patcher). One variant per file of [`super`].
#[derive(Debug)]
pub enum Arming {
    /// `coop` ([`super::coop`]) and `async` ([`super::asynchronous`]): the
    /// guard alone (async's signal is the requester's to send).
    GuardOnly(PreemptMode),
    /// [`super::poll`].
    Poll(Poll),
    /// [`super::trap`].
    Trap(Trap),
    /// [`super::patch`].
    Patch(Patcher),
}

/// Records in [`G::applied`] that the parts `bits` are applied (`on`) or
/// undone. A plain load and store, not a read-modify-write: only the
/// effect's owner writes the word, and ownership passes through the stop
/// request's acquire/release compare-and-swaps, which order these too.
fn note(g: &G, bits: u8, on: bool) {
    let was = g.applied.load(Ordering::Relaxed);
    let now = if on { was | bits } else { was & !bits };
    g.applied.store(now, Ordering::Relaxed);
}

/// [`G::applied`] bits: the parts of the effect an owner applied.
const GUARD: u8 = 1;
/// The poll word (poll), the page pointer (trap page), the global page's
/// count (trap mprotect), the patch of [`G::patched`] (patch).
const MECHANISM: u8 = 2;

impl Arming {
    /// Sets up what `mode` needs for `module`: the trap pages, the patcher
    /// (patching needs compiled code: an interpreted run arms the guard
    /// alone).
    pub fn new(
        mode: PreemptMode,
        trap_arm: TrapArm,
        module: Option<&Module>,
    ) -> io::Result<Arming> {
        Ok(match (mode, module) {
            (PreemptMode::Poll, _) => Arming::Poll(Poll),
            (PreemptMode::Trap, _) => Arming::Trap(Trap::new(trap_arm)?),
            (PreemptMode::Patch, Some(m)) => Arming::Patch(Patcher::new(m)?),
            _ => Arming::GuardOnly(mode),
        })
    }

    /// The run's mode.
    pub fn mode(&self) -> PreemptMode {
        match self {
            Arming::GuardOnly(mode) => *mode,
            Arming::Poll(_) => PreemptMode::Poll,
            Arming::Trap(_) => PreemptMode::Trap,
            Arming::Patch(_) => PreemptMode::Patch,
        }
    }

    /// The patcher of a `--preempt patch` run.
    pub fn patcher(&self) -> Option<&Patcher> {
        match self {
            Arming::Patch(p) => Some(p),
            _ => None,
        }
    }

    /// What a fresh goroutine's `ctx.poll_page` points at.
    pub fn initial_poll_page(&self) -> u64 {
        match self {
            Arming::Trap(t) => t.initial_poll_page(),
            _ => &POLL_PAGE_READY as *const AtomicU64 as u64,
        }
    }

    /// The effect of a request on `g` in this run's mode, its costs
    /// recorded in `stats` and each arm and disarm traced.
    pub fn fx<'a>(&'a self, g: &'a G, stats: &'a Stats, tracer: &'a Tracer) -> Fx<'a> {
        Fx {
            arming: Some(self),
            g,
            stats: Some(stats),
            tracer: Some(tracer),
        }
    }

    /// What the mode's own part of the effect is, as the trace names it.
    fn effect_name(&self) -> &'static str {
        match self {
            Arming::GuardOnly(_) => "guard",
            Arming::Poll(_) => "poll word",
            Arming::Trap(t) if t.arm == TrapArm::Page => "trap page",
            Arming::Trap(_) => "global page",
            Arming::Patch(_) => "patch",
        }
    }

    /// The mechanism's part of the effect, applied (or moved, for a
    /// patch the goroutine has left). Returns whether anything was done.
    /// The book-keeping comes before the store that makes the effect
    /// visible: the goroutine reacts within nanoseconds (its stop touches
    /// the same lines), and the arm should not wait on it.
    fn apply(&self, g: &G) -> bool {
        let Some(ctx) = g.jit_context() else {
            return false;
        };
        let first = g.applied.load(Ordering::Relaxed) & MECHANISM == 0;
        let mark = || note(g, MECHANISM, true);
        match self {
            Arming::Poll(p) => {
                mark();
                p.apply(ctx);
                true
            }
            Arming::Trap(t) => t.apply(ctx, first, mark),
            Arming::Patch(p) => patch::apply(p, g, ctx, mark),
            Arming::GuardOnly(_) => false,
        }
    }

    /// Undoes [`Arming::apply`]; whether there was anything to undo.
    fn unapply(&self, g: &G) -> bool {
        let Some(ctx) = g.jit_context() else {
            return false;
        };
        if g.applied.load(Ordering::Acquire) & MECHANISM == 0 {
            return false;
        }
        match self {
            Arming::Poll(p) => p.unapply(ctx),
            Arming::Trap(t) => t.unapply(ctx),
            Arming::Patch(p) => patch::unapply(p, g),
            Arming::GuardOnly(_) => {}
        }
        note(g, MECHANISM, false);
        true
    }

    /// For the hang diagnosis: what the request protocol and the arming
    /// did to `g` in this run's mode (None in `coop` and `async`, which
    /// arm nothing but the guard).
    pub fn describe(&self, g: &G, module: &Module) -> Option<String> {
        let ctx = g.jit_context()?;
        let (phase, _) = g.stop.load();
        let applied = g.applied.load(Ordering::Acquire) & MECHANISM != 0;
        let claimed = match (phase, applied) {
            (Phase::Idle, _) => "no request",
            (Phase::Arming, _) => "a request being armed",
            (Phase::Armed, true) => "armed",
            (Phase::Armed, false) => "armed, but nothing applied (a guard-only request)",
            (Phase::Ending, _) => "a request ending",
        };
        Some(match self {
            Arming::Poll(p) => p.describe(claimed, ctx),
            Arming::Trap(t) => t.describe(claimed, ctx),
            Arming::Patch(p) => patch::describe(p, claimed, g, ctx, module),
            Arming::GuardOnly(_) => return None,
        })
    }
}

/// A request's effect on one goroutine: the [`Effect`] the protocol calls.
#[derive(Debug)]
pub struct Fx<'a> {
    /// None: the guard only.
    arming: Option<&'a Arming>,
    g: &'a G,
    /// Where the costs go (None: not recorded).
    stats: Option<&'a Stats>,
    /// Where arms and disarms are traced (None: never).
    tracer: Option<&'a Tracer>,
}

impl<'a> Fx<'a> {
    /// The guard alone, whatever the mode: a request made where the
    /// mechanism's part cannot be (the stepping harness's trap-flag
    /// handler), which a later arm completes. Async-signal-safe.
    pub fn guard_only(g: &'a G) -> Fx<'a> {
        Fx {
            arming: None,
            g,
            stats: None,
            tracer: None,
        }
    }

    /// Traces an arm or disarm that began at `since`; `did` says whether
    /// the mode's own part was applied or undone (else the guard alone).
    fn trace(&self, arm: bool, again: bool, did: bool, since: u64) {
        let (Some(t), Some(a)) = (self.tracer, self.arming) else {
            return;
        };
        if !t.is_enabled() {
            return;
        }
        let patch = a.patcher().is_some() && did && arm;
        let function = patch
            .then(|| self.g.patched.load(Ordering::Acquire))
            .filter(|&f| f != crate::g::NOT_PATCHED)
            .map(|f| f as u32);
        t.effect(EffectChange {
            at: since,
            g: self.g.id,
            mech: a.mode(),
            arm,
            again,
            effect: if did { a.effect_name() } else { "guard" },
            function,
            cost_ns: monotonic_nanos().saturating_sub(since),
        });
    }

    fn record(&self, disarm: bool, since: u64) {
        let (Some(a), Some(stats)) = (self.arming, self.stats) else {
            return;
        };
        if let Some((arm, unarm)) = arm_names(a.mode()) {
            let name = if disarm { unarm } else { arm };
            stats.record(name, monotonic_nanos().saturating_sub(since));
        }
    }
}

impl Effect for Fx<'_> {
    fn arm(&self, _: Request, again: bool) {
        // The mechanism first, timed as the arm's cost (coop's and async's
        // guard alone is not timed, as before), then the guard.
        let timed = self.stats.is_some() || self.tracer.is_some();
        let t0 = if timed { monotonic_nanos() } else { 0 };
        let mut did = false;
        if let Some(a) = self.arming {
            did = a.apply(self.g);
            if did {
                self.record(false, t0);
            }
        }
        note(self.g, GUARD, true);
        self.g.poison_guard();
        self.trace(true, again, did, t0);
    }

    fn disarm(&self, _: Request) {
        let timed = self.stats.is_some() || self.tracer.is_some();
        let t0 = if timed { monotonic_nanos() } else { 0 };
        let undone = self.arming.is_some_and(|a| a.unapply(self.g));
        if undone {
            self.record(true, t0);
        }
        self.g.restore_guard();
        note(self.g, GUARD, false);
        self.trace(false, false, undone, t0);
    }
}
