//! `--preempt poll`: every back-edge tests the goroutine's poll word; a
//! request sets it, and the next back-edge calls the preemption stub.
//!
//! **What it is.** A software safepoint poll on the loop's back-edge,
//! as Go before 1.14 considered ("loop preemption", rejected for its
//! cost) and as many JITs use: a load of `ctx.poll`, a compare and a
//! branch not taken, before the loop's jump.
//!
//! **What it costs.** In the loop: one load, one compare and one branch
//! per iteration (`bench mechanisms` measures it against `coop`). A stop:
//! one store by the requester; the goroutine sees it at its next
//! back-edge, nanoseconds later if it is looping.
//!
//! **What it cannot stop.** Code without a back-edge (straight-line code
//! reaches a function entry, whose stack check is the cooperative point);
//! foreign code and runtime calls (a runtime call honours the request when
//! it returns).

use std::sync::atomic::Ordering;

use preempt_jit::abi::GoroutineContext;

/// The mechanism of a `--preempt poll` run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Poll;

impl Poll {
    /// Sets the goroutine's poll word.
    pub(super) fn apply(&self, ctx: &GoroutineContext) {
        ctx.poll.store(1, Ordering::Release);
    }

    /// Clears it.
    pub(super) fn unapply(&self, ctx: &GoroutineContext) {
        ctx.poll.store(0, Ordering::Release);
    }

    /// For the hang diagnosis.
    pub(super) fn describe(&self, claimed: &str, ctx: &GoroutineContext) -> String {
        format!(
            "{claimed}; its poll word is {}",
            if ctx.poll.load(Ordering::Acquire) != 0 {
                "set: its next back-edge calls the yield stub"
            } else {
                "clear"
            }
        )
    }
}
