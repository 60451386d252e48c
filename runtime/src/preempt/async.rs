//! `--preempt async` (the default; Go 1.14+): the requester sends the
//! preemption signal to the worker thread running the goroutine, and the
//! handler redirects the goroutine into the preemption stub wherever the
//! compiler's tables say it is safe.
//!
//! **What it is.** Go's asynchronous preemption: no poll anywhere in the
//! code; the request's effect is the poisoned stack guard alone (the
//! cooperative point at every function entry, [`super::coop`]), and the
//! signal reaches a goroutine in any loop.
//!
//! **What it costs.** Nothing while no stop is wanted (the tables are
//! metadata, not code). A stop: a `tgkill`, the kernel's signal delivery
//! (an IPI when the thread runs on another CPU), the handler and its
//! `sigreturn`, then the stub's save of every register and a runtime call.
//! The stats split the time-to-preempt into the delivery (request to
//! redirect) and the way back (redirect to the scheduler).
//!
//! **What it cannot stop.** A goroutine whose thread has the signal
//! blocked (`ccall block_preempt_signal`, seed bug 5) or whose disposition
//! was replaced (`ccall ignore_preempt_signal`, bug 13); one that spends
//! all its time in unsafe regions or foreign code (each declined redirect
//! is counted by reason, and the requester signals again after a
//! back-off).
//!
//! **The protocol, end to end.**
//!
//! 1. **Request.** [`super::request`] makes the request (in effect: the guard
//!    poisoned), then sends the preemption signal (`--preempt-signal`,
//!    SIGURG by default) to the worker thread (M) holding the goroutine's
//!    P with `tgkill`.
//!    A per-M `pending` flag coalesces sends: while one signal is in
//!    flight no other is sent, and the handler clears the flag when it
//!    runs. A per-M pair of counters (`sent`, `seen`) says whether the
//!    handler has run since the last send.
//! 2. **Decision.** The handler (here) reads the interrupted PC and
//!    SP through `MachineContext` and asks [`decide`], a pure
//!    function of what woke it, the PC, the SP, the compiler's tables and the running
//!    goroutine, with its conditions numbered in its documentation: the
//!    thread runs this goroutine's JIT code (not the scheduler, a runtime
//!    call, foreign code or a stub, so no runtime lock is held), there is
//!    room on the goroutine stack for the stub, and the PC is not in an
//!    unsafe region (frame set-up and tear-down, runtime-call transitions,
//!    scratch-register use, atomic sequences, write barriers); a
//!    restartable region resumes at its start.
//! 3. **Redirect.** `MachineContext::push_call(preempt_stub, resume_pc)`
//!    makes the thread, once the handler returns, enter the stub as if the
//!    interrupted instruction had called it. The stub (emitted by each
//!    backend, frame drawn in its file header) saves every register JIT
//!    code may use, the flags and the vector registers on the goroutine's
//!    own stack and makes an `PreemptStub` runtime call; the scheduler
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
//!    the runtime's ([`passes_on`]); every arrival is also counted for `notify` (seed bug
//!    9).
//!
//! What can still stop the protocol, and the hang diagnosis names each:
//! the signal blocked on the thread (`ccall block_preempt_signal`, bug 5),
//! its disposition replaced (`ccall ignore_preempt_signal`, bug 13), a
//! goroutine that spends all its time in unsafe regions or foreign code.
//!
//! The handler allocates nothing, takes no lock, cannot panic (no
//! indexing, no unwrap) and formats nothing. When the run is traced or its
//! stops logged, it leaves its decision in its worker's ring of atomics
//! for a normal thread to trace ([`super::record`]).

use std::sync::atomic::Ordering;

use preempt_jit::ir::PreemptMode;
use preempt_jit::module::Arch;
use preempt_signals::handler::Chained;
use preempt_signals::MachineContext;

use super::decide::{
    decide, passes_on, Decision, RetryReason, Thread, Trigger, UnsafePoints, NO_TABLES,
};
use super::worker::{current, declined, redirect, MSignal};
use crate::trace::HandlerTrigger;

static SIGNAL: Chained = Chained::new(on_signal);

