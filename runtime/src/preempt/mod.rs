//! Preemption: how a running goroutine is made to stop.
//!
//! The monitor decides *when* (a goroutine has run for its quantum) and so
//! does the GC (it needs the world stopped); both call [`request`], and the
//! mechanism decides *how* the request reaches the goroutine.
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

use std::sync::atomic::Ordering;

use crate::sched::g::G;
use crate::sched::{Runtime, P};
use crate::stats::PreemptKind;

/// Asks `g`, running on `p` in the slice numbered `seq`, to stop, for
/// `kind`. Returns whether a new request went out: false if one was
/// already pending, or if the slice ended while the request was made (it
/// is then withdrawn, so that it does not stop the goroutine's next slice
/// for nothing).
pub fn request(rt: &Runtime, p: &P, g: &G, seq: u64, kind: PreemptKind, now: u64) -> bool {
    if !g.request_preempt(now) {
        return false;
    }
    if p.slice_seq.load(Ordering::Acquire) != seq {
        g.clear_preempt();
        return false;
    }
    rt.cfg.stats.sched.preempt_requested(kind, rt.cfg.mode);
    rt.cfg
        .tracer
        .preempt_requested(now, Some(p.id as u32), g.id, kind, rt.cfg.mode);
    true
}

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
