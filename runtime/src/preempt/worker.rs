//! What a handler that interrupts a worker thread knows about it, and the
//! redirect into the preemption stub that every handler makes.
//!
//! Everything a handler touches is reachable without a lock from a
//! thread-local pointer to the worker's [`MSignal`], which points to the
//! run's [`Shared`] state; both live as long as the worker thread runs.
//! The handlers (the preemption signal's, [`super::asynchronous`]; the
//! poll-page fault's, [`super::trap`]; the stepping harness's) read the
//! interrupted PC and SP, ask [`super::decide::decide`], and either
//! [`redirect`] the thread into the stub or record why not
//! ([`declined`]). Nothing here allocates, takes a lock, panics or
//! formats.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use preempt_jit::abi::{GoroutineContext, STACK_GUARD_POISON};
use preempt_jit::code::CodeTables;
use preempt_jit::module::{Handoff, StubAddresses};
use preempt_signals::handler;
use preempt_signals::MachineContext;

use super::asynchronous::AsyncStop;
use super::decide::{Goroutine, RetryReason, Thread, UnsafePoints};
use super::qtimer::ThreadTimer;
use super::record::HandlerLog;
use crate::g::G;
use crate::stats::Stats;

/// What a harness watching the run (the every-instruction harness's
/// probe) learns from the handlers. Every method is called inside a
/// signal handler: implementations stay async-signal-safe (atomics only:
/// no allocation, lock, panic or formatting).
pub trait Watcher: Sync {
    /// A handler redirected a goroutine interrupted at `pc`.
    fn redirected_at(&self, pc: usize);
    /// A handler declined to redirect at `pc`.
    fn declined_at(&self, pc: usize);
    /// Called on every redirect, after `push_call`: where a harness
    /// injects a fault to prove that its checks catch one.
    fn after_redirect(&self, mc: &mut MachineContext<'_>);
    /// The watcher itself, for a handler of the harness's own (the
    /// stepping harness's) to find its concrete type.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// What every worker's handler needs about the run.
#[derive(Debug)]
pub struct Shared {
    /// The compiled module's tables (absolute addresses).
    tables: *const CodeTables,
    /// The `preempt_stub` stub.
    stub: usize,
    /// The handler's hand-off to the scheduler, where the module has one.
    handoff: Option<Handoff>,
    /// The quantum (ns) when each worker's own timer ends its slices.
    quantum_timer: Option<u64>,
    points: UnsafePoints,
    /// Every preemption signal that arrived at a worker, sent by the
    /// runtime or not (what `notify` forwards).
    pub arrived: AtomicU64,
    /// The handlers leave their decisions in their worker's
    /// [`MSignal::log`] (the run is traced or its stops logged).
    records: bool,
    stats: *const Stats,
    /// The harness watching this run, if any.
    watcher: Option<*const dyn Watcher>,
}

// SAFETY: the raw pointers are to the module's tables, the run's stats and
// its watcher, which outlive every worker (the runtime holds them); they are
// only read, or updated through atomics.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

/// The run's settings the handlers follow.
#[derive(Clone, Copy, Debug)]
pub struct HandlerSettings {
    /// How a stop leaves the handler (`--async-stop`).
    pub stop: AsyncStop,
    /// The quantum (ns) when each worker's own timer ends its slices.
    pub quantum_timer: Option<u64>,
    pub points: UnsafePoints,
    /// The handlers record their decisions (see [`Shared::records`]).
    pub records: bool,
}

impl Shared {
    /// # Safety
    ///
    /// `tables`, `stats` and `watcher` must outlive every worker thread that
    /// points to this state.
    pub unsafe fn new(
        tables: &CodeTables,
        stubs: &StubAddresses,
        how: HandlerSettings,
        stats: &Stats,
        watcher: Option<&dyn Watcher>,
    ) -> Shared {
        Shared {
            tables,
            stub: stubs.preempt_stub,
            handoff: stubs.handoff.filter(|_| how.stop == AsyncStop::Handoff),
            quantum_timer: how.quantum_timer,
            points: how.points,
            records: how.records,
            arrived: AtomicU64::new(0),
            stats,
            watcher: watcher.map(|w| {
                let w: *const (dyn Watcher + '_) = w;
                // SAFETY: only the pointer's lifetime bound changes; the
                // caller keeps the watcher alive as long as this state
                // (see above), and it is dereferenced only meanwhile.
                unsafe { std::mem::transmute::<*const (dyn Watcher + '_), *const dyn Watcher>(w) }
            }),
        }
    }

    /// The compiled module's tables.
    pub fn tables(&self) -> &CodeTables {
        // SAFETY: they outlive the workers (see `new`), and so every
        // reference to this state.
        unsafe { &*self.tables }
    }

    /// The run's statistics.
    pub fn stats(&self) -> &Stats {
        // SAFETY: they outlive the workers (see `new`).
        unsafe { &*self.stats }
    }

    /// The handler's hand-off, if the module has one.
    pub fn handoff(&self) -> Option<Handoff> {
        self.handoff
    }

    /// The quantum (ns), when each worker's own timer ends its slices.
    pub fn quantum_timer(&self) -> Option<u64> {
        self.quantum_timer
    }

    /// Whether unsafe regions are honoured in this run.
    pub fn points(&self) -> UnsafePoints {
        self.points
    }

    /// Whether the handlers record their decisions (see
    /// [`super::record`]): a plain flag, the one test a handler makes
    /// when nothing observes the run.
    #[inline]
    pub fn records(&self) -> bool {
        self.records
    }

    /// The stress harness watching this run, if any.
    pub fn watcher(&self) -> Option<&dyn Watcher> {
        // SAFETY: as in `tables`.
        self.watcher.map(|w| unsafe { &*w })
    }
}

/// A worker's side of the signal protocol.
#[derive(Debug, Default)]
pub struct MSignal {
    /// The run's state; null for a runtime without asynchronous
    /// preemption.
    shared: AtomicPtr<Shared>,
    /// The context of the JIT goroutine this worker runs (null between
    /// goroutines). Written only by the worker itself, so the handler,
    /// which interrupts that same thread, never races with it.
    ctx: AtomicPtr<GoroutineContext>,
    /// The goroutine whose context `ctx` is (null with it).
    g: AtomicPtr<G>,
    /// A signal was sent and the handler has not run yet: further sends
    /// coalesce with it.
    pub pending: AtomicBool,
    /// Signals sent to this worker, and the count the handler last saw.
    pub sent: AtomicU64,
    pub seen: AtomicU64,
    /// Why the handler last declined to redirect (`RetryReason::index`
    /// plus one; 0: it stopped the goroutine; `FOUND_NOTHING`: there was
    /// nothing to stop).
    last_retry: AtomicU8,
    /// The PC at which the handler last declined.
    last_retry_pc: AtomicUsize,
    /// The handlers' decisions, for the tracer (see [`super::record`]).
    pub log: HandlerLog,
    /// This worker's quantum timer (`--quantum-timer thread`).
    pub qtimer: ThreadTimer,
}

impl MSignal {
    pub fn set_shared(&self, s: &Shared) {
        self.shared
            .store((s as *const Shared).cast_mut(), Ordering::Release);
    }

    /// The worker starts running JIT goroutine `g`, whose context is
    /// `ctx`, or stops (both null).
    pub fn set_running(&self, ctx: *mut GoroutineContext, g: *const G) {
        self.g.store(g.cast_mut(), Ordering::Release);
        self.ctx.store(ctx, Ordering::Release);
    }

    /// The context of the JIT goroutine this worker runs (null between
    /// goroutines). Only the worker's own thread (or a handler
    /// interrupting it) may use it.
    pub fn context(&self) -> *mut GoroutineContext {
        self.ctx.load(Ordering::Acquire)
    }

    /// The run's state, if this worker has one.
    pub fn shared(&self) -> Option<&Shared> {
        // SAFETY: set from a Shared that outlives the worker.
        unsafe { self.shared.load(Ordering::Acquire).as_ref() }
    }

    /// The JIT goroutine this worker runs, if any. Only the worker's own
    /// thread (or a handler interrupting it) may rely on the answer.
    pub fn running(&self) -> Option<&G> {
        // SAFETY: the goroutine outlives its turn on this worker, which
        // `set_running` brackets; the caller is that worker.
        unsafe { self.g.load(Ordering::Acquire).as_ref() }
    }

    /// What a handler interrupting this worker knows about it.
    pub fn thread(&self) -> Thread {
        let ctx = self.ctx.load(Ordering::Acquire);
        if ctx.is_null() {
            return Thread::Idle;
        }
        // SAFETY: the context of the goroutine this thread runs; only
        // atomics and a word written before the goroutine started are read.
        let c = unsafe { &*ctx };
        // A stop is wanted when the goroutine has a request (in effect, or
        // being armed). The poisoned guard is only part of its effect, and
        // stays poisoned while a request is undone.
        let requested = match self.running() {
            Some(g) => g.stop.pending().is_some(),
            None => c.stack_guard.load(Ordering::Acquire) == STACK_GUARD_POISON,
        };
        Thread::Running(Goroutine {
            requested,
            stack_lo: c.stack_lo as usize,
        })
    }

    /// Records the PC at which a handler declines to redirect.
    pub fn note_retry_pc(&self, pc: usize) {
        self.last_retry_pc.store(pc, Ordering::Release);
    }

    /// Why the handler last declined, if it did.
    pub fn last_retry(&self) -> Option<(RetryReason, usize)> {
        let i = self.last_retry.load(Ordering::Acquire) as usize;
        let r = RetryReason::ALL.get(i.checked_sub(1)?).copied()?;
        Some((r, self.last_retry_pc.load(Ordering::Acquire)))
    }

    /// Whether the handler has run since the last signal sent here and
    /// stopped the goroutine it interrupted (it did not decline).
    pub fn stopped_by_handler(&self) -> bool {
        !self.pending.load(Ordering::Acquire)
            && self.seen.load(Ordering::Acquire) == self.sent.load(Ordering::Acquire)
            && self.last_retry.load(Ordering::Acquire) == 0
    }

    /// Sends the preemption signal to thread `tid`, unless one is pending
    /// already. Returns whether a signal went out.
    pub fn send(&self, tid: libc::pid_t, signo: libc::c_int) -> bool {
        if tid == 0 || self.pending.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.sent.fetch_add(1, Ordering::AcqRel);
        if handler::tgkill(tid, signo).is_err() {
            self.pending.store(false, Ordering::Release);
            return false;
        }
        true
    }
}

thread_local! {
    /// The worker this thread is (null: not a worker). Constant-initialised
    /// and without a destructor, so reading it in a handler is a plain
    /// thread-local load.
    static CURRENT: Cell<*const MSignal> = const { Cell::new(std::ptr::null()) };
}

/// The worker the calling thread is, if it is one (for handlers).
pub fn current() -> Option<&'static MSignal> {
    let m = CURRENT.with(|c| c.get());
    // SAFETY: CURRENT is set only while the worker's MSignal is alive (the
    // guard that set it clears it first), and only read on this thread.
    unsafe { m.as_ref() }
}

/// Marks the calling thread as worker `m` until the guard drops.
pub fn enter_worker(m: &MSignal) -> WorkerGuard {
    CURRENT.with(|c| c.set(m));
    WorkerGuard(())
}

/// Clears the calling thread's worker pointer on drop.
#[derive(Debug)]
pub struct WorkerGuard(());

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null()));
    }
}

