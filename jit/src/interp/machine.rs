//! The resumable machine: goroutine state, the run loop, and the protocol
//! between the machine and whoever schedules it.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use crate::fault::{self, Fault};
use crate::ir::{BlockId, Error, ForeignFn, FuncId, Opcode, Program, Span, Type};

use super::code::{Code, FuncCode, Op, RtOp, SelectCaseKind, Slot, NO_SLOT};
use super::heap::{AllocError, Heap};
use super::value::{ChanId, Value};
use super::InterpConfig;

/// `pc` of a frame that was being entered when the stack ran out: the
/// frame shows the function's own position (its prologue).
const PROLOGUE: u32 = u32::MAX;

/// One activation: which function, where in it, and where its registers
/// start in [`Goroutine::values`].
#[derive(Clone, Copy, Debug)]
struct Frame {
    func: u32,
    /// The block `pc` is in (kept so that block entries need no lookup).
    block: u32,
    /// The op being executed. In a caller this is its `call`, which
    /// completes when the callee returns; at a suspension it is the op that
    /// runs next, or the runtime op waiting for the scheduler.
    pc: u32,
    base: usize,
}

/// The state of one goroutine: an explicit stack of frames on the host
/// heap (no host recursion, however deep the PIR recursion), and the
/// registers of all of them in one vector.
#[derive(Clone, Debug)]
pub struct Goroutine {
    id: u64,
    frames: Vec<Frame>,
    values: Vec<Value>,
    /// Bytes charged to the stack by the frames, see
    /// [`frame_bytes`](super::frame_bytes).
    stack_used: u64,
    /// The fault that stopped the goroutine: once set, the goroutine
    /// cannot run on and every `run` reports it again.
    fault: Option<Fault>,
}

impl Goroutine {
    /// A goroutine with no frames (as if finished), for code that needs a
    /// placeholder, such as tests of the scheduler's data structures.
    pub fn detached(id: u64) -> Goroutine {
        Goroutine {
            id,
            frames: Vec::new(),
            values: Vec::new(),
            stack_used: 0,
            fault: None,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the goroutine's outermost function has returned (or it
    /// ended by `goexit`).
    pub fn is_finished(&self) -> bool {
        self.frames.is_empty()
    }

    /// The fault that stopped it, if one did.
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }

    /// How many frames are on its stack.
    pub fn depth(&self) -> usize {
        self.frames.len()
    }

    /// Bytes charged to its stack.
    pub fn stack_used(&self) -> u64 {
        self.stack_used
    }

    /// Every value its frames hold: the roots it contributes to a
    /// collection.
    pub fn roots(&self) -> impl Iterator<Item = Value> + '_ {
        self.values.iter().copied()
    }
}

/// Whether the scheduler wants the running goroutine to stop (a stop
/// request in effect), read by [`Interp::run_until`] at its stop points.
pub trait StopRequested {
    fn stop_requested(&self) -> bool;
}

impl StopRequested for std::sync::atomic::AtomicBool {
    fn stop_requested(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

/// Where [`Interp::run_until`] looks at the stop request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StopAt {
    /// At function entries only, where a JIT function's stack check
    /// is: cooperative preemption.
    FunctionEntry,
    /// Also at every instruction boundary: what a preemption signal
    /// reaches, and, since every loop passes through boundaries, what
    /// back-edge polls, traps and patches reach too.
    Anywhere,
}

/// Why [`Interp::run`] returned.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// The budget ran out at an instruction boundary. Run again to go on.
    Preempted,
    /// The goroutine entered a function while the stop flag given to
    /// [`Interp::run_until`] was set: a cooperative preemption point, as a
    /// JIT function's stack check is. Run again to go on.
    PreemptionPoint,
    /// The stop flag was set at an instruction boundary, with
    /// [`StopAt::Anywhere`]: where an asynchronous signal, or a back-edge
    /// poll, trap or patch, stops JIT code. Run again to go on.
    Interrupted,
    /// The goroutine's outermost function returned.
    Exited,
    /// The goroutine faulted; it stays at the faulting instruction, so
    /// [`Interp::report`] can name it. It cannot go on: running it again
    /// reports the same fault.
    Fault(Fault),
    /// The goroutine needs the scheduler. It stays at the instruction until
    /// [`Interp::complete`] (or [`Interp::complete_select`]) finishes it;
    /// running it again without that asks again.
    Request(Request),
    /// The heap wants a collection before the `new` the goroutine is at can
    /// allocate: collect with every goroutine's roots ([`Interp::collect`])
    /// and run it again. A `new` that still does not fit right after a
    /// collection faults with [`Fault::OutOfMemory`].
    Collect,
}

