//! How goroutines execute: machine code (JIT) or the reference
//! interpreter, behind one interface the scheduler drives.
//!
//! [`Engine::resume`] runs a goroutine until it needs the scheduler and
//! says why as an [`Op`]; the scheduler serves it and, when the goroutine
//! resumes, whatever it left in the goroutine's [`Resume`]
//! becomes the operation's result.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use preempt_jit::abi::{decode_fault, FaultCode, GoroutineContext, RuntimeOp, TAG_FREED};
use preempt_jit::code::place::Place;
use preempt_jit::fault::{Fault, Frame};
use preempt_jit::interp::{self, Interp, Request, Value};
use preempt_jit::ir::{BlockId, ForeignFn, FuncId};
use preempt_jit::module::{Module, SelectArmDesc};

use super::harness::{Harness, SwitchTo};
use crate::g::{Exec, Resume, G};
use crate::stack::{Stack, StackPool};
use crate::traceback::{walk, StackMemory};

/// A channel, by its index in the program's channel table.
pub type ChanRef = u32;

/// One case of a select, before its channel is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectCase {
    Recv(ChanRef),
    Send(ChanRef, i64),
    Default,
}

/// Why a goroutine stopped running its code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Its function returned.
    Exit,
    /// The JIT prologue's stack check failed: overflow, or a poisoned
    /// guard (a cooperative preemption point).
    StackCheck,
    /// The interpreter reached a function entry with a stop requested.
    PreemptionPoint,
    /// The interpreter reached an instruction boundary with a stop
    /// requested, in a mode that stops anywhere (its stand-in for the
    /// signal, poll, trap and patch mechanisms).
    Interrupted,
    /// The interpreter used up its budget (not a preemption point).
    Budget,
    /// The interpreter wants a collection before a `new`.
    Collect,
    /// The preemption stub, which async, poll, trap and patch enter.
    PreemptStub,
    Fault(Fault),
    Print(String),
    New(i64),
    Spawn {
        func: FuncId,
        args: SpawnArgs,
    },
    Yield,
    Goexit,
    Gc,
    SetGcPercent(i64),
    Sleep(i64),
    Now,
    LockThread,
    UnlockThread,
    Procs,
    MakeChan(i64),
    Send(ChanRef, i64),
    Recv(ChanRef),
    Close(ChanRef),
    After(i64),
    Notify(ChanRef),
    Select(Vec<SelectCase>),
    CCall(ForeignFn, i64),
}

/// The arguments of a `spawn`, as the engine that made it holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpawnArgs {
    /// Machine words (JIT).
    Words(Vec<u64>),
    /// Typed values (interpreter).
    Values(Vec<Value>),
}

/// A JIT channel value is its table index plus one (never 0, as chans are
/// never nil).
pub fn jit_chan(handle: u64) -> ChanRef {
    handle.wrapping_sub(1) as ChanRef
}

pub fn jit_chan_handle(c: ChanRef) -> u64 {
    u64::from(c) + 1
}

/// What runs the program.
#[derive(Debug)]
pub enum Engine {
    Jit {
        module: Arc<Module>,
        switch_to: SwitchTo,
        /// The harness watching the run, which enters goroutines its own
        /// way (see [`Harness::switch_into`]).
        harness: Option<Arc<dyn Harness>>,
    },
    /// The interpreter's code, globals and heap are shared by every
    /// goroutine; one goroutine runs at a time (under the lock), for at
    /// most a budget of instructions before others get a turn. `position`
    /// is where the running one is (`function << 32 | block`, written by
    /// the interpreter at every block entry); `names` names them.
    Interp {
        interp: Box<Mutex<Interp>>,
        position: Arc<std::sync::atomic::AtomicU64>,
        names: Box<preempt_jit::module::Names>,
        turns: Box<Turns>,
        /// Where a stop request is honoured: function entries under
        /// `coop`, every instruction boundary under the other modes (the
        /// interpreter is their oracle too).
        stop_at: interp::StopAt,
    },
}

/// Interpreted instructions per turn.
const INTERP_BUDGET: u64 = 20_000;