/// Sends the interrupted goroutine into the stub, to resume at
/// `resume_pc`. Async-signal-safe.
///
/// # Safety
///
/// Called from a handler on `m`'s thread, with its context `mc`, after
/// [`decide`](super::decide::decide) answered `Redirect { resume_pc }` for it.
pub unsafe fn redirect(
    shared: &Shared,
    m: &MSignal,
    mc: &mut MachineContext<'_>,
    resume_pc: usize,
) {
    // SAFETY: decide checked there are PREEMPT_STUB_STACK bytes of this
    // goroutine's stack below SP, which JIT code never uses below SP (no
    // red zone).
    unsafe { mc.push_call(shared.stub, resume_pc) };
    if let Some(w) = shared.watcher() {
        w.after_redirect(mc);
    }
    redirected(m);
}

/// A handler on `m`'s thread stopped its goroutine (by a redirect or a
/// hand-off). Async-signal-safe.
pub fn redirected(m: &MSignal) {
    m.last_retry.store(0, Ordering::Release);
}

/// What `last_retry` holds after a handler found nothing to stop (the
/// worker between goroutines, or its goroutine without a request): no
/// reason of [`RetryReason::ALL`], and not "stopped".
const FOUND_NOTHING: u8 = u8::MAX;

/// A handler on `m`'s thread found nothing to stop. The request it was
/// sent for may still be in effect (the signal can reach a worker that
/// has not yet marked the goroutine it is starting as running): the
/// monitor must not take this for a stop and wait for ever.
/// Async-signal-safe.
pub fn found_nothing(m: &MSignal) {
    m.last_retry.store(FOUND_NOTHING, Ordering::Release);
}

