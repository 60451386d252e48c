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
//!
//! # Asynchronous (`async`, Go 1.14+, the default)
//!
//! Everything the cooperative path does, and a signal. The protocol, end
//! to end:
//!
//! 1. **Request.** [`request`] sets the flag and poisons the guard, then
//!    sends the preemption signal (`--preempt-signal`, SIGURG by default)
//!    to the worker thread (M) holding the goroutine's P with `tgkill`.
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

/// Asks `g`, running on `p` in the slice numbered `seq`, to stop, for
/// `kind`. Returns whether a new request went out: false if one was
/// already pending, or if the slice ended while the request was made (it
/// is then withdrawn, so that it does not stop the goroutine's next slice
/// for nothing).
pub fn request(rt: &Runtime, p: &P, g: &G, seq: u64, kind: PreemptKind, now: u64) -> bool {
    // Time-to-preempt starts here, when the flag is set, not when the
    // caller's pass began (a monitor pass may have done other work since
    // it read the clock).
    let now = monotonic_nanos().max(now);
    if !g.request_preempt(now, kind) {
        return false;
    }
    if p.slice_seq.load(Ordering::Acquire) != seq {
        g.clear_preempt();
        return false;
    }
    // Poll word, poll page or patch: after the slice check, so that a
    // request dropped as stale has armed nothing. (The goroutine may stop
    // between the two: the scheduler's clearing of the request disarms
    // what this arms only if it comes after; `begin_slice` of its next
    // slice clears a request that came too late, and disarms it.)
    rt.arming.arm(g, &rt.cfg.stats.sched);
    rt.cfg.stats.sched.preempt_requested(kind, rt.cfg.mode);
    rt.cfg
        .tracer
        .preempt_requested(now, Some(p.id as u32), g.id, kind, rt.cfg.mode);
    p.requested_seq.store(seq, Ordering::Release);
    if rt.cfg.mode == PreemptMode::Async {
        // If the handler declines, the requester signals again: the
        // monitor for its quantum requests (with back-off), a stop of the
        // world from its own wait loop.
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