/// Fair turns at the interpreter lock: a goroutine that used up its budget
/// lets a waiting one in before it takes the lock again (a plain mutex
/// would let the thread that just released it win again and again).
#[derive(Debug, Default)]
pub struct Turns {
    waiting: std::sync::atomic::AtomicUsize,
    taken: std::sync::atomic::AtomicU64,
}

impl Turns {
    fn lock<'a>(&self, m: &'a Mutex<Interp>) -> std::sync::MutexGuard<'a, Interp> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.taken.fetch_add(1, Ordering::AcqRel);
        g
    }

    /// After a turn: if others wait, let one of them take the lock first.
    fn pass(&self) {
        if self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let seen = self.taken.load(Ordering::Acquire);
        for _ in 0..10_000 {
            if self.taken.load(Ordering::Acquire) != seen {
                return;
            }
            std::thread::yield_now();
        }
    }
}

impl Engine {
    pub fn jit(module: Arc<Module>, harness: Option<Arc<dyn Harness>>) -> Engine {
        // SAFETY: switch_to is the stub emitted for this signature; the
        // module outlives every call (the engine holds it).
        let switch_to = unsafe {
            std::mem::transmute::<usize, extern "C" fn(*mut GoroutineContext) -> u64>(
                module.stubs.switch_to,
            )
        };
        Engine::Jit {
            module,
            switch_to,
            harness,
        }
    }

    /// A fresh goroutine's execution state, running `func` with `args`
    /// (under the JIT, with no stack yet: [`Engine::bind_stack`] gives it
    /// one when it first runs).
    pub fn new_exec(&self, id: u64, func: FuncId, args: SpawnArgs) -> Exec {
        match self {
            Engine::Jit { module, .. } => {
                let args = match args {
                    SpawnArgs::Words(w) => w,
                    SpawnArgs::Values(_) => Vec::new(),
                };
                let mut ctx = Box::new(GoroutineContext::new());
                ctx.result = module.functions[func.index()] as u64;
                Exec::Jit {
                    ctx,
                    stack: Stack::none(),
                    args,
                }
            }
            Engine::Interp { interp, .. } => {
                let i = interp.lock().unwrap_or_else(|e| e.into_inner());
                let values = match args {
                    SpawnArgs::Values(v) => v,
                    SpawnArgs::Words(_) => Vec::new(),
                };
                Exec::Interp {
                    g: Box::new(i.goroutine(id, func, &values)),
                    pending: false,
                }
            }
        }
    }

    /// Makes `g`, a dead goroutine's record that nothing else holds,
    /// goroutine `id` (see [`G::renew`]); false if it cannot be (an
    /// interpreted program), and then `args` are untouched.
    pub fn renew(
        &self,
        g: &mut G,
        id: u64,
        func: FuncId,
        args: &mut SpawnArgs,
        init: impl FnOnce(&mut GoroutineContext),
    ) -> bool {
        match (self, args) {
            (Engine::Jit { module, .. }, SpawnArgs::Words(w)) => {
                g.renew(id, func, module.functions[func.index()] as u64, w, init)
            }
            _ => false,
        }
    }

    /// The largest frame of the program's JIT functions (0 when
    /// interpreted).
    pub fn max_frame(&self) -> usize {
        match self {
            Engine::Jit { module, .. } => module.tables.max_frame,
            Engine::Interp { .. } => 0,
        }
    }

