//! `--preempt coop` (Go before 1.14, `GODEBUG=asyncpreemptoff=1`): a
//! request poisons the goroutine's stack guard, and the goroutine stops at
//! its next function entry or runtime call.
//!
//! **What it is.** Every JIT function starts by comparing SP (after
//! allocating its frame) with the guard in the goroutine's context
//! (`ctx.stack_guard`), the check that grows the stack. A
//! request stores a value above every SP in that word
//! ([`STACK_GUARD_POISON`](preempt_jit::abi::STACK_GUARD_POISON)), so the next entry's check fails and calls the
//! runtime (`StackCheck`), which finds the request ([`stack_check`]) and
//! stops the goroutine there. Runtime calls (channels, timers, spawn,
//! print, gc, ffi) check for a request when they are served. The
//! interpreter checks at function entries. These points exist in every
//! mode: the other mechanisms add theirs to them ([`super::effect`]
//! applies the guard for all of them).
//!
//! **What it costs.** Nothing beyond the stack check every entry makes
//! anyway: no code in loops. A stop: one store by the requester.
//!
//! **What it cannot stop.** A loop with no call and no runtime operation
//! has no point at all: it runs until it ends, whatever the request (seed
//! bug 1, and the register-hoisted load of the demo). The monitor
//! re-requests after a back-off, and the hang diagnosis says so.

/// What a function entry's failed stack check (a `StackCheck` runtime
/// call) means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackCheck {
    /// The guard is poisoned: a stop request; stop here if it is still
    /// pending.
    Preempt,
    /// SP is below the real guard: the stack grows (by copying, see
    /// [`crate::stack`]), or overflows at its limit.
    Grow,
    /// The check saw a poisoned guard, and the request was withdrawn (or
    /// honoured) before this call: no stop, no overflow.
    Spurious,
}

/// Classifies a failed stack check: the guard's state now, and whether
/// the goroutine's stack is exhausted (asked only when the guard is not
/// poisoned, since SP is then compared with the real guard).
pub fn stack_check(guard_poisoned: bool, exhausted: impl FnOnce() -> bool) -> StackCheck {
    if guard_poisoned {
        StackCheck::Preempt
    } else if exhausted() {
        StackCheck::Grow
    } else {
        StackCheck::Spurious
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_guard_is_a_stop_whatever_the_stack() {
        assert_eq!(stack_check(true, || true), StackCheck::Preempt);
        assert_eq!(
            stack_check(true, || unreachable!("not asked")),
            StackCheck::Preempt
        );
    }

    #[test]
    fn an_unpoisoned_guard_is_a_growth_or_a_request_gone() {
        assert_eq!(stack_check(false, || true), StackCheck::Grow);
        assert_eq!(stack_check(false, || false), StackCheck::Spurious);
    }
}
