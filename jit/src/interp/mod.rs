//! The reference interpreter: the semantics oracle for every differential
//! test.
//!
//! Random programs must give the same stdout and exit status here and on
//! the JIT, so this module values being obviously right over being fast;
//! it is still not slow, because nothing is looked up while a program
//! runs. The pieces, in the order a program meets them:
//!
//! 1. **Lowering** (`code.rs`): each function becomes a vector
//!    of small copyable ops with operands resolved to frame slots (registers
//!    first, then the function's constants), fall-through made explicit,
//!    and print formats pre-split. No allocation or hashing happens per
//!    executed instruction, except where the program asks for it (`new`,
//!    `print`, runtime requests).
//!
//! 2. **The machine** ([`Interp`] and [`Goroutine`]): a goroutine is data,
//!    not a host thread or a host stack. Its frames (function, block, pc,
//!    register base) live in a vector and its registers in another, so PIR
//!    recursion never recurses in Rust and a million frames are just memory.
//!    [`Interp::run`] executes one goroutine until one of:
//!
//!    - the budget of ops runs out ([`Event::Preempted`]): the goroutine is
//!      at an instruction boundary and resumes exactly there;
//!    - it needs the runtime ([`Event::Request`]): spawn, channels,
//!      timers, `select`, `sleep`, `now`, `yield`, `gc`, foreign calls,
//!      and `print` (so that lines of different goroutines are written
//!      whole, by whoever owns stdout). The goroutine stays *at* the
//!      instruction until the scheduler finishes it with
//!      [`Interp::complete`] (handing over a result such as a received
//!      value) or [`Interp::complete_select`] (naming the arm taken), or
//!      reports a fault there with [`Interp::report`]. Running it again
//!      without completing simply asks again;
//!    - the heap wants a collection before a `new` ([`Event::Collect`]):
//!      the heap cannot see the other goroutines' registers, so the holder
//!      of all goroutines collects and runs the goroutine again;
//!    - its outermost function returns ([`Event::Exited`]) or it faults
//!      ([`Event::Fault`], the goroutine left at the faulting instruction).
//!
//!    Code, globals and heap belong to the [`Interp`], shared by all
//!    goroutines: the code is behind an `Arc`, globals are atomics (plain
//!    accesses relaxed, `.atomic` ones sequentially consistent) and the heap
//!    is one [`Heap`] value, so a multi-threaded scheduler can later put the
//!    mutable part behind a lock without touching the run loop.
//!
//! 3. **The single-goroutine driver** ([`run_program`]): runs `@main` to the
//!    end, carrying out the requests that make sense with one goroutine and
//!    no scheduler: `print` writes, `gc` collects, `setgcpercent` sets the
//!    goal, `yield`, `lockthread` and `unlockthread` do nothing, `sleep`
//!    and `ccall sleep` sleep, `ccall spin` spins, the signal `ccall`s do
//!    nothing (there is no preemption signal here), `now` reads the
//!    monotonic clock, `procs` answers [`InterpConfig::procs`], and `goexit`
//!    from `@main` is `fatal error: no goroutines (main called
//!    runtime.Goexit) - deadlock!` (there is no other goroutine). `spawn`,
//!    `chan`, `send`, `recv`, `close`, `after`, `notify` and a `select` with
//!    a channel arm end the run with [`End::NeedsRuntime`].
//!
//! # The stack
//!
//! A goroutine's stack is [`InterpConfig::stack_size`] bytes (64 MiB by
//! default). Each frame is charged what a JIT frame of the function would
//! roughly take ([`frame_bytes`]): 32 bytes (return address, frame pointer,
//! spill space) + 8 per register (parameters included) + 8 per argument of
//! the function's widest `call`. A call that would pass the limit is
//! `fatal error: stack overflow`; the traceback's innermost frame is then the
//! function that could not be entered, at its `func @name` position (where
//! a JIT's prologue stack check fails, and where Go's traceback points).
//!
//! # Reports
//!
//! A fault is reported with [`fault::report`] for goroutine 1 (the driver)
//! or the goroutine's id, frames innermost first: function, block
//! ([`Function::block_name`](crate::ir::Function::block_name)) and the
//! position of the faulting instruction (of the `call`, in outer frames).
//! Exit status 1 for every fault.
//!
//! # Choices where IR.md is silent
//!
//! - The heap has a limit ([`InterpConfig::heap_limit`], 4 GiB of live
//!   objects by default, counted as the JIT lays them out: 16 bytes per
//!   object plus 16 per slot);
//!   passing it, even with one huge `new`, is `fatal error: runtime: out of
//!   memory` ([`Fault::OutOfMemory`]).
//! - `sleep` and `ccall sleep|spin` with a negative or zero duration return
//!   at once, as Go's `time.Sleep` does.
//! - A format with fewer `{}` than operands ignores the extra operands, one
//!   with more leaves the extra `{}` as written (neither verifies).
//! - Write errors on stdout are ignored, as `fmt.Println`'s are.

