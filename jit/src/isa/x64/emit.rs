//! Emission of PIR functions as x86-64 code.

use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};

use super::{CTX, RAX, RCX, RDX, REGISTERS};
use crate::abi::{
    fault_request, FaultCode, RuntimeOp, CTX_FUNC, CTX_GC, CTX_POLL, CTX_POLL_PAGE, CTX_RESULT2,
    CTX_STACK_GUARD, GC_MARKING, GC_SHADE, OBJ_LEN, OBJ_SLOTS, SLOT_SHIFT, SLOT_TAG, SLOT_VALUE,
    TAG_INT, TAG_REF,
};
use crate::code::{CallKind, MetadataBuilder, UnsafeKind};
use crate::ir::{
    ArmKind, BlockId, FuncId, Function, Inst, InstKind, Opcode, Operand, PreemptMode, Program, Reg,
    Span, TermKind, Type,
};
use crate::lower::{FunctionPlan, Location};
use crate::module::{Arch, Assembled, ConstantPool, PrintDesc};

type Asm = VecAssembler<X64Relocation>;

/// Where an operand's value is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Val {
    Reg(u8),
    /// `[rbp + offset]`
    Mem(i32),
    Imm(i64),
}

impl Val {
    fn imm32(self) -> Option<i32> {
        match self {
            Val::Imm(v) => i32::try_from(v).ok(),
            _ => None,
        }
    }
}

/// Signed integer conditions, after `cmp a, b`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cond {
    E,
    Ne,
    L,
    Le,
    G,
    Ge,
}

impl Cond {
    fn of(op: Opcode) -> Option<Cond> {
        Some(match op {
            Opcode::Eq => Cond::E,
            Opcode::Ne => Cond::Ne,
            Opcode::Lt => Cond::L,
            Opcode::Le => Cond::Le,
            Opcode::Gt => Cond::G,
            Opcode::Ge => Cond::Ge,
            _ => return None,
        })
    }
    fn inverse(self) -> Cond {
        match self {
            Cond::E => Cond::Ne,
            Cond::Ne => Cond::E,
            Cond::L => Cond::Ge,
            Cond::Le => Cond::G,
            Cond::G => Cond::Le,
            Cond::Ge => Cond::L,
        }
    }
}

/// An out-of-line path, emitted after the function's blocks.
struct Cold {
    label: DynamicLabel,
    block: BlockId,
    span: Span,
    kind: ColdKind,
}

enum ColdKind {
    /// The prologue's stack check failed; resume at the check.
    StackCheck { resume: DynamicLabel },
    /// A fault without operands.
    Fault(FaultCode, u32),
    /// Index out of range: the object is in rax, the index in rdx.
    IndexOutOfRange,
    /// `get` or `getref` found a tag it does not read: a type mismatch, or
    /// a freed object's poison. The slot is at `[rax + 16]`, the object at
    /// `rax - rdx`.
    SlotTag,
    /// The write barrier's slow path: shade the old ref, then resume at
    /// the store. The barrier's block is in rdx.
    Barrier { resume: DynamicLabel, old: OldRef },
    /// A back-edge's yield (poll's slow path, patch's trampoline): enter
    /// the preemption stub as a signal's redirect would, with the loop
    /// head as the resume address, then go on to the loop head.
    Yield {
        target: DynamicLabel,
        /// The patchable branch this is the trampoline of.
        patch: Option<usize>,
    },
}

/// Where the write barrier finds the ref a store overwrites.
#[derive(Clone, Copy)]
enum OldRef {
    /// A heap slot: tag at `[rax + 16]`, value at `[rax + 24]`.
    Slot,
    /// A ref global, at `[r11]`.
    Global,
}

/// Assembles a verified program for x86-64; `globals[i]` is the address
/// of global `i`.
pub fn assemble(prog: &Program, globals: &[usize]) -> Assembled {
    let mut ops = Asm::new(0);
    let mut meta = MetadataBuilder::new();
    let rt_call = ops.new_dynamic_label();
    let async_stub = ops.new_dynamic_label();
    let stub_offsets = super::stubs::emit(&mut ops, &mut meta, rt_call, async_stub);
    let mode = prog.settings.preempt.unwrap_or(PreemptMode::Async);
    let func_labels: Vec<DynamicLabel> =
        prog.funcs.iter().map(|_| ops.new_dynamic_label()).collect();
    let mut pool = ConstantPool::default();
    let mut function_offsets = Vec::with_capacity(prog.funcs.len());
    let ref_globals: Vec<bool> = prog.globals.iter().map(|g| g.ty == Type::Ref).collect();
    for (i, func) in prog.funcs.iter().enumerate() {
        let plan = FunctionPlan::new(func, &REGISTERS);
        function_offsets.push(ops.offset().0);
        let mut e = FnEmitter {
            ops: &mut ops,
            meta: &mut meta,
            pool: &mut pool,
            globals,
            ref_globals: &ref_globals,
            func,
            fid: FuncId::new(i),
            plan: &plan,
            func_labels: &func_labels,
            rt_call,
            async_stub,
            mode,
            block_labels: Vec::new(),
            cold: Vec::new(),
            saved: plan.alloc.used_callee_saved.len() as i32,
        };
        e.function();
    }
    let tables = meta.finish();
    let code = ops
        .finalize()
        .expect("every label the backend references is defined");
    Assembled {
        arch: Arch::X86_64,
        code,
        tables,
        function_offsets,
        stub_offsets,
        pool,
    }
}

struct FnEmitter<'a> {
    ops: &'a mut Asm,
    meta: &'a mut MetadataBuilder,
    pool: &'a mut ConstantPool,
    globals: &'a [usize],
    /// Which globals hold a ref (their stores take the write barrier).
    ref_globals: &'a [bool],
    func: &'a Function,
    fid: FuncId,
    plan: &'a FunctionPlan,
    func_labels: &'a [DynamicLabel],
    rt_call: DynamicLabel,
    /// The `async_preempt` stub, which the back-edge yields call too.
    async_stub: DynamicLabel,
    /// What loop back-edges carry (see [`FnEmitter::back_edge`]).
    mode: PreemptMode,
    block_labels: Vec<DynamicLabel>,
    cold: Vec<Cold>,
    /// Number of callee-saved registers saved in the frame.
    saved: i32,
}

