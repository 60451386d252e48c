//! The decision every handler that can stop a goroutine makes (the
//! preemption signal's, [`super::asynchronous`]; the poll-page fault's,
//! [`super::trap`]; the stepping harness's), as a pure function of what it
//! can see: what woke it, the interrupted PC and SP, the compiler's tables,
//! and the goroutine the thread runs. Whether the signal or the fault is
//! the runtime's at all is decided here too: the handlers keep no policy
//! of their own. No signal is needed to test it.

use preempt_jit::abi::PREEMPT_STUB_STACK;
use preempt_jit::code::{CodeTables, UnsafeKind};

/// What woke the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The preemption signal; `from_runtime` if the runtime sent it
    /// (`tgkill` from this process), not another process or `raise`.
    Signal { from_runtime: bool },
    /// A memory fault; `in_poll_page` if its address lies in one of
    /// `--preempt trap`'s poll pages.
    PollFault { in_poll_page: bool },
}

/// The tables a handler passes when the thread is not a worker (it has
/// none): no code is the runtime's.
pub static NO_TABLES: CodeTables = CodeTables {
    functions: Vec::new(),
    blocks: Vec::new(),
    unsafe_regions: Vec::new(),
    back_edges: Vec::new(),
    poll_sites: Vec::new(),
    patch_sites: Vec::new(),
    call_sites: Vec::new(),
    hoisted_loads: Vec::new(),
    inst_starts: Vec::new(),
    stubs: Vec::new(),
    loops: Vec::new(),
    block_loops: Vec::new(),
    max_frame: 0,
    base: 0,
};

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