/// A `select` arm as the scheduler sees it, in text order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SelectArm {
    Recv { chan: ChanId },
    Send { chan: ChanId, value: i64 },
    Default,
}

/// An operation only the runtime can carry out, with its operands read.
///
/// Completion, by [`Interp::complete`] with the result shown:
/// `Now`, `Procs` -> `Value::int`; `MakeChan`, `After` -> `Value::chan`;
/// `Recv` -> `Value::int` (0 once closed and drained); every other one ->
/// `None`. `Select` completes with [`Interp::complete_select`]. `Goexit`
/// ends the goroutine: completing it leaves the goroutine finished.
/// Faults the runtime finds (send on a closed channel, negative channel
/// size, ...) are reported at the instruction with [`Interp::report`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Request {
    Spawn {
        func: FuncId,
        args: Vec<Value>,
    },
    Yield,
    Goexit,
    Gc,
    SetGcPercent {
        percent: i64,
    },
    Sleep {
        micros: i64,
    },
    Now,
    LockThread,
    UnlockThread,
    Procs,
    MakeChan {
        cap: i64,
    },
    Send {
        chan: ChanId,
        value: i64,
    },
    Recv {
        chan: ChanId,
    },
    Close {
        chan: ChanId,
    },
    After {
        micros: i64,
    },
    Notify {
        chan: ChanId,
    },
    Select {
        arms: Vec<SelectArm>,
    },
    CCall {
        func: ForeignFn,
        arg: Option<i64>,
    },
    /// `print`: the whole text, lines and final newline included, to be
    /// written at once.
    Print(String),
}

impl Request {
    /// The instruction that made the request.
    pub fn opcode(&self) -> Opcode {
        match self {
            Request::Spawn { .. } => Opcode::Spawn,
            Request::Yield => Opcode::Yield,
            Request::Goexit => Opcode::Goexit,
            Request::Gc => Opcode::Gc,
            Request::SetGcPercent { .. } => Opcode::SetGcPercent,
            Request::Sleep { .. } => Opcode::Sleep,
            Request::Now => Opcode::Now,
            Request::LockThread => Opcode::LockThread,
            Request::UnlockThread => Opcode::UnlockThread,
            Request::Procs => Opcode::Procs,
            Request::MakeChan { .. } => Opcode::Chan,
            Request::Send { .. } => Opcode::Send,
            Request::Recv { .. } => Opcode::Recv,
            Request::Close { .. } => Opcode::Close,
            Request::After { .. } => Opcode::After,
            Request::Notify { .. } => Opcode::Notify,
            Request::Select { .. } => Opcode::Select,
            Request::CCall { .. } => Opcode::CCall,
            Request::Print(_) => Opcode::Print,
        }
    }
}

/// Where a goroutine is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Position {
    pub func: FuncId,
    pub block: BlockId,
    /// Index of the instruction in the block (the terminator is last).
    pub inst: usize,
    pub span: Span,
}

/// The globals: i64 bits each (a ref global holds its handle). Plain
/// accesses are relaxed atomics, so the table can be shared by threads
/// later without data races; the `.atomic` forms are sequentially
/// consistent. The interpreter never keeps a global in a register: it is
/// the reference for what an unoptimised program does.
#[derive(Debug)]
struct Globals {
    cells: Box<[AtomicI64]>,
    types: Box<[Type]>,
}

impl Globals {
    fn value(&self, g: u32, order: Ordering) -> Value {
        let g = g as usize;
        match (self.cells.get(g), self.types.get(g)) {
            (Some(c), Some(&ty)) => Value {
                bits: c.load(order),
                ty,
            },
            _ => Value::int(0),
        }
    }

    fn cell(&self, g: u32) -> Option<&AtomicI64> {
        self.cells.get(g as usize)
    }
}

/// The interpreter of one program: its lowered code, globals and heap,
/// shared by all its goroutines.
#[derive(Debug)]
pub struct Interp {
    code: Arc<Code>,
    globals: Globals,
    heap: Heap,
    stack_size: u64,
    watchdog: Option<Arc<AtomicU64>>,
    file: String,
}

