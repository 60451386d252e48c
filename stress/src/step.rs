//! Single-stepping JIT code with the trap flag: the `SIGTRAP` handler, and
//! the hook through which the scheduler switches into a goroutine.
//!
//! The handler is async-signal-safe: it allocates nothing, takes no lock,
//! cannot panic (no indexing, no unwrap) and formats nothing. Everything
//! it reads is reachable from the thread-local worker pointer of
//! [`worker`], as in the preemption signal's handler, and lives as long as
//! the worker.

use preempt_jit::abi::GoroutineContext;
use preempt_signals::context::{call_single_stepped, SINGLE_STEP};
use preempt_signals::handler::Chained;
use preempt_signals::MachineContext;

use std::sync::atomic::Ordering;

use preempt_jit::ir::PreemptMode;

use crate::armer::ArmerJob;
use crate::probe::{Probe, ProbeMode, Stop, Verdict, ARMED, COUNTING, DONE, REQUESTED};
use preempt_runtime::preempt::decide::{decide, Decision, Trigger};
use preempt_runtime::preempt::effect::Fx;
use preempt_runtime::preempt::request::Request;
use preempt_runtime::preempt::worker::{self, MSignal, Shared, Watcher};
use preempt_runtime::sched::monotonic_nanos;
use preempt_runtime::stats::PreemptKind;

/// Switches into a goroutine through `switch_to`, single-stepped when
/// `probe` wants its JIT code stepped: the first trap then comes at
/// `switch_to`'s first instruction, before any of the goroutine's.
pub(crate) fn switch_into(
    probe: &Probe,
    switch_to: extern "C" fn(*mut GoroutineContext) -> u64,
    ctx: *mut GoroutineContext,
) -> u64 {
    let stepping = matches!(probe.mode(), ProbeMode::Step { .. }) && probe.phase() != DONE;
    if SINGLE_STEP && stepping {
        // SAFETY: switch_to is the stub with that signature (a pointer is
        // a word); the trap handler is installed (the harness installs it
        // before it makes a stepping probe), and it stops the stepping
        // when the goroutine leaves JIT code.
        unsafe { call_single_stepped(switch_to as usize, ctx as usize) }
    } else {
        switch_to(ctx)
    }
}

static TRAP: Chained = Chained::new(on_trap);

/// Installs the `SIGTRAP` handler (idempotent).
pub fn install() -> std::io::Result<()> {
    TRAP.install(libc::SIGTRAP)
}

extern "C" fn on_trap(signo: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    Chained::enter(|| {
        // SAFETY: the kernel passes a valid siginfo_t to a SA_SIGINFO handler.
        let traced = !info.is_null() && unsafe { (*info).si_code } == libc::TRAP_TRACE;
        if !traced {
            // SAFETY: called from the handler with the arguments it received.
            unsafe { TRAP.forward(signo, info, uc) };
            return;
        }
        // SAFETY: uc is the kernel's ucontext_t for this delivery.
        let mut mc = unsafe { MachineContext::from_raw(uc) };
        let run = worker::current().and_then(|m| Some((m, m.shared()?)));
        match run.and_then(|(m, s)| Some((m, s, probe_of(s)?))) {
            Some((m, shared, probe)) => trace(m, shared, probe, &mut mc),
            // The harness is the only one to set the trap flag here: a
            // trap nobody wants ends the stepping.
            None => mc.set_single_step(false),
        }
    })
}

/// The run's probe, if the harness watches it.
fn probe_of(s: &Shared) -> Option<&Probe> {
    s.watcher()?.as_any().downcast_ref::<Probe>()
}