/// Installs the handler for `signo` (idempotent: the disposition found
/// the first time is the one signals that are not ours are passed to).
///
/// Where the hand-off exists, the handler runs with its signal unblocked
/// (`SA_NODEFER`): the hand-off leaves the handler without returning, and
/// with the signal not blocked while the handler runs there is no mask to
/// put back, a system call (0.45-1.1 us of the stop at the 10 ms quantum
/// on this kind of VM, the dearest step of the hand-off). A preemption
/// signal that arrives while the handler runs interrupts it; the nested
/// handler finds a PC that is not a goroutine's (the handler's own code,
/// or the hand-off's stub) and declines, as the same signal delivered
/// when it was unblocked used to. Everything the handler touches is safe
/// to re-enter: atomics, its worker's log (which drops a nested record),
/// the quantum timer's word.
///
/// Nesting is bounded: a handler that interrupted another returns with
/// the signal blocked (added to the mask its `sigreturn` restores), so
/// the one it interrupted runs on undisturbed; that one's `sigreturn`
/// puts the thread's mask back, and a hand-off unblocks the signal itself
/// (then, and only then, with a system call). A handler cannot know it is
/// nested before its first instructions have run: under qemu-user, where
/// those take long, a signal storm nested handlers in that window until
/// the alternate stack overflowed, which is why the handler is installed
/// so only where it can hand off (never an emulated backend here).
///
/// This is the only place the handler is installed (`restore_handler`
/// comes here too), so wherever a hand-off runs, its handler was
/// installed with `SA_NODEFER`.
pub fn install(signo: libc::c_int) -> std::io::Result<()> {
    if Arch::host().is_some_and(Arch::has_handoff) {
        SIGNAL.install_reentrant(signo)
    } else {
        SIGNAL.install(signo)
    }
}

/// Whether the runtime's handler is the one installed for `signo`.
pub fn installed(signo: libc::c_int) -> bool {
    SIGNAL.is_installed(signo)
}

/// Puts the runtime's handler for the preemption signal back (the
/// `ccall restore_preempt_signal` of seed bug 13). With another mode than
/// `async` no handler is installed, so the disposition goes back to the
/// default.
pub fn restore_handler(mode: PreemptMode, signo: libc::c_int) {
    if mode == PreemptMode::Async && install(signo).is_ok() {
        return;
    }
    // SAFETY: restores the default disposition of a signal the runtime
    // does not otherwise handle in this mode.
    unsafe {
        libc::signal(signo, libc::SIG_DFL);
    }
}

extern "C" fn on_signal(signo: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // Nesting bounded (see `install`); a hand-off does not come back here.
    // SAFETY: uc is the kernel's context for this delivery.
    unsafe {
        Chained::enter_reentrant(signo, uc, || {
            // SAFETY: the kernel's arguments to this handler.
            on_signal_body(signo, info, uc)
        })
    }
}

/// The preemption signal's handler, its nesting aside (see [`install`]).
///
/// # Safety
///
/// Called from the handler with the kernel's arguments.
unsafe fn on_signal_body(signo: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to a SA_SIGINFO handler.
    let from_runtime = unsafe { sent_by_us(info) };
    // SAFETY: as above.
    if unsafe { super::qtimer::is_quantum_timer(info) } {
        if let Some(m) = current().filter(|m| !uc.is_null() && m.qtimer.exists()) {
            // SAFETY: on the worker's thread, with the kernel's uc.
            unsafe { timer_fired(m, uc) };
        }
        // Else a timer that fired after its worker stopped running
        // goroutines: nobody's to pass on (the disposition replaced
        // may be SIGUSR1's default, which ends the process).
        return;
    }
    let trigger = Trigger::Signal { from_runtime };
    let pass_on = match current() {
        // SAFETY: on the worker's thread, with the kernel's uc.
        Some(m) if !uc.is_null() => unsafe { handle(m, trigger, uc) },
        _ => passes_on(trigger, Decision::NotOurs),
    };
    if pass_on {
        // SAFETY: called from the handler with the arguments it received.
        unsafe { SIGNAL.forward(signo, info, uc) };
    }
}

/// # Safety
///
/// `info` is the kernel's siginfo_t for this delivery.
unsafe fn sent_by_us(info: *mut libc::siginfo_t) -> bool {
    if info.is_null() {
        return false;
    }
    // SAFETY: valid per the caller; si_pid is meaningful for SI_TKILL.
    unsafe { (*info).si_code == libc::SI_TKILL && (*info).si_pid() == libc::getpid() }
}

