//! Goroutines and the threads that run them.
//!
//! A goroutine is a [`GoroutineContext`] and a [`Stack`]. A worker thread
//! (an M) runs one by calling the module's `switch_to` stub, which returns
//! at the goroutine's next runtime call with the request word; the worker
//! serves the request on its own stack and switches back. The calling
//! thread watches the run and ends it when it outlives the timeout.

pub mod stack;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use preempt_jit::abi::{decode_fault, FaultCode, GoroutineContext, RuntimeOp};
use preempt_jit::fault::{report, Fault};
use preempt_jit::module::Module;
use preempt_signals::handler::{gettid, AltStack};

use crate::gc::heap::{AllocError, Heap};
use crate::traceback::{walk, StackMemory};
use crate::{Outcome, Output, RunConfig};
pub use stack::Stack;

/// A goroutine: what generated code sees, and its stack.
#[derive(Debug)]
pub struct Goroutine {
    pub id: u64,
    pub ctx: Box<GoroutineContext>,
    pub stack: Stack,
}

impl StackMemory for Stack {
    fn read(&self, addr: usize) -> Option<u64> {
        // SAFETY: only words inside the usable stack mapping are read, and
        // the goroutine is parked (nothing writes them concurrently).
        self.contains_word(addr)
            .then(|| unsafe { (addr as *const u64).read() })
    }
}

impl Goroutine {
    /// A goroutine that will run the function at `entry` with `args`.
    pub fn new(
        id: u64,
        module: &Module,
        entry: usize,
        args: &[u64],
        stack_size: usize,
    ) -> std::io::Result<Goroutine> {
        let stack = Stack::new(stack_size)?;
        let mut ctx = Box::new(GoroutineContext::new());
        ctx.stack_lo = stack.lo() as u64;
        ctx.stack_hi = stack.hi() as u64;
        ctx.stack_guard = stack.guard() as u64;
        // Arguments at a 16-byte aligned sp0 and the entry stub's address
        // below them: switch_to "returns" into the entry stub with the
        // function's address (ctx.result) in the result register.
        let sp0 = (stack.hi() - 8 * args.len() - 64) & !15;
        // SAFETY: all written words lie in the fresh stack below its top.
        unsafe {
            for (i, &a) in args.iter().enumerate() {
                ((sp0 + 8 * i) as *mut u64).write(a);
            }
            ((sp0 - 8) as *mut u64).write(module.stubs.goroutine_entry as u64);
        }
        ctx.sp = (sp0 - 8) as u64;
        ctx.result = entry as u64;
        Ok(Goroutine { id, ctx, stack })
    }

    /// Operand `i` of the current runtime call.
    pub fn operand(&self, i: usize) -> u64 {
        self.stack
            .read(self.ctx.sp as usize + 8 + 8 * i)
            .unwrap_or(0)
    }

    /// The return address of the current runtime call.
    pub fn return_pc(&self) -> usize {
        self.stack.read(self.ctx.sp as usize).unwrap_or(0) as usize
    }

    /// Frames of the parked goroutine, innermost first.
    pub fn traceback(&self, module: &Module) -> Vec<preempt_jit::fault::Frame> {
        let fp = self.ctx.saved[preempt_jit::isa::frame_pointer(module.arch) as usize] as usize;
        walk(module, &self.stack, self.return_pc(), fp)
    }
}

/// Runs `module`'s `@main` to completion, a fault, or the timeout.
pub fn run(module: Arc<Module>, cfg: &RunConfig, out: Output) -> Outcome {
    let (done_tx, done_rx) = mpsc::channel();
    let tid = Arc::new(AtomicI32::new(0));
    let worker = {
        let (module, cfg, out, tid) = (module.clone(), cfg.clone(), out.clone(), tid.clone());
        std::thread::Builder::new()
            .name("preempt-m0".into())
            .spawn(move || {
                tid.store(gettid(), Ordering::SeqCst);
                cfg.stats.worker_tid.store(gettid(), Ordering::SeqCst);
                let outcome = run_main_goroutine(&module, &cfg, &out);
                let _ = done_tx.send(outcome);
            })
    };
    if let Err(e) = worker {
        return Outcome {
            status: 1,
            stderr: format!("fatal error: cannot start a worker thread: {e}\n"),
        };
    }
    let outcome = match cfg.timeout {
        Some(t) => match done_rx.recv_timeout(t) {
            Ok(o) => o,
            Err(_) => watchdog_report(&module, cfg, tid.load(Ordering::SeqCst), t),
        },
        None => done_rx.recv().unwrap_or_else(|_| Outcome {
            status: 1,
            stderr: "fatal error: the worker thread died\n".into(),
        }),
    };
    out.flush();
    outcome
}