    /// Gives `g`, about to run for the first time, a stack from `stacks`,
    /// with its arguments at a 16-byte aligned sp0 and the entry stub's
    /// address below them: `switch_to` "returns" into the entry stub with
    /// the function's address (`ctx.result`) in the result register.
    /// Nothing to do for a goroutine that has one, or an interpreted one.
    ///
    /// # Safety
    ///
    /// The caller owns `g` (see [`G::exec`]), and has not yet published it
    /// as running (the signal handler reads `ctx.stack_lo`).
    pub unsafe fn bind_stack(&self, g: &G, stacks: &StackPool) -> std::io::Result<()> {
        let Engine::Jit { module, .. } = self else {
            return Ok(());
        };
        // SAFETY: the caller owns g.
        let Exec::Jit { ctx, stack, args } = (unsafe { g.exec() }) else {
            return Ok(());
        };
        if stack.size() != 0 {
            return Ok(());
        }
        *stack = stacks.get(stacks.first_size(8 * args.len() + 128))?;
        ctx.stack_lo = stack.lo() as u64;
        ctx.stack_hi = stack.hi() as u64;
        let sp0 = (stack.hi() - 8 * args.len() - 64) & !15;
        // SAFETY: all written words lie in the stack below its top, which
        // no goroutine uses (a fresh stack, or a dead goroutine's).
        unsafe {
            for (i, &a) in args.iter().enumerate() {
                ((sp0 + 8 * i) as *mut u64).write(a);
            }
            ((sp0 - 8) as *mut u64).write(module.stubs.goroutine_entry as u64);
        }
        ctx.sp = (sp0 - 8) as u64;
        *args = Vec::new();
        g.bind_guard(stack.guard() as u64);
        Ok(())
    }

    /// Runs `g` (owned by the caller) until it needs the scheduler,
    /// delivering `resume` first (taken field by field, leaving it empty:
    /// by reference, not by value, because a by-value `Resume` is copied
    /// with 16-byte loads from the 8-byte stores that filled it, a
    /// store-forwarding stall on every switch).
    ///
    /// # Safety
    ///
    /// The caller owns `g` (see [`G::exec`]).
    #[inline(always)]
    pub unsafe fn resume(&self, g: &G, resume: &mut Resume) -> Op {
        // SAFETY: the caller owns g.
        let exec = unsafe { g.exec() };
        match (self, exec) {
            (
                Engine::Jit {
                    module,
                    switch_to,
                    harness,
                },
                Exec::Jit { ctx, stack, .. },
            ) => {
                let (value, arm) = (resume.value.take(), resume.arm.take());
                if let Some(f) = resume.fault.take() {
                    return Op::Fault(f);
                }
                if let Some(v) = value {
                    ctx.result = v;
                    ctx.result2 = v;
                }
                if let Some(arm) = arm {
                    ctx.result = arm as u64;
                }
                let ctx_ptr: *mut GoroutineContext = &mut **ctx;
                let request = match harness {
                    // Through the harness's hook: it may single-step the
                    // goroutine's code to count instruction boundaries.
                    // SAFETY: the caller owns g, whose context this is.
                    Some(h) => unsafe { h.switch_into(*switch_to, ctx_ptr) },
                    None => switch_to(ctx_ptr),
                };
                ctx.result = 0;
                decode_jit(module, ctx, stack, request)
            }
            (
                Engine::Interp {
                    interp,
                    turns,
                    stop_at,
                    ..
                },
                Exec::Interp { g: ig, pending },
            ) => {
                let mut i = turns.lock(interp);
                let resume = std::mem::take(resume);
                if let Some(f) = resume.fault {
                    return Op::Fault(f);
                }
                if std::mem::take(pending) {
                    match resume.arm {
                        Some(arm) => i.complete_select(ig, arm, resume.value.map(|v| v as i64)),
                        None => i.complete(ig, resume.value.map(|v| Value::int(v as i64))),
                    }
                }
                let event = i.run_until(ig, INTERP_BUDGET, &g.stop, *stop_at);
                *pending = matches!(event, interp::Event::Request(_));
                drop(i);
                if event == interp::Event::Preempted {
                    turns.pass();
                }
                decode_interp(event)
            }
            _ => Op::Fault(Fault::Panic(
                "internal error: goroutine of another engine".into(),
            )),
        }
    }

    /// Whether `g`, in the runtime call its prologue's stack check made,
    /// is really short of stack: its SP at the check (the word above the
    /// return address `ctx.sp` points at) below the guard. The check also
    /// fails on a guard poisoned by a stop request that is withdrawn
    /// before the call is served.
    ///
    /// # Safety
    ///
    /// The caller owns `g`.
    pub unsafe fn stack_exhausted(&self, g: &G) -> bool {
        // SAFETY: the caller owns g.
        match unsafe { g.exec() } {
            Exec::Jit { ctx, stack, .. } => (ctx.sp as usize).saturating_add(8) < stack.guard(),
            Exec::Interp { .. } => true,
        }
    }

