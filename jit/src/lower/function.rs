//! The lowering of a program, written once for every architecture: the
//! driver, the function walk (prologue, blocks, instructions, epilogue)
//! and the instructions whose shape is the same everywhere. Control flow,
//! the back-edge protocol and the out-of-line paths are in
//! [`super::control`].
//!
//! Everything the runtime trusts about the code is recorded here, at the
//! moment the code is emitted, through [`MetadataBuilder`]: function and
//! block ranges, the first machine instruction of every PIR instruction,
//! the frame set-up and tear-down regions, the write barrier's regions,
//! call-return sites and hoisted loads. The hooks of [`Machine`] only
//! emit instructions.

use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi};

use super::control::{Cold, ColdKind};
use super::machine::{Cond, Frame, Machine, OldRef, Slot, Test, Val};
use crate::abi::{fault_request, FaultCode, RuntimeOp, CTX_RESULT2};
use crate::code::prefault::Prefault;
use crate::code::{CallKind, CodeBuffer, MetadataBuilder, UnsafeKind};
use crate::ir::{
    ArmKind, BlockId, FuncId, Function, Inst, InstKind, Opcode, Operand, PreemptMode, Program, Reg,
    Span, TermKind, Type,
};
use crate::lower::{FunctionPlan, Location};
use crate::module::{Assembled, ConstantPool, PrintDesc};
use crate::par::Threads;

/// Code bytes per PIR instruction to make room for: about what the
/// compile benchmark's program takes on x86-64.
const CODE_BYTES_PER_INST: usize = 32;

