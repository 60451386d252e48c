//! The roots of the JIT heap, and their contract with the stubs.
//!
//! Read only while the world is stopped, so that nothing changes under
//! the scan:
//!
//! 1. **Ref globals**, precisely: the module knows which globals are refs.
//! 2. **Every goroutine's stack**, conservatively: each aligned word from
//!    the goroutine's saved SP (`ctx.sp`) up to the top of its stack. A
//!    word that points into an object (anywhere in it) keeps the object;
//!    anything else is ignored. No frame layouts or stack maps are needed,
//!    and an integer that happens to look like a pointer only keeps an
//!    object one cycle longer.
//! 3. **The registers a stopped goroutine left in its context**: `rt_call`
//!    saves every allocatable register and the frame pointer in
//!    `ctx.saved` before it switches to the scheduler; they are scanned
//!    conservatively. (`ctx.result` and `ctx.result2` are not: the runtime
//!    writes them just before it resumes a goroutine, and the result
//!    register is cleared when the goroutine stops again; `result2` keeps a
//!    stale copy that would only keep garbage.)
//! 4. **A result waiting to be delivered**: a goroutine preempted just as
//!    its runtime call completed (a `new`, say) gets the result when it
//!    resumes; until then the object is referenced only from the
//!    goroutine's delivery slot.
//!
//! The contract with the stubs is that everything a stopped goroutine
//! holds is in one of those places. A goroutine stops only in a runtime
//! call (`rt_call`: registers in `ctx.saved`, SP in `ctx.sp`) or in the
//! preemption stub, which pushes every register on the
//! goroutine's own stack *below the interrupted SP* and then makes a
//! runtime call from there: `ctx.sp` is then below the saved registers, so
//! the stack scan, which starts at `ctx.sp`, covers them. A stub that kept
//! a register anywhere else (in a thread-local, above the stack top, in a
//! register the runtime call does not save) would hide a ref from the
//! collector. A fresh goroutine's arguments sit above its `ctx.sp` too.
//!
//! Interpreted goroutines are not on this heap; channels carry only
//! integers; so nothing else can hold a ref.

use std::sync::atomic::Ordering;

use std::sync::Arc;

use preempt_jit::module::Module;

use crate::g::{Exec, Status, G};
use crate::traceback::StackMemory;

/// What a scan walks: the module's globals and every goroutine's stack,
/// registers and delivered value.
#[derive(Debug)]
pub struct Roots<'a> {
    pub module: &'a Module,
    pub goroutines: Vec<Arc<G>>,
}

/// Where a root was found, for the verifier's reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Root {
    Global(usize),
    Stack {
        goroutine: u64,
        addr: usize,
    },
    Register {
        goroutine: u64,
        reg: usize,
    },
    /// An argument of a goroutine that has not run yet (it has no stack).
    Argument {
        goroutine: u64,
        index: usize,
    },
    Delivered {
        goroutine: u64,
    },
}

impl Root {
    /// Words a precise walk may trust as refs (a conservative root may be
    /// a stale word that only looks like one).
    pub fn is_precise(self) -> bool {
        matches!(self, Root::Global(_))
    }

    pub fn describe(self, module: &Module) -> String {
        match self {
            Root::Global(i) => {
                let name =
                    (module.names.globals.get(i).cloned()).unwrap_or_else(|| format!("#{i}"));
                format!("global @{name}")
            }
            Root::Stack { goroutine, addr } => {
                format!("the stack of goroutine {goroutine} (word at {addr:#x})")
            }
            Root::Register { goroutine, reg } => {
                let name = preempt_jit::isa::reg_name(module.arch, reg as u8);
                format!("register {name} of goroutine {goroutine}")
            }
            Root::Argument { goroutine, index } => {
                format!("argument {index} of goroutine {goroutine}, not yet started")
            }
            Root::Delivered { goroutine } => {
                format!("the result waiting for goroutine {goroutine}")
            }
        }
    }
}