impl Interp {
    /// Lowers `prog` (which must have an `@main`) and sets up its globals
    /// and an empty heap.
    pub fn new(prog: &Program, cfg: &InterpConfig) -> Result<Interp, Error> {
        let code = Code::lower(prog)?;
        let globals = Globals {
            cells: code
                .globals
                .iter()
                .map(|g| AtomicI64::new(g.init))
                .collect(),
            types: code.globals.iter().map(|g| g.ty).collect(),
        };
        Ok(Interp {
            code: Arc::new(code),
            globals,
            heap: Heap::new(cfg.gc_percent, cfg.heap_limit),
            stack_size: cfg.stack_size,
            watchdog: cfg.watchdog.clone(),
            file: cfg.file.clone(),
        })
    }

    /// Goroutine 1, about to run `@main`.
    pub fn main_goroutine(&self) -> Goroutine {
        self.goroutine(1, FuncId(self.code.main), &[])
    }

    /// The program's `@main`.
    pub fn main_func(&self) -> Option<FuncId> {
        Some(FuncId(self.code.main))
    }

    /// A goroutine `id` about to run `func(args)`.
    pub fn goroutine(&self, id: u64, func: FuncId, args: &[Value]) -> Goroutine {
        let mut g = Goroutine {
            id,
            frames: Vec::new(),
            values: Vec::new(),
            stack_used: 0,
            fault: None,
        };
        let Some(f) = self.code.funcs.get(func.index()) else {
            return g;
        };
        if f.frame_bytes > self.stack_size {
            g.frames.push(Frame {
                func: func.0,
                block: 0,
                pc: PROLOGUE,
                base: 0,
            });
            g.fault = Some(Fault::StackOverflow);
            return g;
        }
        g.values.extend_from_slice(&f.frame_init);
        for (i, &a) in args.iter().take(f.n_params as usize).enumerate() {
            g.values[i] = a;
        }
        g.frames.push(Frame {
            func: func.0,
            block: 0,
            pc: f.block_start[0],
            base: 0,
        });
        g.stack_used = f.frame_bytes;
        g
    }

    pub fn heap(&self) -> &Heap {
        &self.heap
    }

    /// The current value of a global.
    pub fn global(&self, g: crate::ir::GlobalId) -> Value {
        self.globals.value(g.0, Ordering::SeqCst)
    }

    /// `setgcpercent`.
    pub fn set_gc_percent(&mut self, percent: i64) {
        self.heap.set_gc_percent(percent);
    }