/// Decides what a handler woken by `trigger` that interrupted `thread`
/// at `pc` with stack pointer `sp` does.
///
/// For the preemption signal, a redirect needs every one of these, in
/// this order:
///
/// 0. the thread is one of the runtime's workers, else [`Decision::NotOurs`];
/// 1. it runs a JIT goroutine with a pending stop request, else
///    [`Decision::Stale`] (a worker between goroutines has nothing to stop;
///    a request already honoured needs nothing more);
/// 2. the PC is inside a JIT function's code: not the scheduler, a runtime
///    call or foreign code (so no runtime lock is held and the goroutine's
///    registers are the JIT's), and not a stub;
/// 3. there are at least [`PREEMPT_STUB_STACK`] bytes between SP and the
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
///
/// For a fault, the redirect needs:
///
/// 0. the fault's address in a poll page, and the thread a worker running
///    a JIT goroutine, else [`Decision::NotOurs`] (a genuine fault: the
///    previous handler reports it);
/// 1. the PC a poll site of the tables (the poll's load), else
///    [`Decision::NotOurs`];
///
/// and then it is a redirect to the instruction after the load, whether
/// or not a request is pending: a fault cannot be declined (the load would
/// fault again at once), and the stub finds no request and resumes (the
/// global page of `--trap-arm mprotect` makes every looping goroutine
/// fault). The stub's room is there by construction (the stack reserve
/// holds its frame, asserted in [`super::trap`]) and a poll site is a
/// back-edge, outside every unsafe region.
///
/// Whether the signal also goes on to the handler installed before the
/// runtime's is [`passes_on`].
pub fn decide(
    trigger: Trigger,
    pc: usize,
    sp: usize,
    tables: &CodeTables,
    thread: Thread,
    points: UnsafePoints,
) -> Decision {
    if let Trigger::PollFault { in_poll_page } = trigger {
        let ours = in_poll_page && matches!(thread, Thread::Running(_));
        return match tables.poll_site_at(pc) {
            Some(site) if ours => Decision::Redirect {
                resume_pc: pc + site.len,
            },
            _ => Decision::NotOurs,
        };
    }
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
    if sp < g.stack_lo.saturating_add(PREEMPT_STUB_STACK) {
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

/// Whether the handler passes the signal on to the disposition the
/// runtime's replaced, after acting on `decision`: a preemption signal
/// the runtime did not send always goes on (whoever sent it expects its
/// handler to run; the runtime may still have used it to stop a
/// goroutine, as Go treats any `SIGURG`), and a fault that is not a poll
/// site's goes on (a genuine crash, reported as it would have been).
pub fn passes_on(trigger: Trigger, decision: Decision) -> bool {
    match trigger {
        Trigger::Signal { from_runtime } => !from_runtime,
        Trigger::PollFault { .. } => decision == Decision::NotOurs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preempt_jit::code::{FunctionRange, PollSite, StubRange, UnsafeRegion};
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

    const SIGNAL: Trigger = Trigger::Signal { from_runtime: true };
    const STACK_LO: usize = 0x10_0000;
    const SP: usize = 0x20_0000;

    fn running(requested: bool) -> Thread {
        Thread::Running(Goroutine {
            requested,
            stack_lo: STACK_LO,
        })
    }

    fn at(pc: usize) -> Decision {
        decide(
            SIGNAL,
            pc,
            SP,
            &tables(),
            running(true),
            UnsafePoints::Honour,
        )
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
        assert_eq!(
            decide(SIGNAL, 0x2020, SP, &t, Thread::NotAnM, h),
            Decision::NotOurs
        );
        assert_eq!(
            decide(SIGNAL, 0x2020, SP, &t, Thread::Idle, h),
            Decision::Stale
        );
        assert_eq!(
            decide(SIGNAL, 0x2020, SP, &t, running(false), h),
            Decision::Stale
        );
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
        let sp = STACK_LO + PREEMPT_STUB_STACK - 8;
        assert_eq!(
            decide(SIGNAL, 0x2020, sp, &t, running(true), UnsafePoints::Honour),
            Decision::Retry(RetryReason::StackTooShallow)
        );
        let sp = STACK_LO + PREEMPT_STUB_STACK;
        assert_eq!(
            decide(SIGNAL, 0x2020, sp, &t, running(true), UnsafePoints::Honour),
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
                decide(SIGNAL, pc, SP, &t, running(true), UnsafePoints::Ignore),
                Decision::Redirect { resume_pc: pc }
            );
        }
        // Not what the tables are about: still not redirected.
        assert_eq!(
            decide(SIGNAL, 0x1000, SP, &t, running(true), UnsafePoints::Ignore),
            Decision::Retry(RetryReason::NotJitCode)
        );
    }

    fn with_poll_site() -> CodeTables {
        let mut t = tables();
        t.poll_sites = vec![PollSite {
            pc: 0x20c0,
            len: 3,
            func: FuncId(0),
        }];
        t
    }

    #[test]
    fn a_fault_at_a_poll_site_in_a_poll_page_is_redirected_past_the_load() {
        let t = with_poll_site();
        let fault = Trigger::PollFault { in_poll_page: true };
        let h = UnsafePoints::Honour;
        let redirect = Decision::Redirect { resume_pc: 0x20c3 };
        assert_eq!(decide(fault, 0x20c0, SP, &t, running(true), h), redirect);
        // No request pending (the global page faults every looping
        // goroutine): still redirected, the stub resumes at once.
        assert_eq!(decide(fault, 0x20c0, SP, &t, running(false), h), redirect);
        // Even a shallow SP: the stack reserve holds the stub's frame.
        assert_eq!(
            decide(fault, 0x20c0, STACK_LO, &t, running(true), h),
            redirect
        );
        assert!(!passes_on(fault, redirect));
    }

    #[test]
    fn a_fault_anywhere_else_is_not_ours_and_passes_on() {
        let t = with_poll_site();
        let h = UnsafePoints::Honour;
        let in_page = Trigger::PollFault { in_poll_page: true };
        let elsewhere = Trigger::PollFault {
            in_poll_page: false,
        };
        for (trigger, pc, thread) in [
            (elsewhere, 0x20c0, running(true)),
            (in_page, 0x20c4, running(true)),
            (in_page, 0x1000, running(true)),
            (in_page, 0x20c0, Thread::Idle),
            (in_page, 0x20c0, Thread::NotAnM),
        ] {
            let d = decide(trigger, pc, SP, &t, thread, h);
            assert_eq!(d, Decision::NotOurs, "{trigger:?} at {pc:#x} on {thread:?}");
            assert!(passes_on(trigger, d));
        }
        assert_eq!(
            decide(in_page, 0x20c0, SP, &NO_TABLES, running(true), h),
            Decision::NotOurs
        );
    }

    #[test]
    fn a_signal_not_sent_by_the_runtime_passes_on_whatever_was_decided() {
        let t = tables();
        let h = UnsafePoints::Honour;
        let other = Trigger::Signal {
            from_runtime: false,
        };
        let d = decide(other, 0x2020, SP, &t, running(true), h);
        assert_eq!(d, Decision::Redirect { resume_pc: 0x2020 });
        assert!(passes_on(other, d));
        let d = decide(other, 0x2020, SP, &NO_TABLES, Thread::NotAnM, h);
        assert_eq!(d, Decision::NotOurs);
        assert!(passes_on(other, d));
        let d = decide(SIGNAL, 0x2020, SP, &NO_TABLES, Thread::NotAnM, h);
        assert_eq!(d, Decision::NotOurs);
        assert!(!passes_on(SIGNAL, d), "the runtime's own signal, late");
    }

    #[test]
    fn reason_indices_are_distinct_and_in_order() {
        for (i, r) in RetryReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{}", r.name());
        }
    }
}