    /// Gives `g`, in the runtime call its prologue's failed stack check
    /// made with its stack exhausted, a stack twice the size with the
    /// used part copied to it (see [`crate::stack`]); the old one goes
    /// back to `stacks`. The goroutine resumes in its prologue's check,
    /// on the new stack. At the limit, the stack overflows.
    ///
    /// # Safety
    ///
    /// The caller owns `g`, which is in its `StackCheck` runtime call.
    pub unsafe fn grow_stack(&self, g: &G, stacks: &StackPool) -> Result<(), Fault> {
        let Engine::Jit { module, .. } = self else {
            return Err(Fault::StackOverflow);
        };
        // SAFETY: the caller owns g.
        let Exec::Jit { ctx, stack, .. } = (unsafe { g.exec() }) else {
            return Err(Fault::StackOverflow);
        };
        let size = stacks
            .grown_size(stack.size())
            .ok_or(Fault::StackOverflow)?;
        let new = stacks.get(size).map_err(|_| Fault::OutOfMemory)?;
        let fp = preempt_jit::isa::frame_pointer(module.arch) as usize;
        // SAFETY: ctx.sp is the saved SP of a goroutine in a runtime call
        // on `stack`; `new` is larger and fresh from the pool; this M owns
        // the goroutine, and nothing else reads its stack during the call
        // (the module docs of `stack` say why).
        let (sp, frame) =
            unsafe { crate::stack::copy_to(stack, &new, ctx.sp as usize, ctx.saved[fp] as usize) };
        ctx.sp = sp as u64;
        ctx.saved[fp] = frame as u64;
        ctx.stack_lo = new.lo() as u64;
        ctx.stack_hi = new.hi() as u64;
        let old = std::mem::replace(stack, new);
        g.rebind_guard(old.guard() as u64, stack.guard() as u64);
        stacks.put(old);
        Ok(())
    }

    /// Where `g`, in a runtime call, resumes: the preemption stub's resume
    /// address (`in_stub`: the stub's `PreemptStub` call, whichever
    /// mechanism sent it there) or the runtime call's return address.
    /// None for an interpreted goroutine, or a word outside its stack.
    ///
    /// # Safety
    ///
    /// The caller owns `g`, which is in a runtime call.
    pub unsafe fn resume_pc(&self, g: &G, in_stub: bool) -> Option<usize> {
        let Engine::Jit { module, .. } = self else {
            return None;
        };
        // SAFETY: the caller owns g.
        let Exec::Jit { ctx, stack, .. } = (unsafe { g.exec() }) else {
            return None;
        };
        let slot = if in_stub {
            preempt_jit::isa::preempt_stub_resume_slot(module.arch)
        } else {
            0
        };
        let word = (ctx.sp as usize).checked_add(slot)?;
        stack.read(word).map(|w| w as usize)
    }

    /// The JIT context of `g`, for the signal handler (null for an
    /// interpreted goroutine).
    ///
    /// # Safety
    ///
    /// The caller owns `g`.
    pub unsafe fn jit_context(g: &G) -> *mut preempt_jit::abi::GoroutineContext {
        // SAFETY: the caller owns g.
        match unsafe { g.exec() } {
            Exec::Jit { ctx, .. } => &mut **ctx,
            Exec::Interp { .. } => std::ptr::null_mut(),
        }
    }

    /// Completes the current runtime call of `g` with `value` without
    /// resuming it (interpreter values need their type: chans are made by
    /// `chan` and `after`).
    ///
    /// # Safety
    ///
    /// The caller owns `g`.
    pub unsafe fn complete_chan(&self, g: &G, chan: ChanRef) -> Resume {
        match self {
            Engine::Jit { .. } => Resume {
                value: Some(jit_chan_handle(chan)),
                ..Resume::default()
            },
            Engine::Interp { interp, .. } => {
                // SAFETY: the caller owns g.
                if let Exec::Interp { g: ig, pending } = unsafe { g.exec() } {
                    let mut i = interp.lock().unwrap_or_else(|e| e.into_inner());
                    i.complete(ig, Some(Value::chan(interp::ChanId(chan))));
                    *pending = false;
                }
                Resume::default()
            }
        }
    }

