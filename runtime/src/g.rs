//! Goroutines.
//!
//! A [`G`] is shared (`Arc`) between the queues, channels and timers that
//! may hold it, but its execution state ([`Exec`]: the JIT context and
//! stack, or the interpreter's frames) belongs to one thread at a time: the
//! worker (M) that runs it, or serves its runtime call. Ownership passes
//! with the goroutine through run queues and wake-ups, which go through
//! mutexes, so each hand-over is a happens-before edge. Other threads touch
//! only the atomics and the mutex-protected [`WaitState`].

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use preempt_jit::abi::{GoroutineContext, STACK_GUARD_POISON};
use preempt_jit::fault::Fault;
use preempt_jit::interp;
use preempt_jit::ir::FuncId;

use crate::preempt::request::StopRequest;
use crate::stack::Stack;
use crate::traceback::StackMemory;

/// Where a goroutine is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Status {
    /// In a run queue.
    Runnable = 0,
    /// On a worker, in its code or in a runtime call.
    Running = 1,
    /// Parked: on a channel, a timer, a select.
    Waiting = 2,
    /// Finished.
    Dead = 3,
}

impl Status {
    fn from_u8(v: u8) -> Status {
        match v {
            0 => Status::Runnable,
            1 => Status::Running,
            2 => Status::Waiting,
            _ => Status::Dead,
        }
    }
}

/// Why a goroutine is parked, as Go's tracebacks name it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(u8)]
pub enum WaitReason {
    #[default]
    None,
    ChanSend,
    ChanReceive,
    Select,
    Sleep,
    /// A goroutine locked to its thread, waiting for its thread to run it.
    LockedThread,
    /// Waiting for a garbage collection (`gc`, or an allocation).
    GarbageCollection,
}

impl WaitReason {
    fn from_u8(v: u8) -> WaitReason {
        match v {
            1 => WaitReason::ChanSend,
            2 => WaitReason::ChanReceive,
            3 => WaitReason::Select,
            4 => WaitReason::Sleep,
            5 => WaitReason::LockedThread,
            6 => WaitReason::GarbageCollection,
            _ => WaitReason::None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WaitReason::None => "runnable",
            WaitReason::ChanSend => "chan send",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::Select => "select",
            WaitReason::Sleep => "sleep",
            WaitReason::LockedThread => "locked to thread",
            WaitReason::GarbageCollection => "garbage collection",
        }
    }
}

/// What a waker leaves for a parked goroutine to find when it resumes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// The runtime call's result (a received value, the chan of `after`).
    pub value: Option<u64>,
    /// The select arm taken.
    pub arm: Option<usize>,
    /// A fault to raise at the call (send on a channel closed meanwhile).
    pub fault: Option<Fault>,
}

/// The part of a goroutine other threads may read and write, under its
/// mutex.
#[derive(Debug, Default)]
pub struct WaitState {
    /// A delivered fault (see [`G::deliver`]).
    pub fault: Option<Fault>,
    /// When a select parked, the token its waiters share; whoever swaps it
    /// to true first wins the goroutine.
    pub select_token: Option<std::sync::Arc<AtomicBool>>,
    /// The channels of a parked select, to drop its waiters from when it
    /// resumes.
    pub select_chans: Vec<std::sync::Arc<crate::chan::Chan>>,
}

/// How a goroutine runs.
#[derive(Debug)]
pub enum Exec {
    /// `stack` owns nothing until the goroutine first runs: then it gets
    /// one (a dead goroutine's, usually) and `args`, its arguments until
    /// then, are written on it. A goroutine that waits in a run queue
    /// costs no stack.
    Jit {
        ctx: Box<GoroutineContext>,
        stack: Stack,
        args: Vec<u64>,
    },
    /// `pending`: the goroutine stopped at a runtime request that has not
    /// been completed yet (the interpreter completes it on resume).
    Interp {
        g: Box<interp::Goroutine>,
        pending: bool,
    },
}