/// Worker `m`'s quantum timer fired (see [`super::qtimer`]): re-arms it
/// for the current slice's deadline if that is still ahead, else stops the
/// goroutine where it may, else re-arms a short retry.
///
/// # Safety
///
/// Called from the handler on the thread `m` belongs to, with the kernel's
/// `uc`.
unsafe fn timer_fired(m: &MSignal, uc: *mut libc::c_void) {
    let Some(shared) = m.shared() else {
        return;
    };
    // A preemption signal like the monitor's: `notify` sees it too.
    shared.arrived.fetch_add(1, Ordering::AcqRel);
    let start = m.qtimer.fired();
    let (Some(quantum), Some(g)) = (shared.quantum_timer(), m.running()) else {
        // Between goroutines: the timer lapses until the next slice.
        return;
    };
    shared.stats().count(super::qtimer::FIRED);
    let now = crate::stats::monotonic_ns();
    let deadline = start.saturating_add(quantum);
    if now < deadline {
        if m.qtimer.arm_at(deadline) {
            shared.stats().count(super::qtimer::ARMS);
        }
        return;
    }
    // SAFETY: uc is the kernel's ucontext_t for this delivery.
    let mut mc = unsafe { MachineContext::from_raw(uc) };
    let pc = mc.pc();
    // The quantum is over: a stop is wanted, request or not.
    let thread = match m.thread() {
        Thread::Running(mut t) => {
            t.requested = true;
            Thread::Running(t)
        }
        other => other,
    };
    let d = decide(
        Trigger::Signal { from_runtime: true },
        pc,
        mc.sp(),
        shared.tables(),
        thread,
        shared.points(),
    );
    if shared.records() {
        m.log.record(now, g.id, HandlerTrigger::Signal, d, pc);
    }
    match d {
        Decision::Redirect { resume_pc } => {
            g.timer_stop_at.store(deadline, Ordering::Release);
            g.redirected_at.store(now, Ordering::Release);
            g.redirected_pc.store(pc as u64, Ordering::Relaxed);
            // SAFETY: decide said Redirect for this context, on m's thread.
            unsafe { stop(shared, m, g, &mut mc, resume_pc) };
        }
        Decision::Retry(r) => {
            m.note_retry_pc(pc);
            declined(shared, m, r);
            // Inside JIT code the goroutine reaches a safe point within
            // instructions: retry soon. Outside it (a runtime call, which
            // ends or parks the slice by itself, or foreign code, which may
            // run for seconds and which no signal can stop) the timer is
            // left unarmed: re-armed there, each expiry's handler could
            // end after the next expiry was due, so that the thread never
            // ran its own code again (a foreign `sleep` under a 20 us
            // quantum never ended). The monitor's backstop asks a slice
            // that runs on for two quanta.
            if r != RetryReason::NotJitCode && m.qtimer.arm_at(now + super::qtimer::RETRY_NS) {
                shared.stats().count(super::qtimer::ARMS);
            }
        }
        Decision::Stale | Decision::NotOurs => {}
    }
}

/// Stops `g`, which `m` runs, at `resume_pc`: by the hand-off where the
/// run has one (never returning), else by a redirect into the stub.
///
/// # Safety
///
/// Called from a handler on `m`'s thread with its kernel context `mc`,
/// after `decide` answered `Redirect { resume_pc }` for it.
unsafe fn stop(
    shared: &super::worker::Shared,
    m: &MSignal,
    g: &crate::g::G,
    mc: &mut MachineContext<'_>,
    resume_pc: usize,
) {
    let pc = mc.pc();
    if let Some(h) = shared.handoff() {
        let ctx = m.context();
        if let Some(st) = mc
            .x86_64_state()
            .filter(|_| !ctx.is_null() && !mc.single_stepping())
        {
            // SAFETY: decide said Redirect for this context; ctx is the
            // context of g, which this thread runs.
            unsafe { hand_off(shared, m, g, mc, st, resume_pc, h, ctx) }
        }
    }
    // SAFETY: decide said Redirect for this context.
    unsafe { redirect(shared, m, mc, resume_pc) };
    if let Some(w) = shared.watcher() {
        w.redirected_at(pc);
    }
    g.left_handler_at
        .store(crate::stats::monotonic_ns(), Ordering::Release);
}

/// Acts on the signal on worker `m`; returns whether it passes on.
///
/// # Safety
///
/// Called from the handler on the thread `m` belongs to, with the kernel's
/// `uc`.
unsafe fn handle(m: &MSignal, trigger: Trigger, uc: *mut libc::c_void) -> bool {
    if trigger == (Trigger::Signal { from_runtime: true }) {
        m.pending.store(false, Ordering::Release);
        m.seen
            .store(m.sent.load(Ordering::Acquire), Ordering::Release);
    }
    let shared = m.shared();
    if let Some(s) = shared {
        s.arrived.fetch_add(1, Ordering::AcqRel);
    }
    // SAFETY: uc is the kernel's ucontext_t for this delivery.
    let mut mc = unsafe { MachineContext::from_raw(uc) };
    let pc = mc.pc();
    let d = decide(
        trigger,
        pc,
        mc.sp(),
        shared.map_or(&NO_TABLES, |s| s.tables()),
        if shared.is_some() {
            m.thread()
        } else {
            Thread::NotAnM
        },
        shared.map_or(UnsafePoints::Honour, |s| s.points()),
    );
    let Some(shared) = shared else {
        return passes_on(trigger, d);
    };
    let g = m.running();
    let redirect_now = matches!(d, Decision::Redirect { .. });
    // clock_gettime is async-signal-safe; one reading serves the redirect
    // and the record.
    let now = if redirect_now || shared.records() {
        crate::stats::monotonic_ns()
    } else {
        0
    };
    if shared.records() {
        let id = g.map_or(0, |g| g.id);
        m.log.record(now, id, HandlerTrigger::Signal, d, pc);
    }
    match d {
        Decision::Redirect { resume_pc } => match g {
            Some(g) => {
                g.redirected_at.store(now, Ordering::Release);
                g.redirected_pc.store(pc as u64, Ordering::Relaxed);
                // SAFETY: decide said Redirect for this context.
                unsafe { stop(shared, m, g, &mut mc, resume_pc) };
            }
            None => {
                // SAFETY: decide said Redirect for this context.
                unsafe { redirect(shared, m, &mut mc, resume_pc) };
                if let Some(w) = shared.watcher() {
                    w.redirected_at(pc);
                }
            }
        },
        Decision::Retry(r) => {
            m.note_retry_pc(pc);
            declined(shared, m, r);
            if let Some(w) = shared.watcher() {
                w.declined_at(pc);
            }
        }
        Decision::Stale => super::worker::found_nothing(m),
        Decision::NotOurs => {}
    }
    passes_on(trigger, d)
}