    /// Frames of `g`, innermost first (parked, or stopped at a fault).
    ///
    /// # Safety
    ///
    /// The caller owns `g`, or `g` is parked and nothing resumes it
    /// meanwhile (the program is ending).
    pub unsafe fn traceback(&self, g: &G) -> Vec<Frame> {
        // SAFETY: per the contract above.
        if let Some((pc, fp)) = unsafe { self.stopped_in_stub(g) } {
            // SAFETY: per the contract above.
            return unsafe { self.walk_stopped(g, pc, fp) };
        }
        // SAFETY: per the contract above.
        match (self, unsafe { g.exec() }) {
            (Engine::Jit { module, .. }, Exec::Jit { stack, .. }) if stack.size() == 0 => {
                // Not started: where it will (its first block), at its
                // header, as Go shows a new goroutine at its function.
                let f = module.tables.functions.iter().find(|f| f.func == g.func);
                f.map(|f| Frame {
                    func: f.name.clone(),
                    block: format!("{} (not started)", module.names.block(f.func, BlockId(0))),
                    line: f.span.line,
                    col: f.span.col,
                })
                .into_iter()
                .collect()
            }
            (Engine::Jit { module, .. }, Exec::Jit { ctx, stack, .. }) => {
                let fp = ctx.saved[preempt_jit::isa::frame_pointer(module.arch) as usize] as usize;
                let ret = stack.read(ctx.sp as usize).unwrap_or(0) as usize;
                walk(module, stack, ret, fp)
            }
            (Engine::Interp { interp, .. }, Exec::Interp { g: ig, .. }) => {
                let i = interp.lock().unwrap_or_else(|e| e.into_inner());
                i.traceback(ig)
            }
            _ => Vec::new(),
        }
    }

    /// Where `g`, stopped in the preemption stub (by any mechanism but
    /// `coop`, and now waiting to run again), was interrupted: the PC it
    /// resumes at and its frame pointer there. None for a goroutine
    /// stopped anywhere else.
    ///
    /// # Safety
    ///
    /// As [`Engine::traceback`]'s.
    pub unsafe fn stopped_in_stub(&self, g: &G) -> Option<(usize, usize)> {
        let Engine::Jit { module, .. } = self else {
            return None;
        };
        // SAFETY: per the contract above.
        let Exec::Jit { ctx, stack, .. } = (unsafe { g.exec() }) else {
            return None;
        };
        let ret = stack.read(ctx.sp as usize)? as usize;
        match module.place(ret) {
            Place::Stub(s) if s.name == "preempt_stub" => {}
            _ => return None,
        }
        let slot = preempt_jit::isa::preempt_stub_resume_slot(module.arch);
        let pc = stack.read((ctx.sp as usize).checked_add(slot)?)? as usize;
        // The stub keeps the interrupted code's frame pointer, which the
        // runtime call saved in the context.
        let fp = ctx.saved[preempt_jit::isa::frame_pointer(module.arch) as usize] as usize;
        Some((pc, fp))
    }

    /// The frames of `g`, interrupted at `pc` with frame pointer `fp`:
    /// the interrupted instruction's, then its callers'. Only the first
    /// when the PC is in a prologue, epilogue or out-of-line path, where
    /// the frame record may not be the function's own.
    ///
    /// # Safety
    ///
    /// As [`Engine::traceback`]'s.
    unsafe fn walk_stopped(&self, g: &G, pc: usize, fp: usize) -> Vec<Frame> {
        let Engine::Jit { module, .. } = self else {
            return Vec::new();
        };
        let Place::Function {
            func, block, span, ..
        } = module.place(pc)
        else {
            return Vec::new();
        };
        let mut frames = vec![Frame {
            func: func.name.clone(),
            block: block.map_or_else(
                || "(prologue or out-of-line code)".to_string(),
                |b| module.names.block(b.func, b.block).to_string(),
            ),
            line: span.line,
            col: span.col,
        }];
        // SAFETY: per the contract above.
        if let (Some(_), Exec::Jit { stack, .. }) = (block, unsafe { g.exec() }) {
            if let (Some(up), Some(ret)) = (stack.read(fp), stack.read(fp.wrapping_add(8))) {
                frames.extend(walk(module, stack, ret as usize, up as usize));
            }
        }
        frames
    }