/// A goroutine.
#[derive(Debug)]
pub struct G {
    pub id: u64,
    /// Its place in the registry, for life (`sched::allgs`); set when it
    /// is registered.
    pub slot: u32,
    /// The function it started in.
    pub func: FuncId,
    status: AtomicU8,
    /// A [`WaitReason`]: why it last parked.
    reason: AtomicU8,
    exec: UnsafeCell<Exec>,
    /// The JIT context's stack-guard word (stable: the context is boxed),
    /// for the monitor to poison from another thread; null for
    /// interpreted goroutines.
    guard: *const AtomicU64,
    /// The value `guard` holds when not poisoned (0 until the goroutine
    /// has a stack: see [`G::bind_guard`]).
    guard_value: AtomicU64,
    /// Its stop request: one word, the protocol of
    /// [`crate::preempt::request`].
    pub stop: StopRequest,
    /// When the preemption signal's handler last redirected this goroutine
    /// into the stub (monotonic ns; written by the handler).
    pub redirected_at: AtomicU64,
    /// Where it was then (the interrupted PC): where a hang report says
    /// it last stopped when every sample of its thread lands in the
    /// runtime.
    pub redirected_pc: AtomicU64,
    /// When that handler left (by its hand-off, or returning after the
    /// redirect).
    pub left_handler_at: AtomicU64,
    /// The deadline of the quantum its worker's timer stopped it for (0:
    /// none); the scheduler takes it at the stop.
    pub timer_stop_at: AtomicU64,
    /// The preemption-request generation the hang diagnosis last reported.
    pub diagnosed_request: AtomicU64,
    /// `lockthread` depth (0: not locked) and the worker it is locked to.
    pub lock_depth: AtomicU64,
    pub locked_m: AtomicU64,
    pub wait: Mutex<WaitState>,
    /// What the goroutine finds when it resumes: `DELIVERED_*` bits saying
    /// which of `delivered_value`, `delivered_arm` and `wait.resume.fault`
    /// hold something. Written by a waker (or the serving M) while the
    /// goroutine is not running, read by the M that resumes it: the run
    /// queue in between orders the two. Atomics rather than the mutex
    /// because every channel hand-over goes through here.
    delivered: AtomicU8,
    delivered_value: AtomicU64,
    delivered_arm: AtomicU64,
    /// A parked select left waiters to drop when it resumes.
    pub in_select: AtomicBool,
    /// The JIT context (stable: boxed), for the arming of the poll, trap
    /// and patch mechanisms from other threads; null when interpreted.
    ctx: *const GoroutineContext,
    /// What the owner of its stop request's effect has applied: the
    /// effect's own book-keeping ([`crate::preempt::effect::Fx`]), written only
    /// by that owner (the protocol gives it one at a time), so that the
    /// undo undoes exactly what was done.
    pub applied: AtomicU8,
    /// Under `patch`, the function whose back-edges are patched for it
    /// ([`NOT_PATCHED`]: none); part of the same book-keeping.
    pub patched: AtomicU64,
}

/// [`G::patched`] when no function is patched for the goroutine.
pub const NOT_PATCHED: u64 = u64::MAX;

// SAFETY: `exec` is only touched by the one thread that owns the goroutine
// at the time (see the module docs); everything else is atomic or behind a
// mutex. `guard` points into the boxed context, which lives as long as the
// goroutine, and is only used for atomic operations.
unsafe impl Send for G {}
// SAFETY: as above.
unsafe impl Sync for G {}

const DELIVERED_VALUE: u8 = 1;
const DELIVERED_ARM: u8 = 2;
const DELIVERED_FAULT: u8 = 4;

/// No worker: `locked_m` when not locked.
pub const NO_M: u64 = u64::MAX;