/// Assembles a verified program for `M`; `globals[i]` is the address
/// generated code uses for global `i`.
///
/// With more than one thread, a second thread plans the functions (their
/// register allocation, a third of the work) in order while this one
/// emits them: emission is one stream of code, labels and tables, and
/// stays on one thread; the plans are what `FunctionPlan::new` would give
/// on this one, so the code is the same byte for byte.
pub fn assemble<M: Machine>(prog: &Program, globals: &[usize], threads: Threads) -> Assembled {
    // Room for a large program's code, labels and tables up front: grown
    // by doubling, each would be copied (and its pages touched) about
    // twice over. Room not used costs no memory until written. (The
    // relocations are resolved function by function, below, so their
    // list stays small.)
    let insts = prog.inst_count();
    let blocks: usize = prog.funcs.iter().map(|f| f.blocks.len()).sum();
    let mut ops = CodeBuffer::<M::Relocation>::with_capacity(
        insts * CODE_BYTES_PER_INST,
        blocks + insts / 2,
        0,
    );
    let mut meta = MetadataBuilder::with_capacity(insts + blocks, blocks);
    // With two threads, the planner has time to spare: it faults in the
    // room of the code and of the instruction starts for the functions it
    // has planned, before the emitter writes there (the emitter's first
    // writes to fresh pages were a third of its time).
    let two_threads = crate::par::function_pieces(&prog.funcs, threads).threads >= 2;
    let mut prefault = Prefault::default();
    if two_threads {
        meta.spare(&mut prefault);
        ops.spare(&mut prefault);
    }
    let total = (insts + blocks).max(1) as f64;
    let rt_call = ops.new_dynamic_label();
    let preempt_stub = ops.new_dynamic_label();
    let stub_offsets = M::emit_stubs(&mut ops, &mut meta, rt_call, preempt_stub);
    let mode = prog.settings.preempt.unwrap_or(PreemptMode::Async);
    let nosplit_leaves = prog.settings.nosplit_leaves == Some(1);
    let func_labels: Vec<DynamicLabel> =
        prog.funcs.iter().map(|_| ops.new_dynamic_label()).collect();
    let mut pool = ConstantPool::default();
    let mut function_offsets = Vec::with_capacity(prog.funcs.len());
    let ref_globals: Vec<bool> = prog.globals.iter().map(|g| g.ty == Type::Ref).collect();
    let mut forward_calls = 0;
    let mut emit = |i: usize, plan: &FunctionPlan| {
        let func = &prog.funcs[i];
        function_offsets.push(ops.offset().0);
        let mut cx: Lower<'_, M> = Lower {
            ops: &mut ops,
            meta: &mut meta,
            pool: &mut pool,
            globals,
            ref_globals: &ref_globals,
            func,
            fid: FuncId::new(i),
            frame: M::frame_layout(&plan.alloc),
            plan,
            func_labels: &func_labels,
            rt_call,
            preempt_stub,
            mode,
            nosplit_leaves,
            block_labels: Vec::new(),
            cold: Vec::new(),
            max_callee: 0,
        };
        cx.function();
        // Resolve the function's jumps now, while its code is in the
        // cache, rather than every jump of the program at the end, unless
        // a call so far goes to a function not yet emitted (whose label
        // is not yet defined).
        forward_calls = forward_calls.max(cx.max_callee);
        if forward_calls <= i {
            ops.commit()
                .expect("every label the backend references is defined");
        }
    };
    let plan = |func: &Function| FunctionPlan::new(func, &M::REGISTERS);
    if !two_threads {
        for (i, func) in prog.funcs.iter().enumerate() {
            emit(i, &plan(func));
        }
    } else {
        // A few plans ahead of the emitter at most: they are large.
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        std::thread::scope(|s| {
            // Owned by this closure, so that a panic while emitting drops
            // it before the scope waits for the planner: its next send
            // then fails and it ends, rather than waiting for ever.
            let rx = rx;
            let planner = std::thread::Builder::new()
                .name("compile".into())
                .spawn_scoped(s, move || {
                    let mut planned = 0;
                    for func in &prog.funcs {
                        planned += func.inst_count() + func.blocks.len();
                        prefault.advance(planned as f64 / total);
                        if tx.send(plan(func)).is_err() {
                            return;
                        }
                    }
                });
            match planner {
                Ok(planner) => {
                    for i in 0..prog.funcs.len() {
                        // The planner ends early only by panicking: its
                        // panic is raised below.
                        let Ok(p) = rx.recv() else { break };
                        emit(i, &p);
                    }
                    if let Err(panic) = planner.join() {
                        std::panic::resume_unwind(panic);
                    }
                }
                // No thread to be had: everything is done here.
                Err(_) => {
                    for (i, func) in prog.funcs.iter().enumerate() {
                        emit(i, &plan(func));
                    }
                }
            }
        });
    }
    let tables = meta.finish();
    let code = ops
        .finalize()
        .expect("every label the backend references is defined");
    Assembled {
        arch: M::ARCH,
        code,
        patched: mode == PreemptMode::Patch,
        tables,
        function_offsets,
        stub_offsets,
        pool,
    }
}

/// One function being lowered: what the walk knows, and what the hooks
/// reach through their first argument.
pub struct Lower<'a, M: Machine> {
    /// The assembler, placed at offset 0.
    pub ops: &'a mut CodeBuffer<M::Relocation>,
    pub(super) meta: &'a mut MetadataBuilder,
    pool: &'a mut ConstantPool,
    globals: &'a [usize],
    /// Which globals hold a ref (their stores take the write barrier).
    ref_globals: &'a [bool],
    pub(super) func: &'a Function,
    pub(super) fid: FuncId,
    /// Where the frame keeps what it holds.
    pub frame: Frame,
    pub(super) plan: &'a FunctionPlan,
    func_labels: &'a [DynamicLabel],
    pub(super) rt_call: DynamicLabel,
    /// The preemption stub, which back-edge yields enter as a signal's
    /// redirect does.
    pub(super) preempt_stub: DynamicLabel,
    /// What loop back-edges carry (see `control.rs`).
    pub(super) mode: PreemptMode,
    /// `set nosplit_leaves = 1`: small leaves get no stack check.
    pub(super) nosplit_leaves: bool,
    pub(super) block_labels: Vec<DynamicLabel>,
    pub(super) cold: Vec<Cold>,
    /// The highest function index this function calls (0 if none).
    pub(super) max_callee: usize,
}

