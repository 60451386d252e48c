//! The signal storm: a thread of the runtime that, while the program runs,
//! asks whatever goroutine runs on each P to stop and sends the preemption
//! signal to its worker, again and again, a few microseconds apart or as
//! fast as delivery allows (a signal still in flight to a worker coalesces
//! with the next, as the monitor's do). It is the monitor with a quantum of
//! zero and no back-off, and the signal goes to the same handler.
//!
//! Each request is a real one ([`Runtime::preempt`]: the protocol of
//! [`preempt_runtime::preempt::request`], through the run's mechanism), so the storm
//! exercises the same transitions as the monitor: under `async` the
//! signal goes out once the request is in effect, and while it stays in
//! effect the storm signals again; under `poll`, `trap` and `patch` the
//! goroutine is armed and stops at its next back-edge; `coop` poisons its
//! guard alone. A request whose slice ends is withdrawn, as the
//! monitor's are; the storm makes the next one a few microseconds later.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use preempt_jit::ir::PreemptMode;

use crate::probe::{Probe, ProbeMode};
use preempt_runtime::g::G;
use preempt_runtime::preempt::request::{Asked, Phase};
use preempt_runtime::sched::{monotonic_nanos, Runtime};
use preempt_runtime::stats::PreemptKind;

/// Starts the storm thread if the run's probe asks for one.
pub(crate) fn start(probe: &Probe, rt: &Arc<Runtime>) -> std::io::Result<()> {
    let ProbeMode::Storm { interval_ns } = probe.mode() else {
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
            let seq = p.slice_seq.load(Ordering::Acquire);
            let id = p.current.load(Ordering::Acquire);
            if id == 0 {
                *seen = None;
                continue;
            }
            if seen.as_ref().is_none_or(|g| g.id != id) {
                *seen = rt.running_on(p, id);
            }
            let Some(g) = seen else {
                continue;
            };
            // A new request, through the mode's mechanism (async: with
            // its signal); or the same again, whose signal went out and
            // was declined, or has not landed yet (then this one
            // coalesces with it).
            let asked = rt.preempt(p, g, seq, PreemptKind::Quantum, monotonic_nanos());
            if rt.signals_preempt() && asked == Asked::Busy(Phase::Armed) {
                rt.signal_p(p);
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
