//! The signal storm: a thread of the runtime that, while the program runs,
//! asks whatever goroutine runs on each P to stop and sends the preemption
//! signal to its worker, again and again, a few microseconds apart or as
//! fast as delivery allows (a signal still in flight to a worker coalesces
//! with the next, as the monitor's do). It is the monitor with a quantum of
//! zero and no back-off, and the signal goes to the same handler.
//!
//! The request is the goroutine's own ([`G::request_preempt`]: the flag
//! and the poisoned guard), not [`preempt::request`]: that one also wakes
//! the monitor to follow the request up, which the storm does itself, and
//! on a small machine the wake-ups slow the storm down more than tenfold.
//! Nor does the storm withdraw a request whose slice ended meanwhile: the
//! goroutine then stops in its next slice, which is what a storm is for.
//!
//! Under the other modes the storm makes its requests through the mode's
//! own mechanism, as the monitor does: `poll`, `trap` and `patch` arm the
//! goroutine ([`Arming::arm`]; a goroutine still armed is left as it is)
//! and it stops at its next back-edge; `coop` makes the request alone.
//!
//! [`G::request_preempt`]: crate::sched::g::G::request_preempt
//! [`Arming::arm`]: crate::preempt::arm::Arming::arm

use std::sync::atomic::Ordering;
use std::sync::Arc;

use preempt_jit::ir::PreemptMode;

use super::probe::ProbeMode;
use crate::sched::g::G;
use crate::sched::{monotonic_nanos, Runtime};
use crate::stats::PreemptKind;

/// Starts the storm thread if the run's probe asks for one.
pub(crate) fn start(rt: &Arc<Runtime>) -> std::io::Result<()> {
    let Some(ProbeMode::Storm { interval_ns }) = rt.cfg.probe.as_ref().map(|p| p.mode()) else {
        return Ok(());
    };
    if rt.module().is_none() || (rt.cfg.mode == PreemptMode::Async && !rt.signals_preempt()) {
        // Interpreted: nothing to stop but at its cooperative points.
        return Ok(());
    }
    let rt = rt.clone();
    std::thread::Builder::new()
        .name("preempt-storm".into())
        .spawn(move || run(&rt, interval_ns))
        .map(drop)
}

fn run(rt: &Runtime, interval_ns: u64) {
    // The goroutine last seen on each P (looking it up takes a lock).
    let mut seen: Vec<Option<Arc<G>>> = vec![None; rt.ps.len()];
    while !rt.shutdown.load(Ordering::Acquire) {
        for (p, seen) in rt.ps.iter().zip(seen.iter_mut()) {
            let id = p.current.load(Ordering::Acquire);
            if id == 0 {
                *seen = None;
                continue;
            }
            if seen.as_ref().is_none_or(|g| g.id != id) {
                *seen = rt.g_by_id(id);
            }
            let Some(g) = seen else {
                continue;
            };
            // A new request, or the same again: the handler declined, or
            // has not run yet (then the signal coalesces with it).
            g.request_preempt(monotonic_nanos(), PreemptKind::Quantum);
            if rt.signals_preempt() {
                rt.signal_p(p);
            } else {
                rt.arming.arm(g, &rt.cfg.stats.sched);
            }
        }
        let until = monotonic_nanos() + interval_ns;
        while monotonic_nanos() < until && !rt.shutdown.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
        if interval_ns == 0 {
            std::thread::yield_now();
        }
    }
}