    /// Collects the interpreter's heap with every goroutine's roots.
    ///
    /// # Safety
    ///
    /// Called by the owner of a goroutine of this engine; interpreted
    /// goroutines' states are only touched under the interpreter lock,
    /// which this holds while it reads them.
    pub unsafe fn collect(&self, all: &[Arc<G>]) {
        if let Engine::Interp { interp, .. } = self {
            let mut i = interp.lock().unwrap_or_else(|e| e.into_inner());
            let states: Vec<&interp::Goroutine> = all
                .iter()
                // SAFETY: see the contract above.
                .filter_map(|g| match unsafe { g.exec() } {
                    Exec::Interp { g, .. } => Some(&**g),
                    Exec::Jit { .. } => None,
                })
                .collect();
            i.collect(states);
        }
    }

    /// Where the running interpreted goroutine is, as "@f in block b".
    pub fn interp_position(&self) -> Option<String> {
        let Engine::Interp {
            position, names, ..
        } = self
        else {
            return None;
        };
        let at = position.load(Ordering::Relaxed);
        let (f, b) = ((at >> 32) as usize, (at & 0xffff_ffff) as usize);
        let func = names.functions.get(f)?;
        let block = names.block_name(f, b)?;
        Some(format!("@{func} in block {block}"))
    }

    pub fn module(&self) -> Option<&Arc<Module>> {
        match self {
            Engine::Jit { module, .. } => Some(module),
            Engine::Interp { .. } => None,
        }
    }
}