impl<M: Machine> std::fmt::Debug for Lower<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lower")
            .field("func", &self.func.name)
            .field("frame", &self.frame)
            .finish_non_exhaustive()
    }
}

impl<'a, M: Machine> Lower<'a, M> {
    /// The current offset in the code.
    pub fn off(&self) -> usize {
        self.ops.offset().0
    }

    /// A fresh label.
    pub fn label(&mut self) -> DynamicLabel {
        self.ops.new_dynamic_label()
    }

    /// Records what `emit` emits as a restartable unsafe region of `kind`:
    /// interrupted inside it, the thread resumes at its first instruction,
    /// so the sequence must have no effect before its last one.
    pub fn restartable(&mut self, kind: UnsafeKind, emit: impl FnOnce(&mut Self)) {
        self.meta.begin_restartable(kind, self.off());
        emit(self);
        self.meta.end_unsafe(self.off());
    }

    // ---- locations and moves ----------------------------------------------

    fn slot_of(&self, loc: Location) -> Option<Slot> {
        match loc {
            Location::Spill(k) => Some(self.frame.spills.at(k as usize)),
            Location::Param(i) => Some(self.frame.params.at(i as usize)),
            _ => None,
        }
    }

    /// The callee-saved registers this function writes, in the order of
    /// `frame.saved`.
    pub fn callee_saved(&self) -> &'a [u8] {
        let plan: &'a FunctionPlan = self.plan;
        &plan.alloc.used_callee_saved
    }

    /// The frame slot of PIR register `d`, which is not in a register.
    pub fn slot(&self, d: Reg) -> Slot {
        self.slot_of(self.plan.alloc.location(d)).unwrap_or(Slot {
            base: self.frame.spills.base,
            offset: 0,
        })
    }

    /// Where operand `o` is.
    pub fn val(&self, o: Operand) -> Val {
        match o {
            Operand::Imm(v) => Val::Imm(v),
            Operand::Nil => Val::Imm(0),
            Operand::Reg(r) => match self.plan.alloc.location(r) {
                Location::Reg(p) => Val::Reg(p),
                _ => Val::Mem(self.slot(r)),
            },
        }
    }

    /// The machine register of PIR register `r`, if it has one.
    pub fn dst_reg(&self, r: Reg) -> Option<u8> {
        match self.plan.alloc.location(r) {
            Location::Reg(p) => Some(p),
            _ => None,
        }
    }

    /// Where PIR register `d` lives.
    pub fn location(&self, d: Reg) -> Location {
        self.plan.alloc.location(d)
    }

    /// `dst = v`.
    pub fn load(&mut self, dst: u8, v: Val) {
        match v {
            Val::Reg(r) if r == dst => {}
            Val::Reg(r) => M::mov_reg(self, dst, r),
            Val::Mem(slot) => M::load_slot(self, dst, slot),
            Val::Imm(i) => M::mov_imm(self, dst, i),
        }
    }

    /// Writes machine register `src` to PIR register `d`.
    pub fn store(&mut self, d: Reg, src: u8) {
        match self.plan.alloc.location(d) {
            Location::Reg(r) if r == src => {}
            Location::Reg(r) => M::mov_reg(self, r, src),
            Location::Unused => {}
            _ => {
                let slot = self.slot(d);
                M::store_slot(self, slot, src);
            }
        }
    }

    // ---- the function ---------------------------------------------------------

    fn function(&mut self) {
        let func = self.func;
        self.block_labels = func
            .blocks
            .iter()
            .map(|_| self.ops.new_dynamic_label())
            .collect();
        let entry = self.off();
        self.meta
            .begin_function(self.fid, &func.name, func.span, entry);
        self.meta.begin_unsafe(UnsafeKind::FrameSetup, entry);
        // The function's address, which the runtime's goroutine entry
        // calls with every argument on the stack, takes the register
        // arguments from there; a PIR `call` enters right after.
        const { assert!(M::ARG_REGS.is_empty() || M::FRAME_SAVES_REGISTERS) };
        let in_regs = func.params.len().min(M::ARG_REGS.len());
        for (i, &r) in M::ARG_REGS[..in_regs].iter().enumerate() {
            M::load_stack_argument(self, r, i);
        }
        let label = self.func_labels[self.fid.index()];
        self.ops.dynamic_label(label);
        M::prologue(self);
        self.meta.frame_size(self.frame.size.max(0) as usize);
        // The register arguments' homes, before the check: its runtime
        // call keeps only allocatable registers.
        for (i, &a) in M::ARG_REGS[..in_regs].iter().enumerate() {
            match self.plan.alloc.location(func.params[i]) {
                Location::Reg(r) => M::mov_reg(self, r, a),
                Location::Unused => {}
                _ => {
                    let slot = self.slot(func.params[i]);
                    M::store_slot(self, slot, a);
                }
            }
        }
        if !(self.nosplit_leaves && is_small_leaf(func, self.frame.size)) {
            let (check, overflow) = (self.label(), self.label());
            M::stack_check(self, check, overflow);
            self.cold.push(Cold {
                label: overflow,
                block: BlockId::new(0),
                span: func.span,
                kind: ColdKind::StackCheck { resume: check },
            });
        }
        if !M::FRAME_SAVES_REGISTERS {
            for (j, &r) in self.plan.alloc.used_callee_saved.iter().enumerate() {
                let slot = self.frame.saved.at(j);
                M::store_slot(self, slot, r);
            }
        }
        self.set_current_func();
        for (i, &p) in func.params.iter().enumerate().skip(in_regs) {
            if let Location::Reg(r) = self.plan.alloc.location(p) {
                let slot = self.frame.params.at(i);
                M::load_slot(self, r, slot);
            }
        }
        self.meta.end_unsafe(self.off());

        for &b in &self.plan.layout {
            self.block(b);
        }
        self.meta.end_block(self.off());
        self.cold_paths();
        self.plan.record_loops(self.func, self.meta);
        self.meta.end_function(self.off());
    }

    /// `--preempt patch`: the context says which function runs (whose
    /// back-edges a stop request rewrites): at entry, and again after each
    /// call returns.
    fn set_current_func(&mut self) {
        if self.mode == PreemptMode::Patch {
            let index = self.fid.index() as u32;
            M::store_current_function(self, index);
        }
    }

    fn epilogue(&mut self) {
        self.meta
            .begin_unsafe(UnsafeKind::FrameTeardown, self.off());
        if !M::FRAME_SAVES_REGISTERS {
            for (j, &r) in self.plan.alloc.used_callee_saved.iter().enumerate() {
                let slot = self.frame.saved.at(j);
                M::load_slot(self, r, slot);
            }
        }
        M::epilogue(self);
        self.meta.end_unsafe(self.off());
    }

    fn block(&mut self, b: BlockId) {
        let block = &self.func.blocks[b.index()];
        self.ops.dynamic_label(self.block_labels[b.index()]);
        self.meta.begin_block(b, self.off());
        // A compare whose only use is the branch that ends the block is
        // fused into it.
        let fused = self
            .plan
            .fusable_compare(self.func, b)
            .map(|(op, x, y)| (Cond::of(op).expect("a compare"), x, y));
        for (i, inst) in block.insts.iter().enumerate() {
            self.meta.inst_start(self.off(), b, Some(i), inst.span);
            if fused.is_some() && i + 1 == block.insts.len() {
                break;
            }
            self.inst(b, inst);
        }
        let end_span = match (&block.term, block.insts.last()) {
            (Some(t), _) => t.span,
            (None, Some(last)) => last.span,
            (None, None) => block.span,
        };
        self.meta.inst_start(self.off(), b, None, end_span);
        match &block.term {
            Some(t) => self.terminator(b, &t.kind, t.span, fused),
            None => {
                if let Some(next) = FunctionPlan::fallthrough(self.func, b) {
                    self.jump(b, next);
                }
            }
        }
    }

    // ---- instructions -----------------------------------------------------------

    fn inst(&mut self, b: BlockId, inst: &Inst) {
        let span = inst.span;
        match &inst.kind {
            InstKind::Const { dst, value } => M::assign(self, *dst, Val::Imm(*value)),
            InstKind::Unary { op, dst, arg } => match op {
                Opcode::Copy => {
                    let v = self.val(*arg);
                    M::assign(self, *dst, v)
                }
                Opcode::Neg | Opcode::Not => {
                    let v = self.val(*arg);
                    M::unary(self, *op, *dst, v)
                }
                Opcode::Len => {
                    let v = self.val(*arg);
                    self.load(M::RESULT, v);
                    self.nil_check(b, span);
                    M::object_length(self);
                    self.store(*dst, M::RESULT);
                }
                _ => self.runtime_call(b, span, *op, &[*arg], 0, Some(*dst)),
            },
            InstKind::Binary { op, dst, args } => self.binary(b, span, *op, *dst, args[0], args[1]),
            InstKind::Nullary { op, dst } => self.runtime_call(b, span, *op, &[], 0, Some(*dst)),
            InstKind::Effect { op, args } => match op {
                Opcode::Set | Opcode::SetRef => {
                    self.heap_store(b, span, *op, args[0], args[1], args[2])
                }
                _ => self.runtime_call(b, span, *op, args, 0, None),
            },
            InstKind::Load { op, dst, global } => {
                let addr = self.globals[global.index()] as i64;
                if let Some(header) = inst.hoisted.0 {
                    self.meta.hoisted_load(self.off(), *global, header);
                }
                let w = self.dst_reg(*dst).unwrap_or(M::RESULT);
                M::load_global(self, *op, w, addr);
                self.store(*dst, w);
            }
            InstKind::Store { op, global, value } => {
                let addr = self.globals[global.index()] as i64;
                let v = self.val(*value);
                if *op == Opcode::StoreAtomic {
                    M::store_global_atomic(self, addr, v);
                    return;
                }
                let r = M::in_reg(self, v, M::RESULT);
                M::global_address(self, addr);
                if self.ref_globals[global.index()] {
                    self.barrier_check(b, span, OldRef::Global);
                    M::store_global(self, r);
                    self.meta.end_unsafe(self.off());
                } else {
                    M::store_global(self, r);
                }
            }
            InstKind::AtomicAdd { dst, global, value } => {
                let addr = self.globals[global.index()] as i64;
                let v = self.val(*value);
                let r = M::atomic_add(self, addr, v);
                self.store(*dst, r);
            }
            InstKind::Cas {
                dst,
                global,
                old,
                new,
            } => {
                let addr = self.globals[global.index()] as i64;
                let (o, n) = (self.val(*old), self.val(*new));
                let r = M::compare_and_swap(self, addr, o, n);
                self.store(*dst, r);
            }
            InstKind::Call { dst, func, args } => {
                // The first arguments in registers; argument `i` after
                // them in outgoing word `i`, where the callee finds it as
                // the runtime's goroutine entry lays arguments out.
                for (&a, &r) in args.iter().zip(M::ARG_REGS) {
                    let v = self.val(a);
                    self.load(r, v);
                }
                for (i, &a) in args.iter().enumerate().skip(M::ARG_REGS.len()) {
                    let v = self.val(a);
                    M::outgoing(self, i, v);
                }
                let callee = self.func_labels[func.index()];
                self.max_callee = self.max_callee.max(func.index());
                M::call(self, callee);
                self.meta
                    .call_site(self.off(), b, span, CallKind::Function(*func));
                self.set_current_func();
                if let Some(d) = dst {
                    self.store(*d, M::RESULT);
                }
            }
            InstKind::Spawn { func, args } => {
                self.runtime_call(b, span, Opcode::Spawn, args, func.0, None)
            }
            InstKind::Print { format, args } => {
                let types = args.iter().map(|&a| self.func.operand_type(a)).collect();
                let desc = self.pool.print(PrintDesc::new(format, types));
                self.runtime_call(b, span, Opcode::Print, args, desc, None)
            }
            InstKind::Assert { cond, message } => {
                let msg = self.pool.message(message);
                let label =
                    self.cold_label(b, span, ColdKind::Fault(FaultCode::AssertionFailed, msg));
                match self.val(*cond) {
                    Val::Imm(0) => M::jump(self, label),
                    Val::Imm(_) => {}
                    v => {
                        let t = M::test_nonzero(self, v);
                        M::branch_if(self, t.inverse(), label);
                    }
                }
            }
            InstKind::CCall { func, arg } => {
                self.runtime_call(b, span, Opcode::CCall, arg.as_slice(), *func as u32, None)
            }
        }
    }

    /// Stores the operands of a call or runtime call.
    fn operands(&mut self, args: &[Operand]) {
        for (i, &a) in args.iter().enumerate() {
            let v = self.val(a);
            M::outgoing(self, i, v);
        }
    }

    /// Enters the runtime for `op` with `args` as operands.
    fn runtime_call(
        &mut self,
        b: BlockId,
        span: Span,
        op: Opcode,
        args: &[Operand],
        payload: u32,
        dst: Option<Reg>,
    ) {
        self.operands(args);
        let rt = RuntimeOp::for_opcode(op).expect("a runtime operation");
        self.call_runtime(rt.request(payload), b, span, CallKind::Runtime);
        if let Some(d) = dst {
            self.store(d, M::RESULT);
        }
    }

    /// The request word in RESULT, the call into `rt_call`, and its
    /// return site.
    pub(super) fn call_runtime(&mut self, request: u64, b: BlockId, span: Span, kind: CallKind) {
        M::mov_imm(self, M::RESULT, request as i64);
        let rt_call = self.rt_call;
        M::call(self, rt_call);
        self.meta.call_site(self.off(), b, span, kind);
    }

    fn binary(&mut self, b: BlockId, span: Span, op: Opcode, dst: Reg, x: Operand, y: Operand) {
        let (vx, vy) = (self.val(x), self.val(y));
        if let Some(c) = Cond::of(op) {
            M::compare(self, vx, vy);
            let w = M::set_from_flags(self, c, dst);
            self.store(dst, w);
            return;
        }
        match op {
            Opcode::Div | Opcode::Rem => {
                // A constant divisor other than 0 needs no zero check.
                let zero = match vy {
                    Val::Imm(v) if v != 0 => None,
                    _ => {
                        Some(self.cold_label(b, span, ColdKind::Fault(FaultCode::DivideByZero, 0)))
                    }
                };
                match (vy, zero) {
                    (Val::Imm(0), Some(zero)) => M::jump(self, zero),
                    _ => M::divide(self, op, dst, vx, vy, zero),
                }
            }
            Opcode::Get | Opcode::GetRef => {
                self.slot_address(b, span, x, y);
                let bad = self.cold_label(b, span, ColdKind::SlotTag);
                let r = M::load_slot_value(self, op, bad);
                self.store(dst, r);
            }
            _ => M::arithmetic(self, op, dst, vx, vy),
        }
    }

    /// Branches to a nil-dereference fault when RESULT is nil.
    fn nil_check(&mut self, b: BlockId, span: Span) {
        let nil = self.cold_label(b, span, ColdKind::Fault(FaultCode::NilDereference, 0));
        let t = M::test_nonzero(self, Val::Reg(M::RESULT));
        M::branch_if(self, t.inverse(), nil);
    }

    /// Leaves the address of slot `index` of `obj`, less 16, in RESULT,
    /// after the nil and bounds checks.
    fn slot_address(&mut self, b: BlockId, span: Span, obj: Operand, index: Operand) {
        let (o, i) = (self.val(obj), self.val(index));
        self.load(M::RESULT, o);
        self.nil_check(b, span);
        self.load(M::INDEX, i);
        let oob = self.cold_label(b, span, ColdKind::IndexOutOfRange);
        M::slot_address(self, oob);
    }

    fn heap_store(
        &mut self,
        b: BlockId,
        span: Span,
        op: Opcode,
        obj: Operand,
        index: Operand,
        value: Operand,
    ) {
        self.slot_address(b, span, obj, index);
        let v = self.val(value);
        let r = M::in_reg(self, v, M::VALUE);
        // Both stores may overwrite a ref (a slot's kind changes with the
        // store), so both take the barrier.
        self.barrier_check(b, span, OldRef::Slot);
        M::store_slot_value(self, op, r);
        self.meta.end_unsafe(self.off());
    }

    /// The write barrier's fast path, before a store that may overwrite a
    /// ref: opens the `WriteBarrier` unsafe region (the caller closes it
    /// after its stores) and branches to the slow path while the collector
    /// marks.
    fn barrier_check(&mut self, b: BlockId, span: Span, old: OldRef) {
        let (slow, resume) = (self.label(), self.label());
        self.meta.begin_unsafe(UnsafeKind::WriteBarrier, self.off());
        M::barrier_test(self, slow);
        self.ops.dynamic_label(resume);
        self.cold.push(Cold {
            label: slow,
            block: b,
            span,
            kind: ColdKind::Barrier { resume, old },
        });
    }

    // ---- terminators ---------------------------------------------------------------

    fn terminator(
        &mut self,
        b: BlockId,
        kind: &TermKind,
        span: Span,
        fused: Option<(Cond, Operand, Operand)>,
    ) {
        match kind {
            TermKind::Jmp { target } => self.jump(b, *target),
            TermKind::Br { cond, then_, else_ } => {
                let t = match fused {
                    Some((c, x, y)) => {
                        let (vx, vy) = (self.val(x), self.val(y));
                        M::compare(self, vx, vy);
                        Test::Flags(c)
                    }
                    None => match self.val(*cond) {
                        Val::Imm(v) => {
                            self.jump(b, if v != 0 { *then_ } else { *else_ });
                            return;
                        }
                        v => M::test_nonzero(self, v),
                    },
                };
                self.branch(b, t, *then_, *else_);
            }
            TermKind::Ret { value } => {
                if let Some(v) = value {
                    let v = self.val(*v);
                    self.load(M::RESULT, v);
                }
                self.epilogue();
            }
            TermKind::Goexit => {
                self.runtime_call(b, span, Opcode::Goexit, &[], 0, None);
                M::trap(self);
            }
            TermKind::Panic { message } => {
                let msg = self.pool.message(message);
                let request = fault_request(FaultCode::Panic, msg);
                self.call_runtime(request, b, span, CallKind::Fault);
                M::trap(self);
            }
            TermKind::Select { arms } => {
                if !kind.is_runtime_op() {
                    // Only a default arm: a plain jump, not a preemption point.
                    self.jump(b, arms[0].target);
                    return;
                }
                let desc = self.pool.select(kind);
                let mut operands = Vec::new();
                kind.for_each_operand(|o| operands.push(o));
                self.runtime_call(b, span, Opcode::Select, &operands, desc, None);
                // The runtime returns the index of the arm taken.
                for (i, arm) in arms.iter().enumerate() {
                    let last = i + 1 == arms.len();
                    let next_arm = self.label();
                    if !last {
                        M::compare_result(self, i as u32);
                        M::branch_if(self, Test::Flags(Cond::Ne), next_arm);
                    }
                    if let ArmKind::Recv { into: Some(v), .. } = arm.kind {
                        M::load_context(self, M::SCRATCH, CTX_RESULT2);
                        self.store(v, M::SCRATCH);
                    }
                    if last {
                        self.jump(b, arm.target);
                    } else {
                        self.jump_always(b, arm.target);
                        self.ops.dynamic_label(next_arm);
                    }
                }
            }
        }
    }
}