mod code;
mod heap;
mod machine;
mod value;

use std::io::Write;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use code::{frame_bytes, FRAME_BASE_BYTES};
pub use heap::{AllocError, Heap, HeapStats, MIN_NEXT_GC, OBJECT_HEADER_BYTES, SLOT_BYTES};
pub use machine::{Event, Goroutine, Interp, Position, Request, SelectArm, StopAt, StopRequested};
pub use value::{ChanId, Value};

use crate::fault::{self, Fault};
use crate::ir::{self, ForeignFn, Opcode, Program};

/// The default stack size of a goroutine: 64 MiB.
pub const DEFAULT_STACK_SIZE: u64 = 64 << 20;

/// The default limit of the live heap: 4 GiB.
pub const DEFAULT_HEAP_LIMIT: u64 = crate::abi::DEFAULT_HEAP_LIMIT;

/// How the interpreter runs a program.
#[derive(Clone, Debug)]
pub struct InterpConfig {
    /// Bytes of stack per goroutine (see the module docs for what a frame
    /// costs).
    pub stack_size: u64,
    /// What `procs` returns.
    pub procs: i64,
    /// The initial `setgcpercent` (negative: no automatic collection).
    pub gc_percent: i64,
    /// Bytes of live heap beyond which `new` is out of memory.
    pub heap_limit: u64,
    /// The file name reports print.
    pub file: String,
    /// Where the running goroutine is, for a watchdog: on every block entry
    /// (and on return into a caller) the interpreter stores
    /// `(function index << 32) | block index` here, relaxed.
    pub watchdog: Option<Arc<AtomicU64>>,
}

impl Default for InterpConfig {
    fn default() -> InterpConfig {
        InterpConfig {
            stack_size: DEFAULT_STACK_SIZE,
            procs: 1,
            gc_percent: 100,
            heap_limit: DEFAULT_HEAP_LIMIT,
            file: "prog.pir".to_string(),
            watchdog: None,
        }
    }
}

impl InterpConfig {
    /// The defaults, with the program's `set procs` and `set gc_percent`
    /// applied (command-line flags then override fields as they like).
    pub fn for_program(prog: &Program) -> InterpConfig {
        let mut cfg = InterpConfig::default();
        if let Some(p) = prog.settings.procs {
            cfg.procs = p;
        }
        if let Some(p) = prog.settings.gc_percent {
            cfg.gc_percent = p;
        }
        cfg
    }
}

/// How a run of the single-goroutine driver ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum End {
    /// `@main` returned.
    Returned,
    /// A fault ended the program.
    Faulted(Fault),
    /// The program reached an operation only the goroutine runtime can
    /// carry out.
    NeedsRuntime { op: Opcode, position: Position },
    /// The program could not be set up (no `@main`, or a malformed
    /// instruction that a verified program never has).
    Invalid(ir::Error),
}