/// How the preemption signal's handler stops a goroutine it may stop
/// (`--async-stop`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum AsyncStop {
    /// It writes the preemption stub's frame itself and leaves for the
    /// scheduler without returning (x86-64; elsewhere, as `Redirect`).
    #[default]
    Handoff,
    /// It redirects the thread into the preemption stub and returns, as
    /// Go's handler does: `sigreturn`, then the stub's saves and its
    /// runtime call.
    Redirect,
}

impl AsyncStop {
    pub fn name(self) -> &'static str {
        match self {
            AsyncStop::Handoff => "handoff",
            AsyncStop::Redirect => "redirect",
        }
    }
}

/// Counted once per stop the handler handed to the scheduler itself.
pub const HANDED_OFF: &str = "async stops handed off by the handler";

/// Stops `g` from the handler: writes the preemption stub's frame and the
/// context as the stub and its runtime call would (see
/// `preempt_jit::isa::x64::handoff`), and leaves for the scheduler. Never
/// returns: the signal frame is abandoned on the alternate stack.
///
/// # Safety
///
/// Called from the preemption signal's handler on `m`'s thread, with the
/// kernel's context `mc`, after `decide` answered `Redirect { resume_pc }`
/// for it; `ctx` is the context of `g`, the goroutine `m` runs; `h` is the
/// module's hand-off; `st` is `mc`'s registers.
#[allow(clippy::too_many_arguments)]
unsafe fn hand_off(
    shared: &super::worker::Shared,
    m: &MSignal,
    g: &crate::g::G,
    mc: &mut MachineContext<'_>,
    mut st: preempt_signals::X86State,
    resume_pc: usize,
    h: preempt_jit::module::Handoff,
    ctx: *mut preempt_jit::abi::GoroutineContext,
) -> ! {
    use preempt_jit::isa::x64::handoff::{write_frame, Interrupted};
    let pc = mc.pc();
    super::worker::redirected(m);
    if let Some(w) = shared.watcher() {
        // The harness's fault injection changes the context, which the
        // frame is then written from.
        w.after_redirect(mc);
        w.redirected_at(pc);
    }
    shared.stats().count(HANDED_OFF);
    // What the watcher changed goes into the frame.
    if let Some(after) = mc.x86_64_state() {
        st = after;
    }
    let regs = Interrupted {
        gpr: st.gpr,
        rflags: st.rflags,
        xmm: st.xmm,
    };
    // SAFETY: decide checked PREEMPT_STUB_STACK (at least the frame's
    // bytes) of free goroutine stack below the interrupted SP; ctx is g's
    // context, which nothing else touches while g runs on this thread.
    unsafe { write_frame(&mut *ctx, &regs, resume_pc as u64, h.stub_return as u64) };
    // What sigreturn would do for the mask. A hand-off's handler runs with
    // its signal unblocked (see `install`): there is nothing to do, unless
    // a nested handler left the signal blocked. This handler is leaving:
    // the next signal is not nested.
    if Chained::leave_without_return().is_some() {
        mc.restore_mask();
    }
    g.left_handler_at
        .store(crate::stats::monotonic_ns(), Ordering::Release);
    // SAFETY: `leave` is the module's `leave_handler` stub, which takes the
    // context in rdi and never returns; the context now holds what
    // `rt_call` would have left in it, and its scheduler SP is the one
    // `switch_to` saved when this thread entered g.
    let leave: extern "C" fn(*mut preempt_jit::abi::GoroutineContext) -> ! =
        unsafe { std::mem::transmute::<usize, _>(h.leave) };
    leave(ctx)
}