/// A handler on `m`'s thread declined to redirect, for `r`.
/// Async-signal-safe.
pub fn declined(shared: &Shared, m: &MSignal, r: RetryReason) {
    m.last_retry.store(r.index() as u8 + 1, Ordering::Release);
    shared.stats().retry(r.name());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the handler leaves for the monitor after a signal it was sent
    /// (as `handle` does at entry: the signal is no longer pending and was
    /// seen).
    fn delivered(m: &MSignal) {
        m.pending.store(false, Ordering::Release);
        m.sent.fetch_add(1, Ordering::AcqRel);
        m.seen
            .store(m.sent.load(Ordering::Acquire), Ordering::Release);
    }

    #[test]
    fn only_a_stop_holds_the_next_signal_back() {
        let m = MSignal::default();
        delivered(&m);
        redirected(&m);
        assert!(
            m.stopped_by_handler(),
            "stopped: on its way to the scheduler"
        );
        // The next signal found the worker between goroutines: its
        // request may still be in effect, and the one before it stopped
        // a goroutine. The monitor must send again.
        delivered(&m);
        found_nothing(&m);
        assert!(!m.stopped_by_handler());
        assert_eq!(m.last_retry(), None, "nothing to stop is no retry reason");
        delivered(&m);
        m.last_retry
            .store(RetryReason::NotJitCode.index() as u8 + 1, Ordering::Release);
        assert!(!m.stopped_by_handler());
        assert_eq!(
            m.last_retry().map(|(r, _)| r),
            Some(RetryReason::NotJitCode)
        );
        // A signal still pending is no stop either.
        redirected(&m);
        m.pending.store(true, Ordering::Release);
        assert!(!m.stopped_by_handler());
    }
}