fn decode_jit(module: &Module, ctx: &GoroutineContext, stack: &Stack, request: u64) -> Op {
    let operand = |i: usize| stack.read(ctx.sp as usize + 8 + 8 * i).unwrap_or(0);
    let payload = (request >> 32) as u32;
    let Some(op) = RuntimeOp::from_u32(request as u32) else {
        return Op::Fault(Fault::Panic(format!(
            "internal error: unknown runtime request {request:#x}"
        )));
    };
    match op {
        RuntimeOp::Exit => Op::Exit,
        RuntimeOp::StackCheck => Op::StackCheck,
        RuntimeOp::PreemptStub => Op::PreemptStub,
        RuntimeOp::Fault => {
            let (code, msg) = decode_fault(payload);
            let message = || {
                module
                    .pool
                    .messages
                    .get(msg as usize)
                    .cloned()
                    .unwrap_or_default()
            };
            Op::Fault(match code {
                Some(FaultCode::IndexOutOfRange) => Fault::IndexOutOfRange {
                    index: operand(0) as i64,
                    len: operand(1) as i64,
                },
                Some(FaultCode::NilDereference) => Fault::NilDereference,
                // Operands: the tag found, the object. A freed object's
                // poison is a collector bug, not the program's.
                Some(FaultCode::SlotTypeMismatch) if operand(0) == TAG_FREED => {
                    Fault::UseOfFreedObject(operand(1))
                }
                Some(FaultCode::SlotTypeMismatch) => Fault::SlotTypeMismatch,
                Some(FaultCode::DivideByZero) => Fault::DivideByZero,
                Some(FaultCode::AssertionFailed) => Fault::AssertionFailed(message()),
                Some(FaultCode::Panic) | None => Fault::Panic(message()),
            })
        }
        RuntimeOp::Print => match module.pool.prints.get(payload as usize) {
            Some(desc) => {
                let values: Vec<u64> = (0..desc.arg_types.len()).map(operand).collect();
                let mut line = desc.render(&values);
                line.push('\n');
                Op::Print(line)
            }
            None => Op::Print(String::new()),
        },
        RuntimeOp::New => Op::New(operand(0) as i64),
        RuntimeOp::Spawn => {
            let n = module
                .names
                .param_counts
                .get(payload as usize)
                .copied()
                .unwrap_or(0);
            Op::Spawn {
                func: FuncId(payload),
                args: SpawnArgs::Words((0..n).map(operand).collect()),
            }
        }
        RuntimeOp::Yield => Op::Yield,
        RuntimeOp::Gc => Op::Gc,
        RuntimeOp::SetGcPercent => Op::SetGcPercent(operand(0) as i64),
        RuntimeOp::Sleep => Op::Sleep(operand(0) as i64),
        RuntimeOp::Now => Op::Now,
        RuntimeOp::LockThread => Op::LockThread,
        RuntimeOp::UnlockThread => Op::UnlockThread,
        RuntimeOp::Procs => Op::Procs,
        RuntimeOp::Chan => Op::MakeChan(operand(0) as i64),
        RuntimeOp::Send => Op::Send(jit_chan(operand(0)), operand(1) as i64),
        RuntimeOp::Recv => Op::Recv(jit_chan(operand(0))),
        RuntimeOp::Close => Op::Close(jit_chan(operand(0))),
        RuntimeOp::After => Op::After(operand(0) as i64),
        RuntimeOp::Notify => Op::Notify(jit_chan(operand(0))),
        RuntimeOp::Select => {
            let mut arms = Vec::new();
            let mut k = 0;
            for arm in module
                .pool
                .selects
                .get(payload as usize)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                arms.push(match arm {
                    SelectArmDesc::Recv => {
                        k += 1;
                        SelectCase::Recv(jit_chan(operand(k - 1)))
                    }
                    SelectArmDesc::Send => {
                        k += 2;
                        SelectCase::Send(jit_chan(operand(k - 2)), operand(k - 1) as i64)
                    }
                    SelectArmDesc::Default => SelectCase::Default,
                });
            }
            Op::Select(arms)
        }
        RuntimeOp::CCall => {
            let f = ForeignFn::ALL
                .get(payload as usize)
                .copied()
                .unwrap_or(ForeignFn::Sleep);
            Op::CCall(f, if f.takes_arg() { operand(0) as i64 } else { 0 })
        }
        RuntimeOp::Goexit => Op::Goexit,
    }
}

fn decode_interp(event: interp::Event) -> Op {
    use interp::Event as E;
    match event {
        E::Preempted => Op::Budget,
        E::PreemptionPoint => Op::PreemptionPoint,
        E::Interrupted => Op::Interrupted,
        E::Exited => Op::Exit,
        E::Fault(f) => Op::Fault(f),
        E::Collect => Op::Collect,
        E::Request(r) => match r {
            Request::Spawn { func, args } => Op::Spawn {
                func,
                args: SpawnArgs::Values(args),
            },
            Request::Yield => Op::Yield,
            Request::Goexit => Op::Goexit,
            Request::Gc => Op::Gc,
            Request::SetGcPercent { percent } => Op::SetGcPercent(percent),
            Request::Sleep { micros } => Op::Sleep(micros),
            Request::Now => Op::Now,
            Request::LockThread => Op::LockThread,
            Request::UnlockThread => Op::UnlockThread,
            Request::Procs => Op::Procs,
            Request::MakeChan { cap } => Op::MakeChan(cap),
            Request::Send { chan, value } => Op::Send(chan.0, value),
            Request::Recv { chan } => Op::Recv(chan.0),
            Request::Close { chan } => Op::Close(chan.0),
            Request::After { micros } => Op::After(micros),
            Request::Notify { chan } => Op::Notify(chan.0),
            Request::Select { arms } => Op::Select(
                arms.iter()
                    .map(|a| match a {
                        interp::SelectArm::Recv { chan } => SelectCase::Recv(chan.0),
                        interp::SelectArm::Send { chan, value } => SelectCase::Send(chan.0, *value),
                        interp::SelectArm::Default => SelectCase::Default,
                    })
                    .collect(),
            ),
            Request::CCall { func, arg } => Op::CCall(func, arg.unwrap_or(0)),
            Request::Print(text) => Op::Print(text),
        },
    }
}
