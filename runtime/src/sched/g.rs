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

use super::stack::Stack;
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
pub enum WaitReason {
    #[default]
    None,
    ChanSend,
    ChanReceive,
    Select,
    Sleep,
    /// A goroutine locked to its thread, waiting for its thread to run it.
    LockedThread,
}

impl WaitReason {
    pub fn name(self) -> &'static str {
        match self {
            WaitReason::None => "runnable",
            WaitReason::ChanSend => "chan send",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::Select => "select",
            WaitReason::Sleep => "sleep",
            WaitReason::LockedThread => "locked to thread",
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
    pub reason: WaitReason,
    pub resume: Resume,
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
    Jit {
        ctx: Box<GoroutineContext>,
        stack: Stack,
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
    /// The function it started in.
    pub func: FuncId,
    status: AtomicU8,
    exec: UnsafeCell<Exec>,
    /// The JIT context's stack-guard word (stable: the context is boxed),
    /// for the monitor to poison from another thread; null for
    /// interpreted goroutines.
    guard: *const AtomicU64,
    /// The value `guard` holds when not poisoned.
    guard_value: u64,
    /// A preemption was requested and has not been honoured yet.
    pub preempt: AtomicBool,
    /// When, in monotonic nanoseconds (0: no request).
    pub preempt_requested_at: AtomicU64,
    /// The preemption-request generation the hang diagnosis last reported.
    pub diagnosed_request: AtomicU64,
    /// `lockthread` depth (0: not locked) and the worker it is locked to.
    pub lock_depth: AtomicU64,
    pub locked_m: AtomicU64,
    pub wait: Mutex<WaitState>,
}

// SAFETY: `exec` is only touched by the one thread that owns the goroutine
// at the time (see the module docs); everything else is atomic or behind a
// mutex. `guard` points into the boxed context, which lives as long as the
// goroutine, and is only used for atomic operations.
unsafe impl Send for G {}
// SAFETY: as above.
unsafe impl Sync for G {}

/// No worker: `locked_m` when not locked.
pub const NO_M: u64 = u64::MAX;

impl G {
    pub fn new(id: u64, func: FuncId, exec: Exec) -> G {
        let (guard, guard_value) = match &exec {
            Exec::Jit { ctx, stack } => {
                (&ctx.stack_guard as *const AtomicU64, stack.guard() as u64)
            }
            Exec::Interp { .. } => (std::ptr::null(), 0),
        };
        G {
            id,
            func,
            status: AtomicU8::new(Status::Runnable as u8),
            exec: UnsafeCell::new(exec),
            guard,
            guard_value,
            preempt: AtomicBool::new(false),
            preempt_requested_at: AtomicU64::new(0),
            diagnosed_request: AtomicU64::new(0),
            lock_depth: AtomicU64::new(0),
            locked_m: AtomicU64::new(NO_M),
            wait: Mutex::new(WaitState::default()),
        }
    }

    pub fn status(&self) -> Status {
        Status::from_u8(self.status.load(Ordering::Acquire))
    }

    pub fn set_status(&self, s: Status) {
        self.status.store(s as u8, Ordering::Release);
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

    /// Asks the goroutine to stop at its next cooperative preemption point
    /// (function entry or runtime call). Callable from any thread.
    pub fn request_preempt(&self, now: u64) -> bool {
        if self.preempt.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.preempt_requested_at.store(now, Ordering::Release);
        if !self.guard.is_null() {
            // SAFETY: `guard` points into this goroutine's boxed context.
            unsafe { (*self.guard).store(STACK_GUARD_POISON, Ordering::Release) };
        }
        true
    }

    /// Clears a pending request (the goroutine stopped); returns when it
    /// was made, if one was pending.
    pub fn clear_preempt(&self) -> Option<u64> {
        if !self.guard.is_null() {
            // SAFETY: as in `request_preempt`.
            unsafe { (*self.guard).store(self.guard_value, Ordering::Release) };
        }
        if self.preempt.swap(false, Ordering::AcqRel) {
            Some(self.preempt_requested_at.load(Ordering::Acquire))
        } else {
            None
        }
    }

    /// Whether the stack guard is poisoned (a request, not an overflow,
    /// made the prologue call the runtime).
    pub fn guard_poisoned(&self) -> bool {
        // SAFETY: as in `request_preempt`.
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