/// What the watchdog says about a program that did not finish.
fn watchdog_report(module: &Module, cfg: &RunConfig, tid: i32, timeout: Duration) -> Outcome {
    let mut msg = format!(
        "preempt: watchdog: the program did not finish within {} (--timeout)\n\ngoroutine 1 [running]:\n",
        humanize(timeout)
    );
    let sample = (tid != 0)
        .then(|| preempt_signals::sampler::sample(tid, Duration::from_secs(1)))
        .flatten();
    match sample {
        Some(s) => msg.push_str(&describe_pc(module, &cfg.file, s.pc)),
        None => msg.push_str("\t(its thread did not answer the sampling signal)\n"),
    }
    Outcome {
        status: 3,
        stderr: msg,
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// Names the function, block and instruction at `pc`, or says the thread
/// is outside JIT code.
pub fn describe_pc(module: &Module, file: &str, pc: usize) -> String {
    let t = &module.tables;
    let Some(f) = t.function_at(pc) else {
        return match t.stub_at(pc) {
            Some(s) => format!("\tin the runtime stub {} (pc {pc:#x})\n", s.name),
            None => format!("\tin the runtime (pc {pc:#x}, outside JIT code)\n"),
        };
    };
    let mut s = format!("@{}", f.name);
    match t.block_at(pc) {
        Some(b) => s.push_str(&format!(
            " in block {}",
            module.names.block(b.func, b.block)
        )),
        None => s.push_str(" in its prologue or out-of-line code"),
    }
    s.push_str(&format!(
        " (pc {pc:#x} = @{}+{:#x})\n",
        f.name,
        pc - f.start
    ));
    let span = t
        .inst_at(pc)
        .and_then(|i| module.names.inst_span(i))
        .unwrap_or(f.span);
    s.push_str(&format!("\t{file}:{}:{}\n", span.line, span.col));
    s
}

fn fault_outcome(fault: Fault, g: &Goroutine, module: &Module, cfg: &RunConfig) -> Outcome {
    Outcome {
        status: 1,
        stderr: report(&fault, g.id, &g.traceback(module), &cfg.file),
    }
}

fn run_main_goroutine(module: &Module, cfg: &RunConfig, out: &Output) -> Outcome {
    let _alt = AltStack::install();
    let Some(main) = module.main() else {
        return Outcome {
            status: 2,
            stderr: "preempt: the program has no @main\n".into(),
        };
    };
    let mut g = match Goroutine::new(1, module, main, &[], cfg.stack_size) {
        Ok(g) => g,
        Err(e) => {
            return Outcome {
                status: 1,
                stderr: format!("fatal error: cannot map a goroutine stack: {e}\n"),
            }
        }
    };
    let heap = Heap::new();
    // SAFETY: switch_to is the stub emitted for this signature; the module
    // outlives every call.
    let switch_to: extern "C" fn(*mut GoroutineContext) -> u64 = unsafe {
        std::mem::transmute::<usize, extern "C" fn(*mut GoroutineContext) -> u64>(
            module.stubs.switch_to,
        )
    };
    loop {
        let request = switch_to(&mut *g.ctx);
        let payload = (request >> 32) as u32;
        g.ctx.result = 0;
        let Some(op) = RuntimeOp::from_u32(request as u32) else {
            return Outcome {
                status: 1,
                stderr: format!("fatal error: unknown runtime request {request:#x}\n"),
            };
        };
        match op {
            RuntimeOp::Exit => return Outcome::success(),
            RuntimeOp::StackCheck => return fault_outcome(Fault::StackOverflow, &g, module, cfg),
            RuntimeOp::Fault => {
                let (code, msg) = decode_fault(payload);
                let message = || module.pool.messages.get(msg as usize).cloned().unwrap_or_default();
                let fault = match code {
                    Some(FaultCode::IndexOutOfRange) => Fault::IndexOutOfRange {
                        index: g.operand(0) as i64,
                        len: g.operand(1) as i64,
                    },
                    Some(FaultCode::NilDereference) => Fault::NilDereference,
                    Some(FaultCode::SlotTypeMismatch) => Fault::SlotTypeMismatch,
                    Some(FaultCode::DivideByZero) => Fault::DivideByZero,
                    Some(FaultCode::AssertionFailed) => Fault::AssertionFailed(message()),
                    Some(FaultCode::Panic) | None => Fault::Panic(message()),
                };
                return fault_outcome(fault, &g, module, cfg);
            }
            RuntimeOp::Print => {
                let Some(desc) = module.pool.prints.get(payload as usize) else {
                    continue;
                };
                let values: Vec<u64> = (0..desc.arg_types.len()).map(|i| g.operand(i)).collect();
                out.print_line(&desc.render(&values));
            }
            RuntimeOp::New => match heap.alloc(g.operand(0) as i64) {
                Ok(p) => g.ctx.result = p as u64,
                Err(AllocError::Negative) => {
                    return fault_outcome(Fault::NegativeSize(g.operand(0) as i64), &g, module, cfg)
                }
                Err(AllocError::OutOfMemory) => return fault_outcome(Fault::OutOfMemory, &g, module, cfg),
            },
            RuntimeOp::Now => g.ctx.result = monotonic_nanos(),
            RuntimeOp::Procs => g.ctx.result = cfg.procs as u64,
            RuntimeOp::Gc | RuntimeOp::SetGcPercent | RuntimeOp::Yield => {}
            RuntimeOp::LockThread | RuntimeOp::UnlockThread => {}
            RuntimeOp::Sleep => {
                let us = g.operand(0) as i64;
                if us > 0 {
                    std::thread::sleep(Duration::from_micros(us as u64));
                }
            }
            RuntimeOp::AsyncPreempt => {
                // One goroutine, nothing else to run: resume it at once.
                cfg.stats.async_preempts.fetch_add(1, Ordering::Relaxed);
            }
            RuntimeOp::Goexit => {
                // Go reports this once the main goroutine is gone: no frames.
                return Outcome {
                    status: 1,
                    stderr: report(&Fault::MainGoexit, g.id, &[], &cfg.file),
                };
            }
            other => {
                return Outcome {
                    status: 2,
                    stderr: format!(
                        "preempt: {other:?} needs the goroutine scheduler, which this build does not have yet\n"
                    ),
                }
            }
        }
    }
}

/// Monotonic nanoseconds (CLOCK_MONOTONIC), as `now` returns.
pub fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
