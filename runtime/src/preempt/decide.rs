//! The decision a preemption-signal handler makes, as a pure function of
//! what it can see: the interrupted PC and SP, the compiler's tables, and
//! the goroutine the thread runs. No signal is needed to test it.

use preempt_jit::abi::ASYNC_STUB_STACK;
use preempt_jit::code::{CodeTables, UnsafeKind};

/// What the handler knows about the thread it interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thread {
    /// Not one of the runtime's worker threads (the main thread, the
    /// monitor, a thread of someone else's).
    NotAnM,
    /// A worker thread not running a JIT goroutine just now (it is in the
    /// scheduler, or running an interpreted goroutine).
    Idle,
    /// A worker thread that runs a JIT goroutine.
    Running(Goroutine),
}

/// The running goroutine, as far as the decision needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Goroutine {
    /// A stop request is pending (its stack guard is poisoned).
    pub requested: bool,
    /// The lowest usable address of its stack.
    pub stack_lo: usize,
}

/// Why a handler returned without redirecting. The monitor re-signals
/// after a back-off; the stats count attempts by reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryReason {
    /// The PC is not in a JIT function: the thread is in the scheduler, a
    /// runtime call, foreign code, or a stub. (A runtime call honours a
    /// request by itself when it returns.)
    NotJitCode,
    /// Too little stack below SP for the stub's frame.
    StackTooShallow,
    /// The PC is in an unsafe region of this kind.
    Unsafe(UnsafeKind),
}

impl RetryReason {
    /// Every reason, in a fixed order (for per-reason counters).
    pub const ALL: [RetryReason; 8] = [
        RetryReason::NotJitCode,
        RetryReason::StackTooShallow,
        RetryReason::Unsafe(UnsafeKind::FrameSetup),
        RetryReason::Unsafe(UnsafeKind::FrameTeardown),
        RetryReason::Unsafe(UnsafeKind::RuntimeTransition),
        RetryReason::Unsafe(UnsafeKind::ScratchRegister),
        RetryReason::Unsafe(UnsafeKind::AtomicSequence),
        RetryReason::Unsafe(UnsafeKind::WriteBarrier),
    ];

    /// A stable small index into [`RetryReason::ALL`].
    pub fn index(self) -> usize {
        match self {
            RetryReason::NotJitCode => 0,
            RetryReason::StackTooShallow => 1,
            RetryReason::Unsafe(k) => 2 + k.index(),
        }
    }

    /// How the stats and diagnoses name it.
    pub fn name(self) -> &'static str {
        match self {
            RetryReason::NotJitCode => "not in JIT code",
            RetryReason::StackTooShallow => "stack too shallow",
            RetryReason::Unsafe(UnsafeKind::FrameSetup) => "unsafe: frame set-up",
            RetryReason::Unsafe(UnsafeKind::FrameTeardown) => "unsafe: frame tear-down",
            RetryReason::Unsafe(UnsafeKind::RuntimeTransition) => "unsafe: runtime-call transition",
            RetryReason::Unsafe(UnsafeKind::ScratchRegister) => "unsafe: scratch register",
            RetryReason::Unsafe(UnsafeKind::AtomicSequence) => "unsafe: atomic sequence",
            RetryReason::Unsafe(UnsafeKind::WriteBarrier) => "unsafe: write barrier",
        }
    }
}

/// The handler's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Redirect into the stub, which returns to `resume_pc`.
    Redirect { resume_pc: usize },
    /// Not now: return and let the monitor try again.
    Retry(RetryReason),
    /// The goroutine has no pending request (it stopped by itself since):
    /// nothing to do and nothing to retry.
    Stale,
    /// Not a thread of ours: pass the signal on to whoever had it before.
    NotOurs,
}

/// Whether unsafe regions are honoured (`--unsafe-points`); `Ignore` is
/// fault injection, to prove the tables matter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UnsafePoints {
    #[default]
    Honour,
    Ignore,
}