/// One single-step trap on worker `m`: the thread is about to execute the
/// instruction at `mc.pc()`.
fn trace(m: &MSignal, shared: &Shared, probe: &Probe, mc: &mut MachineContext<'_>) {
    probe.traps.fetch_add(1, Ordering::Relaxed);
    let ProbeMode::Step {
        target,
        request_at,
        stop_after,
    } = probe.mode()
    else {
        mc.set_single_step(false);
        return;
    };
    if probe.phase() == DONE {
        mc.set_single_step(false);
        return;
    }
    let pc = mc.pc();
    let tables = shared.tables();
    if probe.phase() == ARMED && tables.stub_at(pc).is_some_and(|s| s.name == "preempt_stub") {
        // The armed goroutine took its yield path (a poll's branch, a
        // poll-page fault's redirect, a patched branch's trampoline): it
        // stops here, after the last JIT boundary passed.
        let (boundary, at) = probe.last_boundary();
        probe.redirected_at(at);
        probe.stopped(Stop::Redirected { boundary, pc: at });
        mc.set_single_step(false);
        return;
    }
    if tables.function_at(pc).is_none() {
        // Not a boundary of the program's code. The stubs that lead into
        // it (switch_to, a fresh goroutine's entry, the return half of the
        // async-preemption stub) are stepped through; `rt_call` and
        // anything else leave JIT code, and the thread runs on unstepped
        // until the next switch into a goroutine arms the flag again.
        let entering = tables.stub_at(pc).is_some_and(|s| s.name != "rt_call");
        mc.set_single_step(entering);
        return;
    }
    let n = probe.boundary(pc);
    if probe.phase() == COUNTING {
        if n == request_at {
            if let Some(g) = m.running() {
                // The request, in effect with the guard alone (atomics
                // only, as this is a handler): what async's requester
                // does before it signals, and under the back-edge modes
                // the armer completes it at the target. Its slice is
                // current: this handler interrupts it.
                let req = Request {
                    kind: PreemptKind::Quantum,
                    at: monotonic_nanos(),
                };
                g.stop.request(req, || true, &Fx::guard_only(g));
            }
            probe.phase.store(REQUESTED, Ordering::Release);
        } else if n >= stop_after {
            probe.stopped(Stop::Never);
            mc.set_single_step(false);
            return;
        }
    }
    if probe.phase() == ARMED {
        follow_armed(m, probe, n, mc);
        return;
    }
    if probe.phase() != REQUESTED || n < target {
        return;
    }
    if probe.mechanism() != PreemptMode::Async {
        arm_at_target(m, probe, pc, n, mc);
        return;
    }
    // What the preemption signal's handler would do here, asked at every
    // boundary from the target on (a monitor re-signalling at once) until
    // the request is dealt with.
    let signal = Trigger::Signal { from_runtime: true };
    let d = decide(signal, pc, mc.sp(), tables, m.thread(), shared.points());
    if n == target {
        probe.at_target(pc, Verdict::of(d));
    }
    match d {
        Decision::Redirect { resume_pc } => {
            // SAFETY: decide answered Redirect for this context, on this
            // worker's thread.
            unsafe { worker::redirect(shared, m, mc, resume_pc) };
            probe.redirected_at(pc);
            probe.stopped(Stop::Redirected { boundary: n, pc });
            // The stub saves the flags it finds and restores them at the
            // end: without TF, the rest of the run is not stepped.
            mc.set_single_step(false);
        }
        Decision::Retry(r) => {
            worker::declined(shared, m, r);
            probe.declined_at(pc);
        }
        Decision::Stale | Decision::NotOurs => {
            probe.stopped(Stop::Cooperative { boundary: n });
            mc.set_single_step(false);
        }
    }
}

/// Boundary `n` at `pc` is the target, under a mode other than `async`:
/// the request is made through the mode's own mechanism, as the monitor
/// makes it (`preempt::request`: the flag, then the arming), and the
/// goroutine runs on, stepped, until it stops.
fn arm_at_target(m: &MSignal, probe: &Probe, pc: usize, n: u64, mc: &mut MachineContext<'_>) {
    let Some(g) = m.running() else {
        mc.set_single_step(false);
        return;
    };
    if g.stop.pending().is_none() {
        // The early request (`--request-lead`) was honoured already.
        probe.at_target(pc, Verdict::StoppedBefore);
        probe.stopped(Stop::Cooperative { boundary: n });
        mc.set_single_step(false);
        return;
    }
    let arms = !matches!(probe.mechanism(), PreemptMode::Coop | PreemptMode::Async);
    if arms && !probe.mailbox.post_and_wait(g, ArmerJob::Arm) {
        // The harness reports the run (`Probe::arm_timeouts`).
        probe.stopped(Stop::Never);
        mc.set_single_step(false);
        return;
    }
    probe.at_target(pc, Verdict::Armed);
    probe.phase.store(ARMED, Ordering::Release);
}

/// Boundary `n` of an armed run: the goroutine is still in JIT code, so
/// it has not taken its yield path yet. A request no longer pending means
/// it stopped by itself (a function entry's stack check, a runtime call);
/// under `patch`, a goroutine that has left the function patched for it
/// has the patch moved, as the monitor's follow-up does.
fn follow_armed(m: &MSignal, probe: &Probe, n: u64, mc: &mut MachineContext<'_>) {
    let Some(g) = m.running() else {
        return;
    };
    if g.stop.pending().is_none() {
        probe.stopped(Stop::Cooperative { boundary: n });
        mc.set_single_step(false);
        return;
    }
    if probe.mechanism() == PreemptMode::Patch && g.patched_elsewhere() {
        // A timeout leaves the patch where it was; the goroutine then
        // stops cooperatively or not at all, and the harness reports the
        // timeout.
        probe.mailbox.post_and_wait(g, ArmerJob::Follow);
    }
}