impl G {
    pub fn new(id: u64, func: FuncId, exec: Exec) -> G {
        let (guard, guard_value, ctx) = match &exec {
            Exec::Jit { ctx, stack, .. } => (
                &ctx.stack_guard as *const AtomicU64,
                if stack.size() == 0 {
                    0
                } else {
                    stack.guard() as u64
                },
                &**ctx as *const GoroutineContext,
            ),
            Exec::Interp { .. } => (std::ptr::null(), 0, std::ptr::null()),
        };
        G {
            id,
            slot: u32::MAX,
            func,
            status: AtomicU8::new(Status::Runnable as u8),
            reason: AtomicU8::new(WaitReason::None as u8),
            exec: UnsafeCell::new(exec),
            guard,
            guard_value: AtomicU64::new(guard_value),
            stop: StopRequest::default(),
            redirected_at: AtomicU64::new(0),
            redirected_pc: AtomicU64::new(0),
            left_handler_at: AtomicU64::new(0),
            timer_stop_at: AtomicU64::new(0),
            diagnosed_request: AtomicU64::new(0),
            lock_depth: AtomicU64::new(0),
            locked_m: AtomicU64::new(NO_M),
            wait: Mutex::new(WaitState::default()),
            delivered: AtomicU8::new(0),
            delivered_value: AtomicU64::new(0),
            ctx,
            applied: AtomicU8::new(0),
            patched: AtomicU64::new(NOT_PATCHED),
            delivered_arm: AtomicU64::new(0),
            in_select: AtomicBool::new(false),
        }
    }

    /// Makes a dead JIT goroutine's record, which nothing else uses (the
    /// `&mut` says so: `AllGs::reuse`), goroutine `id` running `func`
    /// from `entry` with `args` (swapped with the record's, which are
    /// none), exactly as [`G::new`] would have made it, keeping the
    /// record's and the context's memory; `init` finishes the context as
    /// the spawner finishes a new one. False (nothing
    /// changed) for an interpreted goroutine's or one that still has a
    /// stack. The destructuring names every field, so a field added to
    /// `G` without a fresh value here does not compile.
    pub fn renew(
        &mut self,
        id: u64,
        func: FuncId,
        entry: u64,
        args: &mut Vec<u64>,
        init: impl FnOnce(&mut GoroutineContext),
    ) -> bool {
        let G {
            id: g_id,
            slot: _,
            func: g_func,
            status,
            reason,
            exec,
            guard,
            guard_value,
            stop,
            redirected_at,
            redirected_pc,
            left_handler_at,
            timer_stop_at,
            diagnosed_request,
            lock_depth,
            locked_m,
            wait,
            delivered,
            delivered_value,
            delivered_arm,
            in_select,
            ctx,
            applied,
            patched,
        } = self;
        let Exec::Jit {
            ctx: context,
            stack,
            args: g_args,
        } = exec.get_mut()
        else {
            return false;
        };
        if stack.size() != 0 {
            return false;
        }
        **context = GoroutineContext::new();
        context.result = entry;
        init(context);
        std::mem::swap(g_args, args);
        *guard = &context.stack_guard as *const AtomicU64;
        *ctx = &**context as *const GoroutineContext;
        *g_id = id;
        *g_func = func;
        *status.get_mut() = Status::Runnable as u8;
        *reason.get_mut() = WaitReason::None as u8;
        *guard_value.get_mut() = 0;
        *stop = StopRequest::default();
        for word in [
            redirected_at,
            redirected_pc,
            left_handler_at,
            timer_stop_at,
            diagnosed_request,
            lock_depth,
            delivered_value,
            delivered_arm,
        ] {
            *word.get_mut() = 0;
        }
        *locked_m.get_mut() = NO_M;
        *wait.get_mut().unwrap_or_else(|e| e.into_inner()) = WaitState::default();
        *delivered.get_mut() = 0;
        *in_select.get_mut() = false;
        *applied.get_mut() = 0;
        *patched.get_mut() = NOT_PATCHED;
        true
    }

    /// Leaves what the goroutine finds when it resumes (a waker's value,
    /// or a result held back by a preemption).
    pub fn deliver(&self, r: Resume) {
        self.deliver_parts(r.value, r.arm.map(|a| a as u64), r.fault);
    }