/// Which root classes to scan (fault injection leaves one out).
#[derive(Clone, Copy, Debug)]
pub struct Classes {
    pub globals: bool,
}

impl Default for Classes {
    fn default() -> Classes {
        Classes { globals: true }
    }
}

/// Zeroes every goroutine's stack below its saved SP, where only the
/// words of returned frames lie (`--gc-verify`, at mark start).
///
/// The stack scan is conservative, so a slot a frame leaves unwritten
/// (alignment padding, the arguments of a call made only on a fault
/// path, a spill slot before its first store) shows whatever an earlier,
/// returned frame left there: registers the preemption stub pushed, a
/// caller's saved register, an object the goroutine dropped long ago.
/// For the collector such a word only keeps a dead object a cycle longer.
/// For the verifier it is a false report: a goroutine that returns past a
/// dead ref before mark start and calls deeper again during marking
/// shows the verifier, at mark termination, a word the mark-start scan
/// never saw, to an object that nothing kept. With the dead part zeroed
/// at mark start, every stack word the verifier reads was either scanned
/// at mark start (so its object is marked) or written during marking,
/// a value the program held while the barrier was on, which the snapshot
/// or allocation during marking has marked; a report is then a real
/// loss. (Freed stacks are handed out zeroed in this mode for the same
/// reason: [`crate::stack::StackPool::clearing_reused`].)
///
/// # Safety
///
/// The world is stopped: no goroutine runs, so nothing lies below a
/// goroutine's saved SP (generated code keeps nothing there; the stubs
/// push below SP only while they run, and runtime calls run on their M's
/// own stack, foreign code included).
pub unsafe fn clear_dead_stacks(roots: &Roots<'_>) {
    for g in &roots.goroutines {
        if g.status() == Status::Dead {
            continue;
        }
        // SAFETY: the world is stopped (the caller's contract): no thread
        // runs this goroutine or changes its execution state meanwhile.
        if let Exec::Jit { ctx, stack, .. } = unsafe { g.exec_stopped() } {
            if stack.size() != 0 {
                // SAFETY: the goroutine is stopped with its SP at ctx.sp;
                // below it lie only returned frames (the contract above).
                unsafe { stack.clear_below((ctx.sp as usize) & !7) };
            }
        }
    }
}

/// Calls `f` with every root word. The world must be stopped.
pub fn scan(roots: &Roots<'_>, classes: Classes, mut f: impl FnMut(Root, u64)) {
    let module = roots.module;
    if classes.globals {
        for (i, w) in module.globals.words().iter().enumerate() {
            if module.names.global_is_ref.get(i).copied().unwrap_or(false) {
                f(Root::Global(i), w.load(Ordering::SeqCst));
            }
        }
    }
    for g in &roots.goroutines {
        if g.status() == Status::Dead {
            continue;
        }
        let id = g.id;
        if let Some(v) = g.delivered_value() {
            f(Root::Delivered { goroutine: id }, v);
        }
        // SAFETY: the world is stopped (the caller's contract): no thread
        // runs this goroutine or changes its execution state meanwhile.
        let Exec::Jit { ctx, stack, args } = (unsafe { g.exec_stopped() }) else {
            continue;
        };
        for (index, &v) in args.iter().enumerate() {
            f(
                Root::Argument {
                    goroutine: id,
                    index,
                },
                v,
            );
        }
        for (reg, &v) in ctx.saved.iter().enumerate() {
            f(Root::Register { goroutine: id, reg }, v);
        }
        let lo = (ctx.sp as usize) & !7;
        let hi = (ctx.stack_hi as usize).min(stack.hi());
        for addr in (lo..hi).step_by(8) {
            if let Some(v) = stack.read(addr) {
                f(
                    Root::Stack {
                        goroutine: id,
                        addr,
                    },
                    v,
                );
            }
        }
    }
}