impl FnEmitter<'_> {
    fn off(&self) -> usize {
        self.ops.offset().0
    }

    fn function(&mut self) {
        let func = self.func;
        self.block_labels = func
            .blocks
            .iter()
            .map(|_| self.ops.new_dynamic_label())
            .collect();

        let frame = {
            let slots =
                self.saved as u32 + self.plan.alloc.spill_slots + self.plan.alloc.outgoing_words;
            (slots * 8).div_ceil(16) * 16
        } as i32;

        // Prologue.
        let entry = self.off();
        self.meta
            .begin_function(self.fid, &func.name, func.span, entry);
        dynasm!(self.ops ; .arch x64 ; =>self.func_labels[self.fid.index()]);
        self.meta.begin_unsafe(UnsafeKind::FrameSetup, entry);
        let check = self.ops.new_dynamic_label();
        let overflow = self.ops.new_dynamic_label();
        dynasm!(self.ops
            ; .arch x64
            ; push rbp
            ; mov rbp, rsp
            ; sub rsp, frame
            ; =>check
            ; cmp rsp, [Rq(super::CTX) + CTX_STACK_GUARD]
            ; jb =>overflow
        );
        self.cold.push(Cold {
            label: overflow,
            block: BlockId::new(0),
            span: func.span,
            kind: ColdKind::StackCheck { resume: check },
        });
        for (j, &r) in self.plan.alloc.used_callee_saved.iter().enumerate() {
            let off = -8 * (j as i32 + 1);
            dynasm!(self.ops ; .arch x64 ; mov [rbp + off], Rq(r));
        }
        self.set_current_func();
        for (i, &p) in func.params.iter().enumerate() {
            if let Location::Reg(r) = self.plan.alloc.location(p) {
                let off = 16 + 8 * i as i32;
                dynasm!(self.ops ; .arch x64 ; mov Rq(r), [rbp + off]);
            }
        }
        self.meta.end_unsafe(self.off());

        for &b in &self.plan.layout {
            self.block(b);
        }
        self.meta.end_block(self.off());

        // Out-of-line paths, the write barriers' last.
        let (barriers, others): (Vec<Cold>, Vec<Cold>) = std::mem::take(&mut self.cold)
            .into_iter()
            .partition(|c| matches!(c.kind, ColdKind::Barrier { .. }));
        for cold in others.into_iter().chain(barriers) {
            self.cold_path(cold);
        }
        self.plan.record_loops(self.func, self.meta);
        self.meta.end_function(self.off());
    }

    /// `--preempt patch`: the context says which function runs (whose
    /// back-edges a stop request rewrites): at entry, and again after each
    /// call returns.
    fn set_current_func(&mut self) {
        if self.mode == PreemptMode::Patch {
            let id = self.fid.index() as i32;
            dynasm!(self.ops ; .arch x64 ; mov QWORD [Rq(CTX) + CTX_FUNC], id);
        }
    }

    fn cold_path(&mut self, cold: Cold) {
        if let ColdKind::Barrier { resume, old } = cold.kind {
            return self.barrier_path(cold.label, resume, old);
        }
        if let ColdKind::Yield { target, patch } = cold.kind {
            dynasm!(self.ops ; .arch x64 ; =>cold.label);
            if let Some(branch) = patch {
                self.meta.patch_site(branch, self.off());
            }
            // `call` pushes the address of the `jmp`, as the handler's
            // `push_call` pushes the interrupted PC: the stub's frame is
            // the same, and it returns here.
            dynasm!(self.ops
                ; .arch x64
                ; call =>self.async_stub
                ; jmp =>target
            );
            return;
        }
        dynasm!(self.ops ; .arch x64 ; =>cold.label);
        // The stack check's out-of-line path belongs to the prologue: the
        // frame is not complete, and a pending stop request that sent the
        // goroutine here must still be pending when the runtime call asks
        // why (an asynchronous stop in between would leave it to find an
        // unpoisoned guard, and report a stack overflow).
        let stack_check = matches!(cold.kind, ColdKind::StackCheck { .. });
        if stack_check {
            self.meta.begin_unsafe(UnsafeKind::FrameSetup, self.off());
        }
        let (request, kind) = match cold.kind {
            ColdKind::SlotTag => {
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rcx, [rax + OBJ_SLOTS + SLOT_TAG]
                    ; mov [rsp], rcx
                    ; sub rax, rdx
                    ; mov [rsp + 8], rax
                );
                (
                    fault_request(FaultCode::SlotTypeMismatch, 0),
                    CallKind::Fault,
                )
            }
            ColdKind::Barrier { .. } | ColdKind::Yield { .. } => unreachable!("handled above"),
            ColdKind::StackCheck { .. } => (RuntimeOp::StackCheck.request(0), CallKind::StackCheck),
            ColdKind::Fault(code, msg) => (fault_request(code, msg), CallKind::Fault),
            ColdKind::IndexOutOfRange => {
                dynasm!(self.ops
                    ; .arch x64
                    ; mov [rsp], rdx
                    ; mov rcx, [rax + OBJ_LEN]
                    ; mov [rsp + 8], rcx
                );
                (
                    fault_request(FaultCode::IndexOutOfRange, 0),
                    CallKind::Fault,
                )
            }
        };
        self.mov_imm(RAX, request as i64);
        dynasm!(self.ops ; .arch x64 ; call =>self.rt_call);
        self.meta.call_site(self.off(), cold.block, cold.span, kind);
        match cold.kind {
            ColdKind::StackCheck { resume } => dynasm!(self.ops ; .arch x64 ; jmp =>resume),
            _ => dynasm!(self.ops ; .arch x64 ; ud2),
        }
        if stack_check {
            self.meta.end_unsafe(self.off());
        }
    }

    /// The write barrier's fast path, before a store that may overwrite a
    /// ref: opens the `WriteBarrier` unsafe region (the caller closes it
    /// after its stores) and branches to the slow path while the collector
    /// marks. Leaves the barrier's block in rdx.
    fn barrier_check(&mut self, b: BlockId, span: Span, old: OldRef) {
        const { assert!(GC_MARKING == 0, "the flag is the block's first word") };
        let (slow, resume) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
        self.meta.begin_unsafe(UnsafeKind::WriteBarrier, self.off());
        dynasm!(self.ops
            ; .arch x64
            ; mov rdx, [Rq(CTX) + CTX_GC]
            ; cmp QWORD [rdx], 0
            ; jne =>slow
            ; =>resume
        );
        self.cold.push(Cold {
            label: slow,
            block: b,
            span,
            kind: ColdKind::Barrier { resume, old },
        });
    }

    /// The write barrier's slow path: if the store overwrites a ref, pass
    /// it to the collector's `shade` (a C-ABI call on this stack, saving
    /// every caller-saved register the code may use), then go back to the
    /// store. Still inside the barrier, so an unsafe region of its own.
    fn barrier_path(&mut self, label: DynamicLabel, resume: DynamicLabel, old: OldRef) {
        dynasm!(self.ops ; .arch x64 ; =>label);
        self.meta.begin_unsafe(UnsafeKind::WriteBarrier, self.off());
        match old {
            OldRef::Slot => dynasm!(self.ops
                ; .arch x64
                ; cmp QWORD [rax + OBJ_SLOTS + SLOT_TAG], TAG_REF as i32
                ; jne =>resume
                ; cmp QWORD [rax + OBJ_SLOTS + SLOT_VALUE], 0
                ; je =>resume
            ),
            OldRef::Global => dynasm!(self.ops
                ; .arch x64
                ; cmp QWORD [r11], 0
                ; je =>resume
            ),
        }
        // Eight pushes keep rsp 16-byte aligned for the call.
        for &r in BARRIER_SAVED {
            dynasm!(self.ops ; .arch x64 ; push Rq(r));
        }
        dynasm!(self.ops ; .arch x64 ; mov rdi, rdx);
        match old {
            OldRef::Slot => {
                dynasm!(self.ops ; .arch x64 ; mov rsi, [rax + OBJ_SLOTS + SLOT_VALUE])
            }
            OldRef::Global => dynasm!(self.ops ; .arch x64 ; mov rsi, [r11]),
        }
        dynasm!(self.ops ; .arch x64 ; call QWORD [rdi + GC_SHADE]);
        for &r in BARRIER_SAVED.iter().rev() {
            dynasm!(self.ops ; .arch x64 ; pop Rq(r));
        }
        // The collector's code left its own words in rdx and the vector
        // registers; cleared, as `switch_to` clears them, so that no stale
        // heap address reaches a preemption stub's frame (see stubs.rs).
        dynasm!(self.ops ; .arch x64 ; xor edx, edx);
        for x in 0..16u8 {
            dynasm!(self.ops ; .arch x64 ; xorps Rx(x), Rx(x));
        }
        dynasm!(self.ops ; .arch x64 ; jmp =>resume);
        self.meta.end_unsafe(self.off());
    }

    fn block(&mut self, b: BlockId) {
        let block = &self.func.blocks[b.index()];
        dynasm!(self.ops ; .arch x64 ; =>self.block_labels[b.index()]);
        self.meta.begin_block(b, self.off());
        // A compare whose only use is the branch that ends the block is
        // fused into it.
        let fused = self
            .plan
            .fusable_compare(self.func, b)
            .map(|(op, x, y)| (Cond::of(op).expect("a compare"), x, y));
        for (i, inst) in block.insts.iter().enumerate() {
            self.meta.inst_start(self.off(), b, Some(i));
            if fused.is_some() && i + 1 == block.insts.len() {
                break;
            }
            self.inst(b, inst);
        }
        self.meta.inst_start(self.off(), b, None);
        match &block.term {
            Some(t) => self.terminator(b, &t.kind, t.span, fused),
            None => {
                if let Some(next) = FunctionPlan::fallthrough(self.func, b) {
                    self.jump(b, next);
                }
            }
        }
    }

    // ---- locations and moves -------------------------------------------

    fn mem_of(&self, loc: Location) -> Option<i32> {
        match loc {
            Location::Spill(k) => Some(-8 * (self.saved + 1 + k as i32)),
            Location::Param(i) => Some(16 + 8 * i as i32),
            _ => None,
        }
    }

    fn val(&self, o: Operand) -> Val {
        match o {
            Operand::Imm(v) => Val::Imm(v),
            Operand::Nil => Val::Imm(0),
            Operand::Reg(r) => match self.plan.alloc.location(r) {
                Location::Reg(p) => Val::Reg(p),
                loc => Val::Mem(self.mem_of(loc).unwrap_or(0)),
            },
        }
    }

    fn dst_reg(&self, r: Reg) -> Option<u8> {
        match self.plan.alloc.location(r) {
            Location::Reg(p) => Some(p),
            _ => None,
        }
    }

    fn mov_imm(&mut self, dst: u8, v: i64) {
        if let Ok(v32) = u32::try_from(v) {
            // A 32-bit move zero-extends, and is shorter.
            let v32 = v32 as i32;
            dynasm!(self.ops ; .arch x64 ; mov Rd(dst), v32);
        } else if let Ok(v32) = i32::try_from(v) {
            dynasm!(self.ops ; .arch x64 ; mov Rq(dst), v32);
        } else {
            dynasm!(self.ops ; .arch x64 ; mov Rq(dst), QWORD v);
        }
    }

    /// `dst = v`.
    fn load(&mut self, dst: u8, v: Val) {
        match v {
            Val::Reg(r) if r == dst => {}
            Val::Reg(r) => dynasm!(self.ops ; .arch x64 ; mov Rq(dst), Rq(r)),
            Val::Mem(off) => dynasm!(self.ops ; .arch x64 ; mov Rq(dst), [rbp + off]),
            Val::Imm(i) => self.mov_imm(dst, i),
        }
    }

    /// A register holding `v`: its own, or `scratch` after loading it.
    fn in_reg(&mut self, v: Val, scratch: u8) -> u8 {
        match v {
            Val::Reg(r) => r,
            _ => {
                self.load(scratch, v);
                scratch
            }
        }
    }

    /// Writes machine register `src` to PIR register `d`.
    fn store(&mut self, d: Reg, src: u8) {
        match self.plan.alloc.location(d) {
            Location::Reg(r) if r == src => {}
            Location::Reg(r) => dynasm!(self.ops ; .arch x64 ; mov Rq(r), Rq(src)),
            Location::Unused => {}
            loc => {
                let off = self.mem_of(loc).unwrap_or(0);
                dynasm!(self.ops ; .arch x64 ; mov [rbp + off], Rq(src));
            }
        }
    }

    /// Writes `v` to PIR register `d`.
    fn assign(&mut self, d: Reg, v: Val) {
        match (self.plan.alloc.location(d), v) {
            (Location::Reg(r), v) => self.load(r, v),
            (Location::Unused, _) => {}
            (loc, Val::Reg(s)) => {
                let off = self.mem_of(loc).unwrap_or(0);
                dynasm!(self.ops ; .arch x64 ; mov [rbp + off], Rq(s));
            }
            (loc, v) if v.imm32().is_some() => {
                let off = self.mem_of(loc).unwrap_or(0);
                let imm = v.imm32().unwrap_or(0);
                dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + off], imm);
            }
            (_, v) => {
                self.load(RAX, v);
                self.store(d, RAX);
            }
        }
    }

    /// Stores operand `i` of a call or runtime operation.
    fn outgoing(&mut self, i: usize, v: Val) {
        let off = 8 * i as i32;
        match v {
            Val::Reg(r) => dynasm!(self.ops ; .arch x64 ; mov [rsp + off], Rq(r)),
            v if v.imm32().is_some() => {
                let imm = v.imm32().unwrap_or(0);
                dynasm!(self.ops ; .arch x64 ; mov QWORD [rsp + off], imm);
            }
            v => {
                self.load(RAX, v);
                dynasm!(self.ops ; .arch x64 ; mov [rsp + off], rax);
            }
        }
    }

    // ---- instructions ----------------------------------------------------

    fn inst(&mut self, b: BlockId, inst: &Inst) {
        let span = inst.span;
        match &inst.kind {
            InstKind::Const { dst, value } => self.assign(*dst, Val::Imm(*value)),
            InstKind::Unary { op, dst, arg } => match op {
                Opcode::Copy => {
                    let v = self.val(*arg);
                    self.assign(*dst, v)
                }
                Opcode::Neg | Opcode::Not => {
                    let w = self.dst_reg(*dst).unwrap_or(RAX);
                    let v = self.val(*arg);
                    self.load(w, v);
                    if *op == Opcode::Neg {
                        dynasm!(self.ops ; .arch x64 ; neg Rq(w));
                    } else {
                        dynasm!(self.ops ; .arch x64 ; not Rq(w));
                    }
                    self.store(*dst, w);
                }
                Opcode::Len => {
                    let v = self.val(*arg);
                    self.load(RAX, v);
                    self.nil_check(b, span);
                    dynasm!(self.ops ; .arch x64 ; mov rax, [rax + OBJ_LEN]);
                    self.store(*dst, RAX);
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
            InstKind::Load { dst, global, .. } => {
                // Plain and atomic loads are both a plain mov: x86-64 is TSO
                // and atomic stores use xchg, which makes them SC.
                let addr = self.globals[global.index()] as i64;
                if let Some(header) = inst.hoisted.0 {
                    self.meta.hoisted_load(self.off(), *global, header);
                }
                let w = self.dst_reg(*dst).unwrap_or(RAX);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov r11, QWORD addr
                    ; mov Rq(w), [r11]
                );
                self.store(*dst, w);
            }
            InstKind::Store { op, global, value } => {
                let addr = self.globals[global.index()] as i64;
                let v = self.val(*value);
                if *op == Opcode::StoreAtomic {
                    self.load(RAX, v);
                    dynasm!(self.ops
                        ; .arch x64
                        ; mov r11, QWORD addr
                        ; xchg [r11], rax
                    );
                } else if self.ref_globals[global.index()] {
                    let r = self.in_reg(v, RAX);
                    dynasm!(self.ops ; .arch x64 ; mov r11, QWORD addr);
                    self.barrier_check(b, span, OldRef::Global);
                    dynasm!(self.ops ; .arch x64 ; mov [r11], Rq(r));
                    self.meta.end_unsafe(self.off());
                } else {
                    let r = self.in_reg(v, RAX);
                    dynasm!(self.ops
                        ; .arch x64
                        ; mov r11, QWORD addr
                        ; mov [r11], Rq(r)
                    );
                }
            }
            InstKind::AtomicAdd { dst, global, value } => {
                let addr = self.globals[global.index()] as i64;
                let v = self.val(*value);
                self.load(RAX, v);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rcx, rax
                    ; mov r11, QWORD addr
                    ; lock xadd [r11], rax
                    ; add rax, rcx
                );
                self.store(*dst, RAX);
            }
            InstKind::Cas {
                dst,
                global,
                old,
                new,
            } => {
                let addr = self.globals[global.index()] as i64;
                let (o, n) = (self.val(*old), self.val(*new));
                self.load(RAX, o);
                self.load(RCX, n);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov r11, QWORD addr
                    ; lock cmpxchg [r11], rcx
                    ; sete al
                    ; movzx eax, al
                );
                self.store(*dst, RAX);
            }
            InstKind::Call { dst, func, args } => {
                for (i, &a) in args.iter().enumerate() {
                    let v = self.val(a);
                    self.outgoing(i, v);
                }
                dynasm!(self.ops ; .arch x64 ; call =>self.func_labels[func.index()]);
                self.meta
                    .call_site(self.off(), b, span, CallKind::Function(*func));
                self.set_current_func();
                if let Some(d) = dst {
                    self.store(*d, RAX);
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
                    Val::Imm(0) => dynasm!(self.ops ; .arch x64 ; jmp =>label),
                    Val::Imm(_) => {}
                    v => {
                        self.test_nonzero(v);
                        dynasm!(self.ops ; .arch x64 ; je =>label);
                    }
                }
            }
            InstKind::CCall { func, arg } => {
                let args: Vec<Operand> = arg.iter().copied().collect();
                self.runtime_call(b, span, Opcode::CCall, &args, *func as u32, None)
            }
        }
    }

    fn cold_label(&mut self, block: BlockId, span: Span, kind: ColdKind) -> DynamicLabel {
        let label = self.ops.new_dynamic_label();
        self.cold.push(Cold {
            label,
            block,
            span,
            kind,
        });
        label
    }

    /// Sets ZF when `v` is zero.
    fn test_nonzero(&mut self, v: Val) {
        match v {
            Val::Reg(r) => dynasm!(self.ops ; .arch x64 ; test Rq(r), Rq(r)),
            Val::Mem(off) => dynasm!(self.ops ; .arch x64 ; cmp QWORD [rbp + off], 0),
            Val::Imm(i) => {
                self.mov_imm(RAX, i);
                dynasm!(self.ops ; .arch x64 ; test rax, rax);
            }
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
        for (i, &a) in args.iter().enumerate() {
            let v = self.val(a);
            self.outgoing(i, v);
        }
        let rt = RuntimeOp::for_opcode(op).expect("a runtime operation");
        self.mov_imm(RAX, rt.request(payload) as i64);
        dynasm!(self.ops ; .arch x64 ; call =>self.rt_call);
        self.meta.call_site(self.off(), b, span, CallKind::Runtime);
        if let Some(d) = dst {
            self.store(d, RAX);
        }
    }

    /// Jumps to a nil-dereference fault when rax is nil.
    fn nil_check(&mut self, b: BlockId, span: Span) {
        let nil = self.cold_label(b, span, ColdKind::Fault(FaultCode::NilDereference, 0));
        dynasm!(self.ops
            ; .arch x64
            ; test rax, rax
            ; jz =>nil
        );
    }

    /// Leaves `rax + 16*index` in rax for the slot `index` of object `obj`,
    /// after the nil and bounds checks (index in rdx for the fault path).
    fn slot_address(&mut self, b: BlockId, span: Span, obj: Operand, index: Operand) {
        let (o, i) = (self.val(obj), self.val(index));
        self.load(RAX, o);
        self.nil_check(b, span);
        self.load(RDX, i);
        let oob = self.cold_label(b, span, ColdKind::IndexOutOfRange);
        dynasm!(self.ops
            ; .arch x64
            ; cmp rdx, [rax + OBJ_LEN]
            ; jae =>oob
            ; shl rdx, SLOT_SHIFT as i8
            ; add rax, rdx
        );
    }

    fn heap_load(
        &mut self,
        b: BlockId,
        span: Span,
        op: Opcode,
        dst: Reg,
        obj: Operand,
        index: Operand,
    ) {
        self.slot_address(b, span, obj, index);
        let bad = self.cold_label(b, span, ColdKind::SlotTag);
        // A fresh slot reads as 0 through get and as nil through getref. A
        // slot of the other kind is a mismatch, and so is any other tag (a
        // freed object's poison): the runtime tells the two apart.
        if op == Opcode::Get {
            dynasm!(self.ops
                ; .arch x64
                ; cmp QWORD [rax + OBJ_SLOTS + SLOT_TAG], TAG_INT as i32
                ; ja =>bad
            );
        } else {
            dynasm!(self.ops
                ; .arch x64
                ; test QWORD [rax + OBJ_SLOTS + SLOT_TAG], !(TAG_REF as i32)
                ; jnz =>bad
            );
        }
        dynasm!(self.ops ; .arch x64 ; mov rax, [rax + OBJ_SLOTS + SLOT_VALUE]);
        self.store(dst, RAX);
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
        let r = self.in_reg(v, RCX);
        // Both stores may overwrite a ref (a slot's kind changes with the
        // store), so both take the barrier.
        self.barrier_check(b, span, OldRef::Slot);
        // The order keeps a concurrent reader from seeing a ref tag with an
        // integer value: an i64 store retags first, a ref store retags last.
        if op == Opcode::Set {
            dynasm!(self.ops
                ; .arch x64
                ; mov QWORD [rax + OBJ_SLOTS + SLOT_TAG], TAG_INT as i32
                ; mov [rax + OBJ_SLOTS + SLOT_VALUE], Rq(r)
            );
        } else {
            dynasm!(self.ops
                ; .arch x64
                ; mov [rax + OBJ_SLOTS + SLOT_VALUE], Rq(r)
                ; mov QWORD [rax + OBJ_SLOTS + SLOT_TAG], TAG_REF as i32
            );
        }
        self.meta.end_unsafe(self.off());
    }

    /// `cmp a, b`, with whatever loads the operand forms need.
    fn compare(&mut self, a: Val, b: Val) {
        let a_reg = match (a, b) {
            (Val::Mem(off), Val::Reg(rb)) => {
                dynasm!(self.ops ; .arch x64 ; cmp [rbp + off], Rq(rb));
                return;
            }
            (Val::Mem(off), b) if b.imm32().is_some() => {
                let imm = b.imm32().unwrap_or(0);
                dynasm!(self.ops ; .arch x64 ; cmp QWORD [rbp + off], imm);
                return;
            }
            (a, _) => self.in_reg(a, RAX),
        };
        match b {
            Val::Reg(rb) => dynasm!(self.ops ; .arch x64 ; cmp Rq(a_reg), Rq(rb)),
            Val::Mem(off) => dynasm!(self.ops ; .arch x64 ; cmp Rq(a_reg), [rbp + off]),
            Val::Imm(_) if b.imm32().is_some() => {
                let imm = b.imm32().unwrap_or(0);
                dynasm!(self.ops ; .arch x64 ; cmp Rq(a_reg), imm);
            }
            Val::Imm(i) => {
                self.mov_imm(RCX, i);
                dynasm!(self.ops ; .arch x64 ; cmp Rq(a_reg), rcx);
            }
        }
    }

    fn setcc(&mut self, c: Cond) {
        match c {
            Cond::E => dynasm!(self.ops ; .arch x64 ; sete al),
            Cond::Ne => dynasm!(self.ops ; .arch x64 ; setne al),
            Cond::L => dynasm!(self.ops ; .arch x64 ; setl al),
            Cond::Le => dynasm!(self.ops ; .arch x64 ; setle al),
            Cond::G => dynasm!(self.ops ; .arch x64 ; setg al),
            Cond::Ge => dynasm!(self.ops ; .arch x64 ; setge al),
        }
        dynasm!(self.ops ; .arch x64 ; movzx eax, al);
    }

    fn jcc(&mut self, c: Cond, label: DynamicLabel) {
        match c {
            Cond::E => dynasm!(self.ops ; .arch x64 ; je =>label),
            Cond::Ne => dynasm!(self.ops ; .arch x64 ; jne =>label),
            Cond::L => dynasm!(self.ops ; .arch x64 ; jl =>label),
            Cond::Le => dynasm!(self.ops ; .arch x64 ; jle =>label),
            Cond::G => dynasm!(self.ops ; .arch x64 ; jg =>label),
            Cond::Ge => dynasm!(self.ops ; .arch x64 ; jge =>label),
        }
    }

    fn binary(&mut self, b: BlockId, span: Span, op: Opcode, dst: Reg, x: Operand, y: Operand) {
        if let Some(c) = Cond::of(op) {
            let (vx, vy) = (self.val(x), self.val(y));
            self.compare(vx, vy);
            self.setcc(c);
            self.store(dst, RAX);
            return;
        }
        match op {
            Opcode::Div | Opcode::Rem => return self.divide(b, span, op, dst, x, y),
            Opcode::Get | Opcode::GetRef => return self.heap_load(b, span, op, dst, x, y),
            Opcode::Shl | Opcode::Shr | Opcode::Sar => return self.shift(op, dst, x, y),
            _ => {}
        }
        let commutative = matches!(
            op,
            Opcode::Add | Opcode::Mul | Opcode::And | Opcode::Or | Opcode::Xor
        );
        let (mut vx, mut vy) = (self.val(x), self.val(y));
        let d = self.dst_reg(dst);
        // Compute in the destination register unless it holds the right
        // operand (then swap if the operation allows, else use rax).
        let w = match d {
            Some(r) if vy != Val::Reg(r) || vx == vy => r,
            Some(r) if commutative => {
                std::mem::swap(&mut vx, &mut vy);
                r
            }
            _ => RAX,
        };
        self.load(w, vx);
        let imm = vy.imm32();
        match (op, vy) {
            (Opcode::Mul, _) if imm.is_some() => {
                let i = imm.unwrap_or(0);
                dynasm!(self.ops ; .arch x64 ; imul Rq(w), Rq(w), i);
            }
            (Opcode::Mul, Val::Reg(r)) => dynasm!(self.ops ; .arch x64 ; imul Rq(w), Rq(r)),
            (Opcode::Mul, Val::Mem(off)) => dynasm!(self.ops ; .arch x64 ; imul Rq(w), [rbp + off]),
            (_, _) if imm.is_some() => {
                let i = imm.unwrap_or(0);
                match op {
                    Opcode::Add => dynasm!(self.ops ; .arch x64 ; add Rq(w), i),
                    Opcode::Sub => dynasm!(self.ops ; .arch x64 ; sub Rq(w), i),
                    Opcode::And => dynasm!(self.ops ; .arch x64 ; and Rq(w), i),
                    Opcode::Or => dynasm!(self.ops ; .arch x64 ; or Rq(w), i),
                    _ => dynasm!(self.ops ; .arch x64 ; xor Rq(w), i),
                }
            }
            (_, Val::Mem(off)) => match op {
                Opcode::Add => dynasm!(self.ops ; .arch x64 ; add Rq(w), [rbp + off]),
                Opcode::Sub => dynasm!(self.ops ; .arch x64 ; sub Rq(w), [rbp + off]),
                Opcode::And => dynasm!(self.ops ; .arch x64 ; and Rq(w), [rbp + off]),
                Opcode::Or => dynasm!(self.ops ; .arch x64 ; or Rq(w), [rbp + off]),
                _ => dynasm!(self.ops ; .arch x64 ; xor Rq(w), [rbp + off]),
            },
            (_, v) => {
                let r = self.in_reg(v, RCX);
                match op {
                    Opcode::Add => dynasm!(self.ops ; .arch x64 ; add Rq(w), Rq(r)),
                    Opcode::Sub => dynasm!(self.ops ; .arch x64 ; sub Rq(w), Rq(r)),
                    Opcode::Mul => dynasm!(self.ops ; .arch x64 ; imul Rq(w), Rq(r)),
                    Opcode::And => dynasm!(self.ops ; .arch x64 ; and Rq(w), Rq(r)),
                    Opcode::Or => dynasm!(self.ops ; .arch x64 ; or Rq(w), Rq(r)),
                    _ => dynasm!(self.ops ; .arch x64 ; xor Rq(w), Rq(r)),
                }
            }
        }
        self.store(dst, w);
    }

    fn shift(&mut self, op: Opcode, dst: Reg, x: Operand, y: Operand) {
        let (vx, vy) = (self.val(x), self.val(y));
        if let Val::Imm(n) = vy {
            // The hardware masks a 64-bit shift count to 6 bits, as PIR does.
            let n = (n & 63) as i8;
            let w = self.dst_reg(dst).unwrap_or(RAX);
            self.load(w, vx);
            if n != 0 {
                match op {
                    Opcode::Shl => dynasm!(self.ops ; .arch x64 ; shl Rq(w), n),
                    Opcode::Shr => dynasm!(self.ops ; .arch x64 ; shr Rq(w), n),
                    _ => dynasm!(self.ops ; .arch x64 ; sar Rq(w), n),
                }
            }
            self.store(dst, w);
            return;
        }
        self.load(RCX, vy);
        self.load(RAX, vx);
        match op {
            Opcode::Shl => dynasm!(self.ops ; .arch x64 ; shl rax, cl),
            Opcode::Shr => dynasm!(self.ops ; .arch x64 ; shr rax, cl),
            _ => dynasm!(self.ops ; .arch x64 ; sar rax, cl),
        }
        self.store(dst, RAX);
    }

    /// Truncating division and remainder with Go's results for `MIN / -1`
    /// (`MIN`, remainder 0) instead of the hardware's #DE.
    fn divide(&mut self, b: BlockId, span: Span, op: Opcode, dst: Reg, x: Operand, y: Operand) {
        let (vx, vy) = (self.val(x), self.val(y));
        // A constant divisor other than 0 needs no zero check.
        let zero = match vy {
            Val::Imm(v) if v != 0 => None,
            _ => Some(self.cold_label(b, span, ColdKind::Fault(FaultCode::DivideByZero, 0))),
        };
        match vy {
            Val::Imm(0) => {
                let zero = zero.expect("made for a zero divisor");
                dynasm!(self.ops ; .arch x64 ; jmp =>zero);
                return;
            }
            Val::Imm(-1) => {
                self.load(RAX, vx);
                if op == Opcode::Div {
                    dynasm!(self.ops ; .arch x64 ; neg rax);
                } else {
                    dynasm!(self.ops ; .arch x64 ; mov eax, 0);
                }
            }
            Val::Imm(_) => {
                self.load(RAX, vx);
                self.load(RCX, vy);
                dynasm!(self.ops
                    ; .arch x64
                    ; cqo
                    ; idiv rcx
                );
                if op == Opcode::Rem {
                    dynasm!(self.ops ; .arch x64 ; mov rax, rdx);
                }
            }
            _ => {
                let zero = zero.expect("made for a variable divisor");
                let (normal, done) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
                self.load(RCX, vy);
                self.load(RAX, vx);
                dynasm!(self.ops
                    ; .arch x64
                    ; test rcx, rcx
                    ; jz =>zero
                    ; cmp rcx, -1
                    ; jne =>normal
                );
                if op == Opcode::Div {
                    dynasm!(self.ops ; .arch x64 ; neg rax);
                } else {
                    dynasm!(self.ops ; .arch x64 ; mov eax, 0);
                }
                dynasm!(self.ops
                    ; .arch x64
                    ; jmp =>done
                    ; =>normal
                    ; cqo
                    ; idiv rcx
                );
                if op == Opcode::Rem {
                    dynasm!(self.ops ; .arch x64 ; mov rax, rdx);
                }
                dynasm!(self.ops ; .arch x64 ; =>done);
            }
        }
        self.store(dst, RAX);
    }

    // ---- control flow ----------------------------------------------------

    /// Control transfer from the end of `from` to `to`. A loop back-edge is
    /// always an explicit `jmp rel32`, recorded (later mechanisms patch or
    /// instrument it); other jumps to the next block in layout vanish.
    fn jump(&mut self, from: BlockId, to: BlockId) {
        if self.plan.is_back_edge(from, to) {
            self.back_edge(from, to);
        } else if !self.plan.falls_into(from, to) {
            dynasm!(self.ops ; .arch x64 ; jmp =>self.block_labels[to.index()]);
        }
    }

    /// A loop back-edge from `from` to `to`: always an explicit `jmp
    /// rel32`, recorded, and before it what the preemption mode puts on
    /// back-edges:
    ///
    /// - `poll`: `cmp qword [ctx + poll], 0; jne yield`, the yield out of
    ///   line (a call into the preemption stub, then the jump);
    /// - `trap`: `mov r11, [ctx + poll_page]; mov r11, [r11]`, whose second
    ///   load faults when the page is armed (the fault handler finds the
    ///   load in the poll-site table and redirects into the stub);
    /// - `patch`: nothing before the branch but, where needed, one NOP of
    ///   1-3 bytes that puts its displacement inside one aligned 8-byte
    ///   word (one aligned store rewrites it, never across a cache line);
    ///   the branch gets a
    ///   trampoline (a call into the preemption stub, then the jump to the
    ///   loop head).
    ///
    /// `coop` and `async` leave the back-edge bare.
    fn back_edge(&mut self, from: BlockId, to: BlockId) {
        let target = self.block_labels[to.index()];
        match self.mode {
            PreemptMode::Poll => {
                let at = self.off();
                let slow = self.ops.new_dynamic_label();
                dynasm!(self.ops
                    ; .arch x64
                    ; cmp QWORD [Rq(CTX) + CTX_POLL], 0
                    ; jne =>slow
                );
                self.meta.poll_site(at, self.off() - at);
                self.cold.push(Cold {
                    label: slow,
                    block: from,
                    span: self.func.span,
                    kind: ColdKind::Yield {
                        target,
                        patch: None,
                    },
                });
            }
            PreemptMode::Trap => {
                dynasm!(self.ops ; .arch x64 ; mov r11, [Rq(CTX) + CTX_POLL_PAGE]);
                let load = self.off();
                dynasm!(self.ops ; .arch x64 ; mov r11, [r11]);
                self.meta.poll_site(load, self.off() - load);
            }
            PreemptMode::Patch => {
                // The displacement must lie inside one aligned 8-byte word
                // (the runtime rewrites it with one store); where it would
                // not (3 offsets of 8), one NOP of the length needed moves
                // it to the next word (a loop runs it every iteration: one
                // instruction, never three).
                let at = (self.off() + 1) % 8;
                let pad = if at > 4 { 8 - at } else { 0 };
                let nop: &[u8] = match pad {
                    1 => &[0x90],
                    2 => &[0x66, 0x90],
                    3 => &[0x0f, 0x1f, 0x00],
                    _ => &[],
                };
                for &b in nop {
                    self.ops.push(b);
                }
            }
            PreemptMode::Coop | PreemptMode::Async => {}
        }
        let at = self.off();
        dynasm!(self.ops ; .arch x64 ; jmp =>target);
        let len = self.off() - at;
        self.meta.back_edge(at, len, from, to);
        if self.mode == PreemptMode::Patch {
            assert_eq!(len, 5, "a patchable back-edge is a jmp rel32");
            let tramp = self.ops.new_dynamic_label();
            self.cold.push(Cold {
                label: tramp,
                block: from,
                span: self.func.span,
                kind: ColdKind::Yield {
                    target,
                    patch: Some(at),
                },
            });
        }
    }

    /// Conditional control transfer: to `then_` when `c` holds, else to
    /// `else_`. Back-edges stay unconditional jumps.
    fn branch(&mut self, from: BlockId, c: Cond, then_: BlockId, else_: BlockId) {
        let back = |e: &Self, to: BlockId| e.plan.is_back_edge(from, to);
        if back(self, then_) && !back(self, else_) {
            let l = self.block_labels[else_.index()];
            self.jcc(c.inverse(), l);
            self.jump(from, then_);
        } else if back(self, then_) {
            let other = self.ops.new_dynamic_label();
            self.jcc(c, other);
            self.jump(from, else_);
            dynasm!(self.ops ; .arch x64 ; =>other);
            self.jump(from, then_);
        } else if self.plan.falls_into(from, then_) && !back(self, else_) {
            let l = self.block_labels[else_.index()];
            self.jcc(c.inverse(), l);
        } else {
            let l = self.block_labels[then_.index()];
            self.jcc(c, l);
            self.jump(from, else_);
        }
    }

    fn epilogue(&mut self) {
        self.meta
            .begin_unsafe(UnsafeKind::FrameTeardown, self.off());
        for (j, &r) in self.plan.alloc.used_callee_saved.iter().enumerate() {
            let off = -8 * (j as i32 + 1);
            dynasm!(self.ops ; .arch x64 ; mov Rq(r), [rbp + off]);
        }
        dynasm!(self.ops
            ; .arch x64
            ; mov rsp, rbp
            ; pop rbp
            ; ret
        );
        self.meta.end_unsafe(self.off());
    }

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
                let c = match fused {
                    Some((c, x, y)) => {
                        let (vx, vy) = (self.val(x), self.val(y));
                        self.compare(vx, vy);
                        c
                    }
                    None => match self.val(*cond) {
                        Val::Imm(v) => {
                            self.jump(b, if v != 0 { *then_ } else { *else_ });
                            return;
                        }
                        v => {
                            self.test_nonzero(v);
                            Cond::Ne
                        }
                    },
                };
                self.branch(b, c, *then_, *else_);
            }
            TermKind::Ret { value } => {
                if let Some(v) = value {
                    let v = self.val(*v);
                    self.load(RAX, v);
                }
                self.epilogue();
            }
            TermKind::Goexit => {
                self.runtime_call(b, span, Opcode::Goexit, &[], 0, None);
                dynasm!(self.ops ; .arch x64 ; ud2);
            }
            TermKind::Panic { message } => {
                let msg = self.pool.message(message);
                self.mov_imm(RAX, fault_request(FaultCode::Panic, msg) as i64);
                dynasm!(self.ops ; .arch x64 ; call =>self.rt_call);
                self.meta.call_site(self.off(), b, span, CallKind::Fault);
                dynasm!(self.ops ; .arch x64 ; ud2);
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
                for (i, arm) in arms.iter().enumerate() {
                    let last = i + 1 == arms.len();
                    let next_arm = self.ops.new_dynamic_label();
                    if !last {
                        dynasm!(self.ops
                            ; .arch x64
                            ; cmp rax, i as i32
                            ; jne =>next_arm
                        );
                    }
                    if let ArmKind::Recv { into: Some(v), .. } = arm.kind {
                        dynasm!(self.ops ; .arch x64 ; mov rcx, [Rq(super::CTX) + CTX_RESULT2]);
                        self.store(v, RCX);
                    }
                    if last {
                        self.jump(b, arm.target);
                    } else {
                        if self.plan.is_back_edge(b, arm.target) {
                            self.back_edge(b, arm.target);
                        } else {
                            dynasm!(self.ops ; .arch x64 ; jmp =>self.block_labels[arm.target.index()]);
                        }
                        dynasm!(self.ops ; .arch x64 ; =>next_arm);
                    }
                }
            }
        }
    }
}

/// Registers the write barrier's slow path saves around its call: the
/// caller-saved ones (SysV) that may hold a value at a store (the slot or
/// global address, the value, anything allocated).
const BARRIER_SAVED: &[u8] = &[0, 1, 6, 7, 8, 9, 10, 11];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_registers_are_never_allocatable() {
        for r in [
            RAX,
            RCX,
            RDX,
            super::super::R11,
            super::super::CTX,
            super::super::RSP,
            super::super::RBP,
        ] {
            assert!(!REGISTERS.caller_saved.contains(&r) && !REGISTERS.callee_saved.contains(&r));
        }
    }

    #[test]
    fn the_barrier_saves_every_caller_saved_register() {
        for r in REGISTERS.caller_saved {
            assert!(BARRIER_SAVED.contains(r), "{}", super::super::reg_name(*r));
        }
        assert_eq!(BARRIER_SAVED.len() % 2, 0, "rsp stays 16-byte aligned");
    }
}