    /// [`G::deliver`] by parts.
    #[inline]
    pub fn deliver_parts(&self, value: Option<u64>, arm: Option<u64>, fault: Option<Fault>) {
        let mut bits = 0;
        if let Some(v) = value {
            self.delivered_value.store(v, Ordering::Relaxed);
            bits |= DELIVERED_VALUE;
        }
        if let Some(a) = arm {
            self.delivered_arm.store(a, Ordering::Relaxed);
            bits |= DELIVERED_ARM;
        }
        if let Some(f) = fault {
            self.wait.lock().unwrap_or_else(|e| e.into_inner()).fault = Some(f);
            bits |= DELIVERED_FAULT;
        }
        if bits != 0 {
            self.delivered.store(bits, Ordering::Release);
        }
    }

    /// What was delivered while it was not running.
    pub fn take_delivery(&self) -> Resume {
        let bits = self.delivered.load(Ordering::Acquire);
        if bits == 0 {
            return Resume::default();
        }
        self.delivered.store(0, Ordering::Relaxed);
        Resume {
            value: (bits & DELIVERED_VALUE != 0)
                .then(|| self.delivered_value.load(Ordering::Relaxed)),
            arm: (bits & DELIVERED_ARM != 0)
                .then(|| self.delivered_arm.load(Ordering::Relaxed) as usize),
            fault: if bits & DELIVERED_FAULT != 0 {
                self.wait
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .fault
                    .take()
            } else {
                None
            },
        }
    }

    pub fn status(&self) -> Status {
        Status::from_u8(self.status.load(Ordering::Acquire))
    }

    pub fn set_status(&self, s: Status) {
        self.status.store(s as u8, Ordering::Release);
    }

    /// Why it last parked.
    pub fn reason(&self) -> WaitReason {
        WaitReason::from_u8(self.reason.load(Ordering::Acquire))
    }

    pub fn set_reason(&self, r: WaitReason) {
        self.reason.store(r as u8, Ordering::Release);
    }