/// The result of [`run_program`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Outcome {
    /// The process exit status: 0 when `@main` returned, 1 after a fault, 2
    /// when the program needs the runtime or could not be set up.
    pub status: i32,
    /// What goes to stderr, if anything.
    pub report: Option<String>,
    pub end: End,
}

/// The monotonic clock `now` reads, in nanoseconds.
pub fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec, and CLOCK_MONOTONIC exists
    // on every system this crate supports; the call writes only `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec)
}

fn sleep_micros(us: i64) {
    if us > 0 {
        std::thread::sleep(Duration::from_micros(us as u64));
    }
}

fn spin_micros(us: i64) {
    if us > 0 {
        let until = Instant::now() + Duration::from_micros(us as u64);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

/// Runs `prog` as one goroutine, `@main`, writing what it prints to
/// `stdout` (flushed before returning). See the module docs for what each
/// runtime operation does here.
pub fn run_program(prog: &Program, cfg: &InterpConfig, stdout: &mut dyn Write) -> Outcome {
    let mut interp = match Interp::new(prog, cfg) {
        Ok(i) => i,
        Err(e) => {
            return Outcome {
                status: 2,
                report: Some(format!("{}:{}: {}\n", cfg.file, e.span, e.message)),
                end: End::Invalid(e),
            }
        }
    };
    let mut g = interp.main_goroutine();
    let outcome = loop {
        let req = match interp.run(&mut g, u64::MAX) {
            Event::Preempted | Event::PreemptionPoint | Event::Interrupted => continue,
            Event::Collect => {
                interp.collect([&g]);
                continue;
            }
            Event::Exited => {
                break Outcome {
                    status: 0,
                    report: None,
                    end: End::Returned,
                }
            }
            Event::Fault(f) => {
                break Outcome {
                    status: 1,
                    report: Some(interp.report(&g, &f)),
                    end: End::Faulted(f),
                }
            }
            Event::Request(req) => req,
        };
        let result = match req {
            Request::Print(text) => {
                let _ = stdout.write_all(text.as_bytes());
                None
            }
            Request::Yield | Request::LockThread | Request::UnlockThread => None,
            Request::Gc => {
                interp.collect([&g]);
                None
            }
            Request::SetGcPercent { percent } => {
                interp.set_gc_percent(percent);
                None
            }
            Request::Sleep { micros }
            | Request::CCall {
                func: ForeignFn::Sleep,
                arg: Some(micros),
            } => {
                let _ = stdout.flush();
                sleep_micros(micros);
                None
            }
            Request::CCall {
                func: ForeignFn::Spin,
                arg: Some(micros),
            } => {
                spin_micros(micros);
                None
            }
            Request::CCall { .. } => None,
            Request::Now => Some(Value::int(monotonic_ns())),
            Request::Procs => Some(Value::int(cfg.procs)),
            Request::Goexit => {
                // Main is gone and there is no other goroutine: Go has no
                // goroutine left to show a traceback of.
                let f = Fault::MainGoexit;
                break Outcome {
                    status: 1,
                    report: Some(fault::report(&f, g.id(), &[], &cfg.file)),
                    end: End::Faulted(f),
                };
            }
            other => {
                let op = other.opcode();
                let Some(position) = interp.position(&g) else {
                    continue;
                };
                let (func, block) = (&prog.funcs[position.func.index()], position.block);
                break Outcome {
                    status: 2,
                    report: Some(format!(
                        "{}:{}: '{op}' needs the goroutine runtime, which the interpreter's single-goroutine driver does not have (in @{}, block {})\n",
                        cfg.file,
                        position.span,
                        func.name,
                        func.block_name(block),
                    )),
                    end: End::NeedsRuntime { op, position },
                };
            }
        };
        interp.complete(&mut g, result);
    };
    let _ = stdout.flush();
    outcome
}
