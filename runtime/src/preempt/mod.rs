//! Preemption: how a running goroutine is made to stop.
//!
//! The monitor decides *when* (a goroutine has run for its quantum; later,
//! the GC needs the world stopped) and calls [`G::request_preempt`](crate::sched::g::G::request_preempt)
//! (crate::sched::g::G::request_preempt); the mechanism decides *how* the
//! request reaches the goroutine.
//!
//! # Cooperative (`coop`, Go before 1.14, `asyncpreemptoff=1`)
//!
//! A request sets the goroutine's `preempt` flag and poisons its stack
//! guard (the word every JIT function entry compares SP with). The next
//! function entry fails its check and calls the runtime, which sees the
//! poison, restores the guard and moves the goroutine to the global run
//! queue. Runtime operations check the flag after they are served. The
//! interpreter checks it at function entries. A loop with no call and no
//! runtime operation has no preemption point at all: it runs until it
//! ends, whatever the request.

use crate::sched::Runtime;

/// Puts the runtime's handler for the preemption signal back (the
/// `ccall restore_preempt_signal` of seed bug 13). With cooperative
/// preemption no handler is installed, so the disposition goes back to the
/// default.
pub fn restore_handler(rt: &Runtime) {
    // SAFETY: restores the default disposition of a signal the runtime
    // does not otherwise handle in this mode.
    unsafe {
        libc::signal(rt.cfg.preempt_signal, libc::SIG_DFL);
    }
}