/// Decides what a handler that interrupted `thread` at `pc` with stack
/// pointer `sp` does. A redirect needs every one of these, in this order:
///
/// 0. the thread is one of the runtime's workers, else [`Decision::NotOurs`];
/// 1. it runs a JIT goroutine with a pending stop request, else
///    [`Decision::Stale`] (a worker between goroutines has nothing to stop;
///    a request already honoured needs nothing more);
/// 2. the PC is inside a JIT function's code: not the scheduler, a runtime
///    call or foreign code (so no runtime lock is held and the goroutine's
///    registers are the JIT's), and not a stub;
/// 3. there are at least [`ASYNC_STUB_STACK`] bytes between SP and the
///    stack's lowest usable address, for the stub's frame and the runtime
///    call it makes;
/// 4. the PC is not in an unsafe region the compiler recorded (frame
///    set-up and tear-down, runtime-call transitions, scratch-register
///    use, atomic sequences, write barriers);
/// 5. if it is in a restartable region (a sequence with no effect until
///    its last instruction, e.g. LL/SC), the goroutine resumes at the
///    region's start instead of at the PC.
///
/// With [`UnsafePoints::Ignore`], 4 and 5 are skipped: every PC of a JIT
/// function is taken as safe, which the stress tests use to show what the
/// tables prevent.
pub fn decide(
    pc: usize,
    sp: usize,
    tables: &CodeTables,
    thread: Thread,
    points: UnsafePoints,
) -> Decision {
    let g = match thread {
        Thread::NotAnM => return Decision::NotOurs,
        Thread::Idle => return Decision::Stale,
        Thread::Running(g) => g,
    };
    if !g.requested {
        return Decision::Stale;
    }
    if tables.function_at(pc).is_none() || tables.stub_at(pc).is_some() {
        return Decision::Retry(RetryReason::NotJitCode);
    }
    if sp < g.stack_lo.saturating_add(ASYNC_STUB_STACK) {
        return Decision::Retry(RetryReason::StackTooShallow);
    }
    if points == UnsafePoints::Honour {
        if let Some(r) = tables.unsafe_region_at(pc) {
            if !r.restartable {
                return Decision::Retry(RetryReason::Unsafe(r.kind));
            }
            return Decision::Redirect { resume_pc: r.start };
        }
    }
    Decision::Redirect { resume_pc: pc }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preempt_jit::code::{FunctionRange, StubRange, UnsafeRegion};
    use preempt_jit::ir::{FuncId, Span};

    /// Code laid out as: a stub at 0x1000..0x1100, a function at
    /// 0x2000..0x2100 with a frame set-up region at its start, a
    /// restartable atomic sequence and a write barrier.
    fn tables() -> CodeTables {
        let f = FunctionRange {
            func: FuncId(0),
            name: "f".into(),
            start: 0x2000,
            end: 0x2100,
            span: Span::default(),
        };
        CodeTables {
            functions: vec![f],
            stubs: vec![StubRange {
                name: "rt_call",
                start: 0x1000,
                end: 0x1100,
            }],
            unsafe_regions: vec![
                UnsafeRegion {
                    start: 0x2000,
                    end: 0x2010,
                    kind: UnsafeKind::FrameSetup,
                    restartable: false,
                },
                UnsafeRegion {
                    start: 0x2040,
                    end: 0x2050,
                    kind: UnsafeKind::AtomicSequence,
                    restartable: true,
                },
                UnsafeRegion {
                    start: 0x2080,
                    end: 0x2090,
                    kind: UnsafeKind::WriteBarrier,
                    restartable: false,
                },
            ],
            ..CodeTables::default()
        }
    }

    const STACK_LO: usize = 0x10_0000;
    const SP: usize = 0x20_0000;

    fn running(requested: bool) -> Thread {
        Thread::Running(Goroutine {
            requested,
            stack_lo: STACK_LO,
        })
    }

    fn at(pc: usize) -> Decision {
        decide(pc, SP, &tables(), running(true), UnsafePoints::Honour)
    }

    #[test]
    fn a_safe_pc_is_redirected_to_resume_where_it_was() {
        assert_eq!(at(0x2010), Decision::Redirect { resume_pc: 0x2010 });
        assert_eq!(at(0x20ff), Decision::Redirect { resume_pc: 0x20ff });
        assert_eq!(
            at(0x2090),
            Decision::Redirect { resume_pc: 0x2090 },
            "end is exclusive"
        );
    }

    #[test]
    fn threads_and_goroutines_without_a_request_are_left_alone() {
        let t = tables();
        let h = UnsafePoints::Honour;
        assert_eq!(decide(0x2020, SP, &t, Thread::NotAnM, h), Decision::NotOurs);
        assert_eq!(decide(0x2020, SP, &t, Thread::Idle, h), Decision::Stale);
        assert_eq!(decide(0x2020, SP, &t, running(false), h), Decision::Stale);
    }

    #[test]
    fn outside_jit_functions_is_retried() {
        for pc in [0x0, 0x1000, 0x10ff, 0x1fff, 0x2100, usize::MAX] {
            assert_eq!(at(pc), Decision::Retry(RetryReason::NotJitCode), "{pc:#x}");
        }
    }

    #[test]
    fn a_shallow_stack_is_retried() {
        let t = tables();
        let sp = STACK_LO + ASYNC_STUB_STACK - 8;
        assert_eq!(
            decide(0x2020, sp, &t, running(true), UnsafePoints::Honour),
            Decision::Retry(RetryReason::StackTooShallow)
        );
        let sp = STACK_LO + ASYNC_STUB_STACK;
        assert_eq!(
            decide(0x2020, sp, &t, running(true), UnsafePoints::Honour),
            Decision::Redirect { resume_pc: 0x2020 }
        );
    }

    #[test]
    fn unsafe_regions_are_retried_and_restartable_ones_restart() {
        assert_eq!(
            at(0x2000),
            Decision::Retry(RetryReason::Unsafe(UnsafeKind::FrameSetup))
        );
        assert_eq!(
            at(0x2088),
            Decision::Retry(RetryReason::Unsafe(UnsafeKind::WriteBarrier))
        );
        for pc in 0x2040..0x2050 {
            assert_eq!(at(pc), Decision::Redirect { resume_pc: 0x2040 });
        }
    }

    #[test]
    fn ignoring_the_tables_takes_every_function_pc_as_safe() {
        let t = tables();
        for pc in [0x2000, 0x2044, 0x2088] {
            assert_eq!(
                decide(pc, SP, &t, running(true), UnsafePoints::Ignore),
                Decision::Redirect { resume_pc: pc }
            );
        }
        // Not what the tables are about: still not redirected.
        assert_eq!(
            decide(0x1000, SP, &t, running(true), UnsafePoints::Ignore),
            Decision::Retry(RetryReason::NotJitCode)
        );
    }

    #[test]
    fn reason_indices_are_distinct_and_in_order() {
        for (i, r) in RetryReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{}", r.name());
        }
    }
}