    /// The execution state.
    ///
    /// # Safety
    ///
    /// Only the thread that owns the goroutine (runs it or serves its
    /// runtime call, or holds it while creating it) may call this, and
    /// only while it owns it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn exec(&self) -> &mut Exec {
        // SAFETY: the caller owns the goroutine, so no other reference to
        // the execution state exists.
        unsafe { &mut *self.exec.get() }
    }

    /// The execution state, for the collector to read while the world is
    /// stopped.
    ///
    /// # Safety
    ///
    /// No thread may run the goroutine or change its execution state while
    /// the reference is in use. A stopped world gives that: every P is
    /// stopped, and an M still in foreign code for the goroutine does not
    /// touch its state until it has a P again.
    pub unsafe fn exec_stopped(&self) -> &Exec {
        // SAFETY: per the contract, nothing writes the state meanwhile.
        unsafe { &*self.exec.get() }
    }

    /// A value delivered for the goroutine to find when it resumes (a
    /// runtime call's result held back by a preemption), if one waits.
    pub fn delivered_value(&self) -> Option<u64> {
        (self.delivered.load(Ordering::Acquire) & DELIVERED_VALUE != 0)
            .then(|| self.delivered_value.load(Ordering::Relaxed))
    }

    /// Poisons the stack guard: the next function entry's check fails
    /// and calls the runtime. Async-signal-safe (one atomic store).
    pub fn poison_guard(&self) {
        if !self.guard.is_null() {
            // SAFETY: `guard` points into this goroutine's boxed context.
            unsafe { (*self.guard).store(STACK_GUARD_POISON, Ordering::Release) };
        }
    }

    /// Puts the stack guard back. The goroutine may be growing its stack
    /// meanwhile ([`G::rebind_guard`]): a guard value read before the
    /// grown stack's was published is stored again with the new one.
    ///
    /// The two sides are a store-buffering pair (here: store the guard,
    /// then load the value; there: store the value, then update the
    /// guard), so every access is `SeqCst`: in the single order of the
    /// four, either this load sees the new value or the grower's CAS sees
    /// this store and replaces it. Under acquire/release both could miss
    /// each other and leave the old stack's guard. (That is also why it is
    /// argued here rather than checked with loom, which models `SeqCst` as
    /// acquire/release and would report that outcome; see `crate::sync`.)
    pub fn restore_guard(&self) {
        if self.guard.is_null() {
            return;
        }
        let mut value = self.guard_value.load(Ordering::SeqCst);
        loop {
            // SAFETY: as in `poison_guard`.
            unsafe { (*self.guard).store(value, Ordering::SeqCst) };
            let now = self.guard_value.load(Ordering::SeqCst);
            if now == value {
                return;
            }
            value = now;
        }
    }

    /// The goroutine's stack grew: its guard word is `new` instead of
    /// `old`. Called by the owner in the goroutine's `StackCheck` runtime
    /// call. A poisoned guard stays poisoned (its undo, in
    /// [`G::restore_guard`], then puts `new` back).
    pub fn rebind_guard(&self, old: u64, new: u64) {
        self.guard_value.store(new, Ordering::SeqCst);
        if !self.guard.is_null() {
            // SAFETY: as in `poison_guard`.
            let _ = unsafe {
                (*self.guard).compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
            };
        }
    }

    /// The goroutine got its stack, whose guard word is `value`: it
    /// becomes the guard, unless the guard was poisoned meanwhile (the
    /// run ended: see `close_requests`), which stays. Called by the owner
    /// before the goroutine first runs, when no stop request can be in
    /// effect for it (requests are for a running slice).
    pub fn bind_guard(&self, value: u64) {
        self.guard_value.store(value, Ordering::Release);
        if !self.guard.is_null() {
            // SAFETY: as in `poison_guard`.
            let _ = unsafe {
                (*self.guard).compare_exchange(0, value, Ordering::AcqRel, Ordering::Acquire)
            };
        }
    }

    /// The JIT context, for its atomic words only (the poll word, the
    /// poll-page pointer, the current function).
    pub fn jit_context(&self) -> Option<&GoroutineContext> {
        // SAFETY: `ctx` points into the boxed context, which lives as long
        // as the goroutine; callers touch only its atomic fields.
        unsafe { self.ctx.as_ref() }
    }

    /// Under `patch`: whether the function patched for its request is not
    /// the one it runs now (it returned, or called another).
    pub fn patched_elsewhere(&self) -> bool {
        let patched = self.patched.load(Ordering::Acquire);
        patched != NOT_PATCHED
            && self
                .jit_context()
                .is_some_and(|c| c.func.load(Ordering::Acquire) != patched)
    }

    /// Whether the stack guard is poisoned (a request, not an overflow,
    /// made the prologue call the runtime).
    pub fn guard_poisoned(&self) -> bool {
        // SAFETY: as in `poison_guard`.
        !self.guard.is_null()
            && unsafe { (*self.guard).load(Ordering::Acquire) } == STACK_GUARD_POISON
    }

    pub fn is_locked(&self) -> bool {
        self.lock_depth.load(Ordering::Acquire) > 0
    }
}

/// Reading a parked JIT goroutine's stack for tracebacks and operands.
impl StackMemory for Stack {
    fn read(&self, addr: usize) -> Option<u64> {
        // SAFETY: only words inside the usable stack mapping are read, and
        // the goroutine is parked (nothing writes them concurrently).
        self.contains_word(addr)
            .then(|| unsafe { (addr as *const u64).read() })
    }
}

#[cfg(test)]
impl G {
    /// A goroutine of an interpreter that exists nowhere else: enough for
    /// the scheduler's queues and tests, which never run it.
    pub(crate) fn detached(id: u64) -> std::sync::Arc<G> {
        std::sync::Arc::new(G::detached_record(id))
    }

    /// [`G::detached`]'s record, to be registered.
    pub(crate) fn detached_record(id: u64) -> G {
        let ig = preempt_jit::interp::Goroutine::detached(id);
        G::new(
            id,
            preempt_jit::ir::FuncId(0),
            Exec::Interp {
                g: Box::new(ig),
                pending: false,
            },
        )
    }
}