    /// Collects garbage. `goroutines` must be every goroutine that can
    /// still run; the ref globals are added here.
    pub fn collect<'a>(&mut self, goroutines: impl IntoIterator<Item = &'a Goroutine>) {
        let globals = &self.globals;
        let global_roots = (0..globals.cells.len() as u32)
            .map(|g| globals.value(g, Ordering::SeqCst))
            .filter(|v| v.ty == Type::Ref);
        let goroutine_roots = goroutines.into_iter().flat_map(Goroutine::roots);
        self.heap.collect(global_roots.chain(goroutine_roots));
    }

    /// Where `g` is, innermost frame.
    pub fn position(&self, g: &Goroutine) -> Option<Position> {
        let fr = g.frames.last()?;
        Some(self.frame_position(fr))
    }

    fn frame_position(&self, fr: &Frame) -> Position {
        let f = &self.code.funcs[fr.func as usize];
        let (inst, span) = if fr.pc == PROLOGUE {
            (0, f.span)
        } else {
            let start = f.block_start[fr.block as usize] as usize;
            (
                (fr.pc as usize).saturating_sub(start),
                f.spans[fr.pc as usize],
            )
        };
        Position {
            func: FuncId(fr.func),
            block: BlockId(fr.block),
            inst,
            span,
        }
    }

    /// The traceback of `g`, innermost frame first: each frame's function,
    /// block and the position of its current instruction (the call, in
    /// outer frames). A frame that could not be entered for lack of stack
    /// shows the function's own position.
    pub fn traceback(&self, g: &Goroutine) -> Vec<fault::Frame> {
        self.traceback_shown(g, usize::MAX)
    }

    /// The traceback with names filled only for the frames a report shows
    /// (`edge` at each end); a stack overflow has a million frames.
    fn traceback_shown(&self, g: &Goroutine, edge: usize) -> Vec<fault::Frame> {
        let n = g.frames.len();
        let elide = n > edge.saturating_mul(2);
        g.frames
            .iter()
            .rev()
            .enumerate()
            .map(|(i, fr)| {
                if elide && (edge..n - edge).contains(&i) {
                    return fault::Frame {
                        func: String::new(),
                        block: String::new(),
                        line: 0,
                        col: 0,
                    };
                }
                let p = self.frame_position(fr);
                let f = &self.code.funcs[fr.func as usize];
                fault::Frame {
                    func: f.name.clone(),
                    block: f.block_names[fr.block as usize].clone(),
                    line: p.span.line,
                    col: p.span.col,
                }
            })
            .collect()
    }

    /// The stderr text for `fault` in `g` (see [`fault::report`]).
    pub fn report(&self, g: &Goroutine, fault: &Fault) -> String {
        let frames = self.traceback_shown(g, fault::TRACEBACK_EDGE);
        fault::report(fault, g.id, &frames, &self.file)
    }

    /// The runtime operation `g` is waiting at, if any (`None` inside
    /// means a `print`).
    fn pending_rt(&self, g: &Goroutine) -> Option<(&FuncCode, Frame, Option<&RtOp>)> {
        let fr = *g.frames.last()?;
        let f = self.code.funcs.get(fr.func as usize)?;
        match f.ops.get(fr.pc as usize)? {
            Op::Runtime { id } => Some((f, fr, Some(f.runtime.get(*id as usize)?))),
            Op::Print { .. } => Some((f, fr, None)),
            _ => None,
        }
    }

    /// Finishes the request `g` is waiting at: stores `result` in the
    /// instruction's destination (if it has one) and moves past it.
    /// Completing a `goexit` ends the goroutine. Does nothing if `g` is not
    /// at a request.
    pub fn complete(&mut self, g: &mut Goroutine, result: Option<Value>) {
        let Some((_, fr, rt)) = self.pending_rt(g) else {
            return;
        };
        if let Some(rt) = rt {
            if matches!(rt, RtOp::Goexit) {
                g.frames.clear();
                g.values.clear();
                g.stack_used = 0;
                return;
            }
            if let (Some(dst), Some(v)) = (rt.dst(), result) {
                if let Some(slot) = g.values.get_mut(fr.base + dst as usize) {
                    *slot = v;
                }
            }
        }
        if let Some(top) = g.frames.last_mut() {
            top.pc += 1;
        }
    }

    /// Finishes the `select` `g` is waiting at by taking arm `arm` (in text
    /// order): a receive arm with `into` stores `received`, then control
    /// goes to the arm's block.
    pub fn complete_select(&mut self, g: &mut Goroutine, arm: usize, received: Option<i64>) {
        let Some((f, fr, Some(RtOp::Select { arms }))) = self.pending_rt(g) else {
            return;
        };
        let Some(a) = arms.get(arm) else {
            return;
        };
        if let (SelectCaseKind::Recv { into, .. }, Some(v)) = (&a.kind, received) {
            if *into != NO_SLOT {
                if let Some(slot) = g.values.get_mut(fr.base + *into as usize) {
                    *slot = Value::int(v);
                }
            }
        }
        let (block, pc) = (a.target, f.block_start[a.target as usize]);
        if let Some(w) = &self.watchdog {
            w.store(((fr.func as u64) << 32) | block as u64, Ordering::Relaxed);
        }
        if let Some(top) = g.frames.last_mut() {
            top.block = block;
            top.pc = pc;
        }
    }

    /// Runs `g` for at most `budget` ops (every executed op counts once,
    /// including the jump a fall-through becomes) or until it needs the
    /// scheduler, finishes or faults.
    pub fn run(&mut self, g: &mut Goroutine, budget: u64) -> Event {
        static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        self.run_until(g, budget, &NEVER, StopAt::FunctionEntry)
    }

    /// [`Interp::run`], also stopping when `stop` asks: with
    /// [`Event::PreemptionPoint`] at the first function entry after it
    /// does (a cooperative stop), and with [`StopAt::Anywhere`] also with
    /// [`Event::Interrupted`] at the first instruction boundary.
    pub fn run_until(
        &mut self,
        g: &mut Goroutine,
        budget: u64,
        stop: &impl StopRequested,
        at: StopAt,
    ) -> Event {
        let anywhere = at == StopAt::Anywhere;
        if let Some(f) = &g.fault {
            return Event::Fault(f.clone());
        }
        let code: &Code = &self.code;
        let globals = &self.globals;
        let heap = &mut self.heap;
        let watchdog = self.watchdog.as_deref();
        let stack_size = self.stack_size;
        let mut budget = budget;
        if let (Some(w), Some(fr)) = (watchdog, g.frames.last()) {
            w.store(
                ((fr.func as u64) << 32) | fr.block as u64,
                Ordering::Relaxed,
            );
        }

        // Each turn of this loop (re)loads the top frame; calls and returns
        // come back here.
        loop {
            let Some(&fr) = g.frames.last() else {
                return Event::Exited;
            };
            let func = fr.func;
            let f = &code.funcs[func as usize];
            let ops = &f.ops[..];
            let base = fr.base;
            let mut pc = fr.pc as usize;
            let mut block = fr.block;
            let regs = &mut g.values[base..base + f.frame_init.len()];

            macro_rules! save {
                () => {{
                    if let Some(top) = g.frames.last_mut() {
                        top.pc = pc as u32;
                        top.block = block;
                    }
                }};
            }
            macro_rules! fault {
                ($f:expr) => {{
                    let fault: Fault = $f;
                    save!();
                    g.fault = Some(fault.clone());
                    return Event::Fault(fault);
                }};
            }
            macro_rules! enter {
                ($b:expr) => {{
                    block = $b;
                    pc = f.block_start[block as usize] as usize;
                    if let Some(w) = watchdog {
                        w.store(((func as u64) << 32) | block as u64, Ordering::Relaxed);
                    }
                }};
            }
            macro_rules! int {
                ($s:expr) => {
                    regs[$s as usize].bits
                };
            }
            macro_rules! bin {
                ($dst:expr, $v:expr) => {{
                    regs[$dst as usize] = Value::int($v);
                    pc += 1;
                }};
            }

            loop {
                if budget == 0 {
                    save!();
                    return Event::Preempted;
                }
                if anywhere && stop.stop_requested() {
                    save!();
                    return Event::Interrupted;
                }
                budget -= 1;
                match ops[pc] {
                    Op::Copy { dst, src } => {
                        regs[dst as usize] = regs[src as usize];
                        pc += 1;
                    }
                    Op::Add { dst, a, b } => bin!(dst, int!(a).wrapping_add(int!(b))),
                    Op::Sub { dst, a, b } => bin!(dst, int!(a).wrapping_sub(int!(b))),
                    Op::Mul { dst, a, b } => bin!(dst, int!(a).wrapping_mul(int!(b))),
                    Op::Div { dst, a, b } => {
                        let d = int!(b);
                        if d == 0 {
                            fault!(Fault::DivideByZero);
                        }
                        // wrapping: MIN / -1 is MIN, as in Go.
                        bin!(dst, int!(a).wrapping_div(d))
                    }
                    Op::Rem { dst, a, b } => {
                        let d = int!(b);
                        if d == 0 {
                            fault!(Fault::DivideByZero);
                        }
                        // wrapping: MIN % -1 is 0, as in Go.
                        bin!(dst, int!(a).wrapping_rem(d))
                    }
                    Op::And { dst, a, b } => bin!(dst, int!(a) & int!(b)),
                    Op::Or { dst, a, b } => bin!(dst, int!(a) | int!(b)),
                    Op::Xor { dst, a, b } => bin!(dst, int!(a) ^ int!(b)),
                    Op::Shl { dst, a, b } => bin!(dst, int!(a) << (int!(b) & 63)),
                    Op::Shr { dst, a, b } => {
                        bin!(dst, ((int!(a) as u64) >> (int!(b) & 63)) as i64)
                    }
                    Op::Sar { dst, a, b } => bin!(dst, int!(a) >> (int!(b) & 63)),
                    Op::Neg { dst, a } => bin!(dst, int!(a).wrapping_neg()),
                    Op::Not { dst, a } => bin!(dst, !int!(a)),
                    // Refs and channels compare by identity: their bits.
                    Op::Eq { dst, a, b } => bin!(dst, i64::from(int!(a) == int!(b))),
                    Op::Ne { dst, a, b } => bin!(dst, i64::from(int!(a) != int!(b))),
                    Op::Lt { dst, a, b } => bin!(dst, i64::from(int!(a) < int!(b))),
                    Op::Le { dst, a, b } => bin!(dst, i64::from(int!(a) <= int!(b))),
                    Op::Gt { dst, a, b } => bin!(dst, i64::from(int!(a) > int!(b))),
                    Op::Ge { dst, a, b } => bin!(dst, i64::from(int!(a) >= int!(b))),
                    Op::Load { dst, global } => {
                        regs[dst as usize] = globals.value(global, Ordering::Relaxed);
                        pc += 1;
                    }
                    Op::LoadAtomic { dst, global } => {
                        regs[dst as usize] = globals.value(global, Ordering::SeqCst);
                        pc += 1;
                    }
                    Op::Store { global, src } => {
                        if let Some(c) = globals.cell(global) {
                            c.store(int!(src), Ordering::Relaxed);
                        }
                        pc += 1;
                    }
                    Op::StoreAtomic { global, src } => {
                        if let Some(c) = globals.cell(global) {
                            c.store(int!(src), Ordering::SeqCst);
                        }
                        pc += 1;
                    }
                    Op::AddAtomic { dst, global, src } => {
                        let v = int!(src);
                        let new = globals
                            .cell(global)
                            .map_or(0, |c| c.fetch_add(v, Ordering::SeqCst).wrapping_add(v));
                        bin!(dst, new)
                    }
                    Op::Cas {
                        dst,
                        global,
                        old,
                        new,
                    } => {
                        let (old, new) = (int!(old), int!(new));
                        let swapped = globals.cell(global).is_some_and(|c| {
                            c.compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
                                .is_ok()
                        });
                        bin!(dst, i64::from(swapped))
                    }
                    Op::New { dst, len } => {
                        let n = int!(len);
                        if n < 0 {
                            fault!(Fault::NegativeSize(n));
                        }
                        match heap.alloc(n) {
                            Ok(h) => {
                                regs[dst as usize] = Value::from_handle(h);
                                pc += 1;
                            }
                            Err(AllocError::Collect) => {
                                save!();
                                return Event::Collect;
                            }
                            Err(AllocError::OutOfMemory) => fault!(Fault::OutOfMemory),
                        }
                    }
                    Op::Len { dst, obj } => match heap.len(int!(obj)) {
                        Ok(n) => bin!(dst, n),
                        Err(e) => fault!(e),
                    },
                    Op::Get { dst, obj, index } => match heap.get(int!(obj), int!(index)) {
                        Ok(v) => bin!(dst, v),
                        Err(e) => fault!(e),
                    },
                    Op::GetRef { dst, obj, index } => match heap.get_ref(int!(obj), int!(index)) {
                        Ok(h) => {
                            regs[dst as usize] = Value::from_handle(h);
                            pc += 1;
                        }
                        Err(e) => fault!(e),
                    },
                    Op::Set { obj, index, src } => {
                        match heap.set(int!(obj), int!(index), int!(src)) {
                            Ok(()) => pc += 1,
                            Err(e) => fault!(e),
                        }
                    }
                    Op::SetRef { obj, index, src } => {
                        // A non-ref here cannot come from a verified
                        // program; store nil rather than forge a handle.
                        let target = match regs[src as usize] {
                            v if v.ty == Type::Ref => v.bits,
                            _ => 0,
                        };
                        match heap.set_ref(int!(obj), int!(index), target) {
                            Ok(()) => pc += 1,
                            Err(e) => fault!(e),
                        }
                    }
                    Op::Call {
                        dst: _,
                        func: callee,
                        args,
                        nargs,
                    } => {
                        let cf = &code.funcs[callee as usize];
                        let used = g.stack_used.saturating_add(cf.frame_bytes);
                        save!();
                        if used > stack_size {
                            g.frames.push(Frame {
                                func: callee,
                                block: 0,
                                pc: PROLOGUE,
                                base: g.values.len(),
                            });
                            g.fault = Some(Fault::StackOverflow);
                            return Event::Fault(Fault::StackOverflow);
                        }
                        let new_base = g.values.len();
                        g.values.extend_from_slice(&cf.frame_init);
                        let n = (nargs as usize).min(cf.n_params as usize);
                        let arg_slots = &f.arg_slots[args as usize..args as usize + n];
                        for (i, &s) in arg_slots.iter().enumerate() {
                            g.values[new_base + i] = g.values[base + s as usize];
                        }
                        g.frames.push(Frame {
                            func: callee,
                            block: 0,
                            pc: cf.block_start[0],
                            base: new_base,
                        });
                        g.stack_used = used;
                        if let Some(w) = watchdog {
                            w.store((callee as u64) << 32, Ordering::Relaxed);
                        }
                        if stop.stop_requested() {
                            return Event::PreemptionPoint;
                        }
                        break;
                    }
                    Op::Ret { src } => {
                        let result = (src != NO_SLOT).then(|| regs[src as usize]);
                        g.values.truncate(base);
                        g.frames.pop();
                        g.stack_used = g.stack_used.saturating_sub(f.frame_bytes);
                        let Some(caller) = g.frames.last_mut() else {
                            return Event::Exited;
                        };
                        let cf = &code.funcs[caller.func as usize];
                        if let (Op::Call { dst, .. }, Some(v)) =
                            (cf.ops[caller.pc as usize], result)
                        {
                            if dst != NO_SLOT {
                                g.values[caller.base + dst as usize] = v;
                            }
                        }
                        caller.pc += 1;
                        if let Some(w) = watchdog {
                            w.store(
                                ((caller.func as u64) << 32) | caller.block as u64,
                                Ordering::Relaxed,
                            );
                        }
                        break;
                    }
                    Op::Jmp { block: b } => enter!(b),
                    Op::Br { cond, then_, else_ } => {
                        enter!(if int!(cond) != 0 { then_ } else { else_ })
                    }
                    Op::Print { id } => {
                        let p = &f.prints[id as usize];
                        let mut text = String::with_capacity(64);
                        text.push_str(&p.pieces[0]);
                        for (&s, piece) in p.args.iter().zip(&p.pieces[1..]) {
                            let _ = write!(text, "{}", regs[s as usize]);
                            text.push_str(piece);
                        }
                        text.push('\n');
                        save!();
                        return Event::Request(Request::Print(text));
                    }
                    Op::Assert { cond, msg } => {
                        if int!(cond) == 0 {
                            fault!(Fault::AssertionFailed(f.strings[msg as usize].clone()));
                        }
                        pc += 1;
                    }
                    Op::Panic { msg } => fault!(Fault::Panic(f.strings[msg as usize].clone())),
                    Op::Runtime { id } => {
                        let req = request(&f.runtime[id as usize], regs);
                        save!();
                        return Event::Request(req);
                    }
                }
            }
        }
    }
}