/// Emits what `emit` emits, alone, as if inside `func` with its registers
/// where `location` says and a frame of two spill slots and three
/// outgoing words; every label the hooks are given is one bound at offset
/// 0. For the golden encoding tests of the hooks.
#[cfg(test)]
pub(crate) fn emit_alone<M: Machine>(
    func: &Function,
    location: fn(&str) -> Location,
    emit: impl FnOnce(&mut Lower<'_, M>, DynamicLabel),
) -> Vec<u8> {
    let mut plan = FunctionPlan::new(func, &M::REGISTERS);
    for (i, r) in func.regs.iter().enumerate() {
        plan.alloc.locations[i] = location(&r.name);
    }
    plan.alloc.spill_slots = 2;
    plan.alloc.outgoing_words = 3;
    plan.alloc.used_callee_saved = Vec::new();
    let mut ops = CodeBuffer::<M::Relocation>::default();
    let (mut meta, mut pool) = (MetadataBuilder::new(), ConstantPool::default());
    let target = ops.new_dynamic_label();
    ops.dynamic_label(target);
    let mut cx = Lower {
        ops: &mut ops,
        meta: &mut meta,
        pool: &mut pool,
        globals: &[],
        ref_globals: &[],
        func,
        fid: FuncId::new(0),
        frame: M::frame_layout(&plan.alloc),
        plan: &plan,
        func_labels: &[],
        rt_call: target,
        preempt_stub: target,
        mode: PreemptMode::Async,
        nosplit_leaves: false,
        block_labels: Vec::new(),
        cold: Vec::new(),
        max_callee: 0,
    };
    emit(&mut cx, target);
    ops.finalize()
        .expect("every label the hooks use is defined")
        .to_vec()
}

use crate::abi::NOSPLIT_FRAME_MAX;

/// A function that calls nothing and enters the runtime only to fault (as
/// Go's panic helpers), with a small frame: what Go's compiler marks
/// NOSPLIT by itself, so that it has no stack check at entry.
pub fn is_small_leaf(func: &Function, frame_size: i32) -> bool {
    frame_size < NOSPLIT_FRAME_MAX
        && func.blocks.iter().all(|b| {
            b.insts.iter().all(|i| {
                let op = i.kind.opcode();
                !op.is_call() && !op.is_runtime_op()
            }) && b.term.as_ref().is_none_or(|t| !t.kind.is_runtime_op())
        })
}

#[cfg(test)]
mod leaf_tests {
    use super::*;

    fn func(src: &str) -> Function {
        let src = format!("{src}\nfunc @main() {{\n    ret\n}}\n");
        let mut p = crate::ir::parse(&src).expect("parses");
        crate::ir::verify(&mut p).expect("verifies");
        p.funcs.remove(0)
    }

    #[test]
    fn only_small_functions_that_call_nothing_are_nosplit_leaves() {
        let leaf = func(
            "func @f(%n: i64) -> i64 {\n    %m = add %n, 1\n    %q = div %m, %n\n    ret %q\n}\n",
        );
        assert!(
            is_small_leaf(&leaf, 16),
            "a division may fault: still a leaf, as Go's panic helpers"
        );
        assert!(
            !is_small_leaf(&leaf, NOSPLIT_FRAME_MAX),
            "a frame of 128 bytes or more"
        );
        let calls = func("func @f() {\n    call @f()\n    ret\n}\n");
        assert!(!is_small_leaf(&calls, 16));
        let yields = func("func @f() {\n    yield\n    ret\n}\n");
        assert!(!is_small_leaf(&yields, 16));
        let selects = func("func @f() {\nl:\n    select default -> l\n}\n");
        assert!(
            is_small_leaf(&selects, 16),
            "a select with only default is a jump"
        );
    }
}