/// Reads the operands of a runtime operation.
fn request(rt: &RtOp, regs: &[Value]) -> Request {
    let int = |s: Slot| regs[s as usize].bits;
    let chan = |s: Slot| ChanId(regs[s as usize].bits as u32);
    match rt {
        RtOp::Spawn { func, args } => Request::Spawn {
            func: FuncId(*func),
            args: args.iter().map(|&s| regs[s as usize]).collect(),
        },
        RtOp::Yield => Request::Yield,
        RtOp::Goexit => Request::Goexit,
        RtOp::Gc => Request::Gc,
        RtOp::SetGcPercent { percent } => Request::SetGcPercent {
            percent: int(*percent),
        },
        RtOp::Sleep { micros } => Request::Sleep {
            micros: int(*micros),
        },
        RtOp::Now { .. } => Request::Now,
        RtOp::LockThread => Request::LockThread,
        RtOp::UnlockThread => Request::UnlockThread,
        RtOp::Procs { .. } => Request::Procs,
        RtOp::MakeChan { cap, .. } => Request::MakeChan { cap: int(*cap) },
        RtOp::Send { chan: c, value } => Request::Send {
            chan: chan(*c),
            value: int(*value),
        },
        RtOp::Recv { chan: c, .. } => Request::Recv { chan: chan(*c) },
        RtOp::Close { chan: c } => Request::Close { chan: chan(*c) },
        RtOp::After { micros, .. } => Request::After {
            micros: int(*micros),
        },
        RtOp::Notify { chan: c } => Request::Notify { chan: chan(*c) },
        RtOp::Select { arms } => Request::Select {
            arms: arms
                .iter()
                .map(|a| match a.kind {
                    SelectCaseKind::Recv { chan: c, .. } => SelectArm::Recv { chan: chan(c) },
                    SelectCaseKind::Send { chan: c, value } => SelectArm::Send {
                        chan: chan(c),
                        value: int(value),
                    },
                    SelectCaseKind::Default => SelectArm::Default,
                })
                .collect(),
        },
        RtOp::CCall { func, arg } => Request::CCall {
            func: *func,
            arg: arg.map(int),
        },
    }
}
