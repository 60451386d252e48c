//! Emission of PIR functions as aarch64 code.

use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};

use super::{CTX, FP, REGISTERS, SP, X0, X1, X17, X2, X3};
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

type Asm = VecAssembler<Aarch64Relocation>;

/// Where an operand's value is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Val {
    Reg(u8),
    /// `[base + offset]` (base is `sp` or `x29`).
    Mem(u8, i32),
    Imm(i64),
}

/// Signed integer conditions after `cmp a, b`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cond {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cond {
    fn of(op: Opcode) -> Option<Cond> {
        Some(match op {
            Opcode::Eq => Cond::Eq,
            Opcode::Ne => Cond::Ne,
            Opcode::Lt => Cond::Lt,
            Opcode::Le => Cond::Le,
            Opcode::Gt => Cond::Gt,
            Opcode::Ge => Cond::Ge,
            _ => return None,
        })
    }
    fn inverse(self) -> Cond {
        match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Lt => Cond::Ge,
            Cond::Le => Cond::Gt,
            Cond::Gt => Cond::Le,
            Cond::Ge => Cond::Lt,
        }
    }
}

/// What a conditional branch tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Test {
    /// The flags, after a compare.
    Flags(Cond),
    /// A register is non-zero (`cbnz`).
    NonZero(u8),
    /// A register is zero (`cbz`).
    Zero(u8),
}

impl Test {
    fn inverse(self) -> Test {
        match self {
            Test::Flags(c) => Test::Flags(c.inverse()),
            Test::NonZero(r) => Test::Zero(r),
            Test::Zero(r) => Test::NonZero(r),
        }
    }
}

struct Cold {
    label: DynamicLabel,
    block: BlockId,
    span: Span,
    kind: ColdKind,
}

enum ColdKind {
    StackCheck {
        resume: DynamicLabel,
    },
    Fault(FaultCode, u32),
    /// Index out of range: the object is in x0, the index in x2.
    IndexOutOfRange,
    /// `get` or `getref` found a tag it does not read (in x1): a type
    /// mismatch, or a freed object's poison. The object is at
    /// `x0 - (x2 << 4)`.
    SlotTag,
    /// The write barrier's slow path: shade the old ref, then resume at
    /// the store.
    Barrier {
        resume: DynamicLabel,
        old: OldRef,
    },
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
    /// A heap slot: tag at `[x0 + 16]`, value at `[x0 + 24]`.
    Slot,
    /// A ref global, at `[x3]`.
    Global,
}

/// Assembles a verified program for aarch64; `globals[i]` is the address
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
        let saved = plan.alloc.used_callee_saved.len() as i32;
        let out = plan.alloc.outgoing_words as i32;
        let spills = plan.alloc.spill_slots as i32;
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
            spill_base: 8 * out,
            saved_base: 8 * (out + spills),
            frame: (8 * (out + spills + saved) + 15) & !15,
        };
        e.function();
    }
    let tables = meta.finish();
    let code = ops
        .finalize()
        .expect("every label the backend references is defined");
    Assembled {
        arch: Arch::Aarch64,
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
    /// The `async_preempt` stub, which the back-edge yields enter too.
    async_stub: DynamicLabel,
    /// What loop back-edges carry (see [`FnEmitter::back_edge`]).
    mode: PreemptMode,
    block_labels: Vec<DynamicLabel>,
    cold: Vec<Cold>,
    /// sp-relative offset of spill slot 0.
    spill_base: i32,
    /// sp-relative offset of the first saved callee-saved register.
    saved_base: i32,
    /// Bytes below the frame record.
    frame: i32,
}

impl FnEmitter<'_> {
    fn off(&self) -> usize {
        self.ops.offset().0
    }

    // ---- primitive moves ---------------------------------------------------

    /// `dst = v` for any 64-bit constant, in one to four instructions.
    fn mov_imm(&mut self, dst: u8, v: i64) {
        let u = v as u64;
        let chunks: [u32; 4] = [0, 1, 2, 3].map(|i| ((u >> (16 * i)) & 0xffff) as u32);
        let ones = chunks.iter().filter(|&&c| c == 0xffff).count();
        let zeros = chunks.iter().filter(|&&c| c == 0).count();
        if ones > zeros {
            // Start from all ones (movn) and patch the other chunks.
            let first = chunks.iter().position(|&c| c != 0xffff);
            match first {
                None => dynasm!(self.ops ; .arch aarch64 ; movn X(dst), 0),
                Some(i) => {
                    self.movn(dst, !chunks[i] & 0xffff, i);
                    for (j, &c) in chunks.iter().enumerate().skip(i + 1) {
                        if c != 0xffff {
                            self.movk(dst, c, j);
                        }
                    }
                }
            }
        } else {
            let first = chunks.iter().position(|&c| c != 0);
            match first {
                None => dynasm!(self.ops ; .arch aarch64 ; movz X(dst), 0),
                Some(i) => {
                    self.movz(dst, chunks[i], i);
                    for (j, &c) in chunks.iter().enumerate().skip(i + 1) {
                        if c != 0 {
                            self.movk(dst, c, j);
                        }
                    }
                }
            }
        }
    }

    fn movz(&mut self, dst: u8, imm: u32, chunk: usize) {
        match chunk {
            0 => dynasm!(self.ops ; .arch aarch64 ; movz X(dst), imm),
            1 => dynasm!(self.ops ; .arch aarch64 ; movz X(dst), imm, lsl 16),
            2 => dynasm!(self.ops ; .arch aarch64 ; movz X(dst), imm, lsl 32),
            _ => dynasm!(self.ops ; .arch aarch64 ; movz X(dst), imm, lsl 48),
        }
    }

    fn movn(&mut self, dst: u8, imm: u32, chunk: usize) {
        match chunk {
            0 => dynasm!(self.ops ; .arch aarch64 ; movn X(dst), imm),
            1 => dynasm!(self.ops ; .arch aarch64 ; movn X(dst), imm, lsl 16),
            2 => dynasm!(self.ops ; .arch aarch64 ; movn X(dst), imm, lsl 32),
            _ => dynasm!(self.ops ; .arch aarch64 ; movn X(dst), imm, lsl 48),
        }
    }

    fn movk(&mut self, dst: u8, imm: u32, chunk: usize) {
        match chunk {
            0 => dynasm!(self.ops ; .arch aarch64 ; movk X(dst), imm),
            1 => dynasm!(self.ops ; .arch aarch64 ; movk X(dst), imm, lsl 16),
            2 => dynasm!(self.ops ; .arch aarch64 ; movk X(dst), imm, lsl 32),
            _ => dynasm!(self.ops ; .arch aarch64 ; movk X(dst), imm, lsl 48),
        }
    }

    /// `dst = [base + off]`.
    fn ldr(&mut self, dst: u8, base: u8, off: i32) {
        if off >= 0 && off % 8 == 0 && off <= 32760 {
            let o = off as u32;
            dynasm!(self.ops ; .arch aarch64 ; ldr X(dst), [XSP(base), o]);
        } else if (-256..256).contains(&off) {
            dynasm!(self.ops ; .arch aarch64 ; ldur X(dst), [XSP(base), off]);
        } else {
            self.mov_imm(X17, i64::from(off));
            dynasm!(self.ops ; .arch aarch64 ; ldr X(dst), [XSP(base), X(X17)]);
        }
    }

    /// `[base + off] = src`.
    fn str(&mut self, src: u8, base: u8, off: i32) {
        if off >= 0 && off % 8 == 0 && off <= 32760 {
            let o = off as u32;
            dynasm!(self.ops ; .arch aarch64 ; str X(src), [XSP(base), o]);
        } else if (-256..256).contains(&off) {
            dynasm!(self.ops ; .arch aarch64 ; stur X(src), [XSP(base), off]);
        } else {
            self.mov_imm(X17, i64::from(off));
            dynasm!(self.ops ; .arch aarch64 ; str X(src), [XSP(base), X(X17)]);
        }
    }

    fn mem_of(&self, loc: Location) -> Option<(u8, i32)> {
        match loc {
            Location::Spill(k) => Some((SP, self.spill_base + 8 * k as i32)),
            Location::Param(i) => Some((FP, 16 + 8 * i as i32)),
            _ => None,
        }
    }

    fn val(&self, o: Operand) -> Val {
        match o {
            Operand::Imm(v) => Val::Imm(v),
            Operand::Nil => Val::Imm(0),
            Operand::Reg(r) => match self.plan.alloc.location(r) {
                Location::Reg(p) => Val::Reg(p),
                loc => {
                    let (b, off) = self.mem_of(loc).unwrap_or((SP, 0));
                    Val::Mem(b, off)
                }
            },
        }
    }

    fn dst_reg(&self, r: Reg) -> Option<u8> {
        match self.plan.alloc.location(r) {
            Location::Reg(p) => Some(p),
            _ => None,
        }
    }

    fn load(&mut self, dst: u8, v: Val) {
        match v {
            Val::Reg(r) if r == dst => {}
            Val::Reg(r) => dynasm!(self.ops ; .arch aarch64 ; mov X(dst), X(r)),
            Val::Mem(b, off) => self.ldr(dst, b, off),
            Val::Imm(i) => self.mov_imm(dst, i),
        }
    }

    /// A register holding `v`: its own, or `scratch` after loading it.
    fn in_reg(&mut self, v: Val, scratch: u8) -> u8 {
        match v {
            Val::Reg(r) => r,
            Val::Imm(0) => 31, // xzr in register-operand position
            _ => {
                self.load(scratch, v);
                scratch
            }
        }
    }

    fn store(&mut self, d: Reg, src: u8) {
        match self.plan.alloc.location(d) {
            Location::Reg(r) if r == src => {}
            Location::Reg(r) => dynasm!(self.ops ; .arch aarch64 ; mov X(r), X(src)),
            Location::Unused => {}
            loc => {
                let (b, off) = self.mem_of(loc).unwrap_or((SP, 0));
                self.str(src, b, off);
            }
        }
    }

    fn assign(&mut self, d: Reg, v: Val) {
        match self.plan.alloc.location(d) {
            Location::Reg(r) => self.load(r, v),
            Location::Unused => {}
            _ => {
                let r = self.in_reg(v, X0);
                self.store(d, r);
            }
        }
    }

    fn outgoing(&mut self, i: usize, v: Val) {
        let r = self.in_reg(v, X0);
        self.str(r, SP, 8 * i as i32);
    }

    // ---- the function ------------------------------------------------------

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
        dynasm!(self.ops ; .arch aarch64 ; =>self.func_labels[self.fid.index()]);
        self.meta.begin_unsafe(UnsafeKind::FrameSetup, entry);
        let (check, overflow) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
        dynasm!(self.ops
            ; .arch aarch64
            ; stp x29, x30, [sp, #-16]!
            ; mov x29, sp
        );
        self.adjust_sp(-self.frame);
        let guard = CTX_STACK_GUARD as u32;
        dynasm!(self.ops
            ; .arch aarch64
            ; =>check
            ; ldr x1, [X(CTX), guard]
            ; cmp sp, x1
            ; b.lo =>overflow
        );
        self.cold.push(Cold {
            label: overflow,
            block: BlockId::new(0),
            span: func.span,
            kind: ColdKind::StackCheck { resume: check },
        });
        let saved_base = self.saved_base;
        for (j, &r) in self.plan.alloc.used_callee_saved.iter().enumerate() {
            self.str(r, SP, saved_base + 8 * j as i32);
        }
        self.set_current_func();
        for (i, &p) in func.params.iter().enumerate() {
            if let Location::Reg(r) = self.plan.alloc.location(p) {
                self.ldr(r, FP, 16 + 8 * i as i32);
            }
        }
        self.meta.end_unsafe(self.off());
        for &b in &self.plan.layout {
            self.block(b);
        }
        self.meta.end_block(self.off());
        // The write barriers' slow paths come last.
        let (barriers, others): (Vec<Cold>, Vec<Cold>) = std::mem::take(&mut self.cold)
            .into_iter()
            .partition(|c| matches!(c.kind, ColdKind::Barrier { .. }));
        for cold in others.into_iter().chain(barriers) {
            self.cold_path(cold);
        }
        self.plan.record_loops(self.func, self.meta);
        self.meta.end_function(self.off());
    }

    /// `sp += delta` for a frame-sized delta.
    fn adjust_sp(&mut self, delta: i32) {
        let n = delta.unsigned_abs();
        if n == 0 {
            return;
        }
        let (hi, lo) = (n >> 12, n & 0xfff);
        if hi < 4096 {
            if delta < 0 {
                if hi != 0 {
                    dynasm!(self.ops ; .arch aarch64 ; sub sp, sp, hi, lsl 12);
                }
                if lo != 0 {
                    dynasm!(self.ops ; .arch aarch64 ; sub sp, sp, lo);
                }
            } else {
                if hi != 0 {
                    dynasm!(self.ops ; .arch aarch64 ; add sp, sp, hi, lsl 12);
                }
                if lo != 0 {
                    dynasm!(self.ops ; .arch aarch64 ; add sp, sp, lo);
                }
            }
        } else {
            self.mov_imm(X17, i64::from(n));
            if delta < 0 {
                dynasm!(self.ops ; .arch aarch64 ; sub sp, sp, X(X17));
            } else {
                dynasm!(self.ops ; .arch aarch64 ; add sp, sp, X(X17));
            }
        }
    }

    /// `--preempt patch`: the context says which function runs (whose
    /// back-edges a stop request rewrites): at entry, and again after each
    /// call returns. x17 is scratch at both places.
    fn set_current_func(&mut self) {
        if self.mode == PreemptMode::Patch {
            let id = self.fid.index() as u32;
            dynasm!(self.ops
                ; .arch aarch64
                ; movz x17, id
                ; str x17, [X(CTX), CTX_FUNC as u32]
            );
        }
    }

    fn cold_path(&mut self, cold: Cold) {
        if let ColdKind::Barrier { resume, old } = cold.kind {
            return self.barrier_path(cold.label, resume, old);
        }
        if let ColdKind::Yield { target, patch } = cold.kind {
            dynasm!(self.ops ; .arch aarch64 ; =>cold.label);
            if let Some(branch) = patch {
                self.meta.patch_site(branch, self.off());
            }
            // What the handler's `push_call` does: x29 and x30 below SP,
            // x30 = the resume address (the branch to the loop head). From
            // the `stp` to the branch into the stub, SP and x30 are half
            // way into the stub's frame: a runtime transition.
            let resume = self.ops.new_dynamic_label();
            self.meta
                .begin_unsafe(UnsafeKind::RuntimeTransition, self.off());
            dynasm!(self.ops
                ; .arch aarch64
                ; stp x29, x30, [sp, #-16]!
                ; adr x30, =>resume
                ; b =>self.async_stub
            );
            self.meta.end_unsafe(self.off());
            dynasm!(self.ops
                ; .arch aarch64
                ; =>resume
                ; b =>target
            );
            return;
        }
        dynasm!(self.ops ; .arch aarch64 ; =>cold.label);
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
                    ; .arch aarch64
                    ; str x1, [sp]
                    ; sub x0, x0, x2, lsl SLOT_SHIFT as u32
                    ; str x0, [sp, 8]
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
                    ; .arch aarch64
                    ; str x2, [sp]
                    ; ldr x1, [x0, OBJ_LEN as u32]
                    ; str x1, [sp, 8]
                );
                (
                    fault_request(FaultCode::IndexOutOfRange, 0),
                    CallKind::Fault,
                )
            }
        };
        self.mov_imm(X0, request as i64);
        dynasm!(self.ops ; .arch aarch64 ; bl =>self.rt_call);
        self.meta.call_site(self.off(), cold.block, cold.span, kind);
        match cold.kind {
            ColdKind::StackCheck { resume } => dynasm!(self.ops ; .arch aarch64 ; b =>resume),
            _ => dynasm!(self.ops ; .arch aarch64 ; udf 0),
        }
        if stack_check {
            self.meta.end_unsafe(self.off());
        }
    }

    /// The write barrier's fast path, before a store that may overwrite a
    /// ref: opens the `WriteBarrier` unsafe region (the caller closes it
    /// after its stores) and branches to the slow path while the collector
    /// marks. Uses x1 only.
    fn barrier_check(&mut self, b: BlockId, span: Span, old: OldRef) {
        let (slow, resume) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
        let (gc, marking) = (CTX_GC as u32, GC_MARKING as u32);
        self.meta.begin_unsafe(UnsafeKind::WriteBarrier, self.off());
        dynasm!(self.ops
            ; .arch aarch64
            ; ldr x1, [X(CTX), gc]
            ; ldr x1, [x1, marking]
            ; cbnz x1, =>slow
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
    /// every caller-saved register the code may use, and x30), then go
    /// back to the store. Still inside the barrier, so an unsafe region of
    /// its own. The call goes through x17: x16 stays the stubs'.
    fn barrier_path(&mut self, label: DynamicLabel, resume: DynamicLabel, old: OldRef) {
        let (tag, value) = (
            (OBJ_SLOTS + SLOT_TAG) as u32,
            (OBJ_SLOTS + SLOT_VALUE) as u32,
        );
        let (gc, shade) = (CTX_GC as u32, GC_SHADE as u32);
        dynasm!(self.ops ; .arch aarch64 ; =>label);
        self.meta.begin_unsafe(UnsafeKind::WriteBarrier, self.off());
        match old {
            OldRef::Slot => dynasm!(self.ops
                ; .arch aarch64
                ; ldr x1, [x0, tag]
                ; cmp x1, TAG_REF as u32
                ; b.ne =>resume
                ; ldr x1, [x0, value]
                ; cbz x1, =>resume
            ),
            OldRef::Global => dynasm!(self.ops
                ; .arch aarch64
                ; ldr x1, [x3]
                ; cbz x1, =>resume
            ),
        }
        let frame = 8 * BARRIER_SAVED.len() as u32;
        dynasm!(self.ops ; .arch aarch64 ; sub sp, sp, frame);
        for (k, pair) in BARRIER_SAVED.chunks(2).enumerate() {
            let off = 16 * k as i32;
            dynasm!(self.ops ; .arch aarch64 ; stp X(pair[0]), X(pair[1]), [sp, off]);
        }
        dynasm!(self.ops
            ; .arch aarch64
            ; ldr x0, [X(CTX), gc]
            ; ldr x17, [x0, shade]
            ; blr x17
        );
        for (k, pair) in BARRIER_SAVED.chunks(2).enumerate() {
            let off = 16 * k as i32;
            dynasm!(self.ops ; .arch aarch64 ; ldp X(pair[0]), X(pair[1]), [sp, off]);
        }
        // The collector's code left its own words in the other
        // caller-saved registers and the vector registers; cleared, as
        // `switch_to` clears them, so that no stale heap address reaches a
        // preemption stub's frame (see stubs.rs).
        for r in [1u8, 16, 17, 18] {
            dynasm!(self.ops ; .arch aarch64 ; mov X(r), xzr);
        }
        for v in 0..32u8 {
            dynasm!(self.ops ; .arch aarch64 ; movi V(v).D2, 0);
        }
        dynasm!(self.ops
            ; .arch aarch64
            ; add sp, sp, frame
            ; b =>resume
        );
        self.meta.end_unsafe(self.off());
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

    fn block(&mut self, b: BlockId) {
        let block = &self.func.blocks[b.index()];
        dynasm!(self.ops ; .arch aarch64 ; =>self.block_labels[b.index()]);
        self.meta.begin_block(b, self.off());
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

    // ---- instructions ------------------------------------------------------

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
                    let w = self.dst_reg(*dst).unwrap_or(X0);
                    let v = self.val(*arg);
                    let a = self.in_reg(v, X1);
                    if *op == Opcode::Neg {
                        dynasm!(self.ops ; .arch aarch64 ; neg X(w), X(a));
                    } else {
                        dynasm!(self.ops ; .arch aarch64 ; mvn X(w), X(a));
                    }
                    self.store(*dst, w);
                }
                Opcode::Len => {
                    let v = self.val(*arg);
                    self.load(X0, v);
                    self.nil_check(b, span);
                    dynasm!(self.ops ; .arch aarch64 ; ldr x0, [x0, OBJ_LEN as u32]);
                    self.store(*dst, X0);
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
                if let Some(header) = inst.hoisted.0 {
                    self.meta.hoisted_load(self.off(), *global, header);
                }
                self.global_address(global.index());
                let w = self.dst_reg(*dst).unwrap_or(X0);
                if *op == Opcode::LoadAtomic {
                    dynasm!(self.ops ; .arch aarch64 ; ldar X(w), [x3]);
                } else {
                    dynasm!(self.ops ; .arch aarch64 ; ldr X(w), [x3]);
                }
                self.store(*dst, w);
            }
            InstKind::Store { op, global, value } => {
                let v = self.val(*value);
                let r = self.in_reg(v, X0);
                self.global_address(global.index());
                if *op == Opcode::StoreAtomic {
                    dynasm!(self.ops ; .arch aarch64 ; stlr X(r), [x3]);
                } else if self.ref_globals[global.index()] {
                    self.barrier_check(b, span, OldRef::Global);
                    dynasm!(self.ops ; .arch aarch64 ; str X(r), [x3]);
                    self.meta.end_unsafe(self.off());
                } else {
                    dynasm!(self.ops ; .arch aarch64 ; str X(r), [x3]);
                }
            }
            InstKind::AtomicAdd { dst, global, value } => {
                let v = self.val(*value);
                self.load(X2, v);
                self.global_address(global.index());
                let retry = self.ops.new_dynamic_label();
                // Load-exclusive/store-exclusive: interrupted before the
                // store, the sequence restarts cleanly from its first
                // instruction. The region ends with the store: once it has
                // succeeded, restarting would add twice.
                self.meta
                    .begin_restartable(UnsafeKind::AtomicSequence, self.off());
                dynasm!(self.ops
                    ; .arch aarch64
                    ; =>retry
                    ; ldaxr x0, [x3]
                    ; add x0, x0, x2
                    ; stlxr W(X17), x0, [x3]
                );
                self.meta.end_unsafe(self.off());
                dynasm!(self.ops ; .arch aarch64 ; cbnz W(X17), =>retry);
                self.store(*dst, X0);
            }
            InstKind::Cas {
                dst,
                global,
                old,
                new,
            } => {
                let (o, n) = (self.val(*old), self.val(*new));
                self.load(X1, o);
                self.load(X2, n);
                self.global_address(global.index());
                let (retry, fail, done) = (
                    self.ops.new_dynamic_label(),
                    self.ops.new_dynamic_label(),
                    self.ops.new_dynamic_label(),
                );
                // Restartable up to and including the store-exclusive, as
                // above: after a successful store, a restart would compare
                // the new value with `old` and report a failure.
                self.meta
                    .begin_restartable(UnsafeKind::AtomicSequence, self.off());
                dynasm!(self.ops
                    ; .arch aarch64
                    ; =>retry
                    ; ldaxr x0, [x3]
                    ; cmp x0, x1
                    ; b.ne =>fail
                    ; stlxr W(X17), x2, [x3]
                );
                self.meta.end_unsafe(self.off());
                dynasm!(self.ops
                    ; .arch aarch64
                    ; cbnz W(X17), =>retry
                    ; movz x0, 1
                    ; b =>done
                    ; =>fail
                    ; clrex
                    ; movz x0, 0
                    ; =>done
                );
                self.store(*dst, X0);
            }
            InstKind::Call { dst, func, args } => {
                for (i, &a) in args.iter().enumerate() {
                    let v = self.val(a);
                    self.outgoing(i, v);
                }
                dynasm!(self.ops ; .arch aarch64 ; bl =>self.func_labels[func.index()]);
                self.meta
                    .call_site(self.off(), b, span, CallKind::Function(*func));
                self.set_current_func();
                if let Some(d) = dst {
                    self.store(*d, X0);
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
                    Val::Imm(0) => dynasm!(self.ops ; .arch aarch64 ; b =>label),
                    Val::Imm(_) => {}
                    v => {
                        let r = self.in_reg(v, X0);
                        dynasm!(self.ops ; .arch aarch64 ; cbz X(r), =>label);
                    }
                }
            }
            InstKind::CCall { func, arg } => {
                let args: Vec<Operand> = arg.iter().copied().collect();
                self.runtime_call(b, span, Opcode::CCall, &args, *func as u32, None)
            }
        }
    }

    /// x3 = the address of global `i`.
    fn global_address(&mut self, i: usize) {
        self.mov_imm(X3, self.globals[i] as i64);
    }

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
        self.mov_imm(X0, rt.request(payload) as i64);
        dynasm!(self.ops ; .arch aarch64 ; bl =>self.rt_call);
        self.meta.call_site(self.off(), b, span, CallKind::Runtime);
        if let Some(d) = dst {
            self.store(d, X0);
        }
    }

    fn nil_check(&mut self, b: BlockId, span: Span) {
        let nil = self.cold_label(b, span, ColdKind::Fault(FaultCode::NilDereference, 0));
        dynasm!(self.ops ; .arch aarch64 ; cbz x0, =>nil);
    }

    /// Leaves the object plus 16 times the index in x0 (slot `index` at
    /// `[x0 + 16]`) after the nil and bounds checks.
    fn slot_address(&mut self, b: BlockId, span: Span, obj: Operand, index: Operand) {
        let (o, i) = (self.val(obj), self.val(index));
        self.load(X0, o);
        self.nil_check(b, span);
        self.load(X2, i);
        let oob = self.cold_label(b, span, ColdKind::IndexOutOfRange);
        dynasm!(self.ops
            ; .arch aarch64
            ; ldr x1, [x0, OBJ_LEN as u32]
            ; cmp x2, x1
            ; b.hs =>oob
            ; add x0, x0, x2, lsl SLOT_SHIFT as u32
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
        let (tag, value) = (
            (OBJ_SLOTS + SLOT_TAG) as u32,
            (OBJ_SLOTS + SLOT_VALUE) as u32,
        );
        // As on x86-64: fresh or the kind read passes; the other kind, or
        // any other tag (a freed object's poison), goes to the runtime.
        dynasm!(self.ops ; .arch aarch64 ; ldr x1, [x0, tag]);
        if op == Opcode::Get {
            dynasm!(self.ops
                ; .arch aarch64
                ; cmp x1, TAG_INT as u32
                ; b.hi =>bad
            );
        } else {
            dynasm!(self.ops
                ; .arch aarch64
                ; tst x1, !TAG_REF
                ; b.ne =>bad
            );
        }
        dynasm!(self.ops ; .arch aarch64 ; ldr x0, [x0, value]);
        self.store(dst, X0);
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
        let r = self.in_reg(v, X2);
        let (tag, val) = (
            (OBJ_SLOTS + SLOT_TAG) as u32,
            (OBJ_SLOTS + SLOT_VALUE) as u32,
        );
        // Either store may overwrite a ref: both take the barrier.
        self.barrier_check(b, span, OldRef::Slot);
        // As on x86-64: an i64 store retags first, a ref store retags last.
        if op == Opcode::Set {
            dynasm!(self.ops
                ; .arch aarch64
                ; movz x1, TAG_INT as u32
                ; str x1, [x0, tag]
                ; str X(r), [x0, val]
            );
        } else {
            dynasm!(self.ops
                ; .arch aarch64
                ; str X(r), [x0, val]
                ; movz x1, TAG_REF as u32
                ; str x1, [x0, tag]
            );
        }
        self.meta.end_unsafe(self.off());
    }

    /// `cmp a, b`.
    fn compare(&mut self, a: Val, b: Val) {
        let ra = self.in_reg(a, X0);
        let ra = if ra == 31 {
            // xzr cannot be cmp's first operand (31 there means sp).
            dynasm!(self.ops ; .arch aarch64 ; movz x0, 0);
            X0
        } else {
            ra
        };
        match b {
            Val::Imm(i) if (0..4096).contains(&i) => {
                let u = i as u32;
                dynasm!(self.ops ; .arch aarch64 ; cmp XSP(ra), u);
            }
            Val::Imm(i) if (-4095..0).contains(&i) => {
                let u = (-i) as u32;
                dynasm!(self.ops ; .arch aarch64 ; cmn XSP(ra), u);
            }
            v => {
                let rb = self.in_reg(v, X1);
                dynasm!(self.ops ; .arch aarch64 ; cmp X(ra), X(rb));
            }
        }
    }

    fn cset(&mut self, dst: u8, c: Cond) {
        match c {
            Cond::Eq => dynasm!(self.ops ; .arch aarch64 ; cset X(dst), eq),
            Cond::Ne => dynasm!(self.ops ; .arch aarch64 ; cset X(dst), ne),
            Cond::Lt => dynasm!(self.ops ; .arch aarch64 ; cset X(dst), lt),
            Cond::Le => dynasm!(self.ops ; .arch aarch64 ; cset X(dst), le),
            Cond::Gt => dynasm!(self.ops ; .arch aarch64 ; cset X(dst), gt),
            Cond::Ge => dynasm!(self.ops ; .arch aarch64 ; cset X(dst), ge),
        }
    }

    fn branch_if(&mut self, t: Test, label: DynamicLabel) {
        match t {
            Test::NonZero(r) => dynasm!(self.ops ; .arch aarch64 ; cbnz X(r), =>label),
            Test::Zero(r) => dynasm!(self.ops ; .arch aarch64 ; cbz X(r), =>label),
            Test::Flags(c) => match c {
                Cond::Eq => dynasm!(self.ops ; .arch aarch64 ; b.eq =>label),
                Cond::Ne => dynasm!(self.ops ; .arch aarch64 ; b.ne =>label),
                Cond::Lt => dynasm!(self.ops ; .arch aarch64 ; b.lt =>label),
                Cond::Le => dynasm!(self.ops ; .arch aarch64 ; b.le =>label),
                Cond::Gt => dynasm!(self.ops ; .arch aarch64 ; b.gt =>label),
                Cond::Ge => dynasm!(self.ops ; .arch aarch64 ; b.ge =>label),
            },
        }
    }

    fn binary(&mut self, b: BlockId, span: Span, op: Opcode, dst: Reg, x: Operand, y: Operand) {
        if let Some(c) = Cond::of(op) {
            let (vx, vy) = (self.val(x), self.val(y));
            self.compare(vx, vy);
            let w = self.dst_reg(dst).unwrap_or(X0);
            self.cset(w, c);
            self.store(dst, w);
            return;
        }
        match op {
            Opcode::Div | Opcode::Rem => return self.divide(b, span, op, dst, x, y),
            Opcode::Get | Opcode::GetRef => return self.heap_load(b, span, op, dst, x, y),
            _ => {}
        }
        let (vx, vy) = (self.val(x), self.val(y));
        let w = self.dst_reg(dst).unwrap_or(X0);
        let a = self.in_reg(vx, X1);
        let a = if a == 31 {
            // xzr is not valid as the first operand of the immediate forms.
            dynasm!(self.ops ; .arch aarch64 ; movz x1, 0);
            X1
        } else {
            a
        };
        match (op, vy) {
            (Opcode::Add | Opcode::Sub, Val::Imm(i)) if (-4095..4096).contains(&i) => {
                let (add, u) = if (op == Opcode::Add) == (i >= 0) {
                    (true, i.unsigned_abs() as u32)
                } else {
                    (false, i.unsigned_abs() as u32)
                };
                if add {
                    dynasm!(self.ops ; .arch aarch64 ; add XSP(w), XSP(a), u);
                } else {
                    dynasm!(self.ops ; .arch aarch64 ; sub XSP(w), XSP(a), u);
                }
            }
            (Opcode::Shl | Opcode::Shr | Opcode::Sar, Val::Imm(n)) => {
                // Shift counts are taken modulo 64, as PIR defines them.
                let n = (n & 63) as u32;
                match (op, n) {
                    (_, 0) => dynasm!(self.ops ; .arch aarch64 ; mov X(w), X(a)),
                    (Opcode::Shl, n) => dynasm!(self.ops ; .arch aarch64 ; lsl X(w), X(a), n),
                    (Opcode::Shr, n) => dynasm!(self.ops ; .arch aarch64 ; lsr X(w), X(a), n),
                    (_, n) => dynasm!(self.ops ; .arch aarch64 ; asr X(w), X(a), n),
                }
            }
            (_, v) => {
                let r = self.in_reg(v, X2);
                match op {
                    Opcode::Add => dynasm!(self.ops ; .arch aarch64 ; add X(w), X(a), X(r)),
                    Opcode::Sub => dynasm!(self.ops ; .arch aarch64 ; sub X(w), X(a), X(r)),
                    Opcode::Mul => dynasm!(self.ops ; .arch aarch64 ; mul X(w), X(a), X(r)),
                    Opcode::And => dynasm!(self.ops ; .arch aarch64 ; and X(w), X(a), X(r)),
                    Opcode::Or => dynasm!(self.ops ; .arch aarch64 ; orr X(w), X(a), X(r)),
                    Opcode::Xor => dynasm!(self.ops ; .arch aarch64 ; eor X(w), X(a), X(r)),
                    // Register shifts use the count modulo 64 in hardware.
                    Opcode::Shl => dynasm!(self.ops ; .arch aarch64 ; lsl X(w), X(a), X(r)),
                    Opcode::Shr => dynasm!(self.ops ; .arch aarch64 ; lsr X(w), X(a), X(r)),
                    _ => dynasm!(self.ops ; .arch aarch64 ; asr X(w), X(a), X(r)),
                }
            }
        }
        self.store(dst, w);
    }

    /// `sdiv` gives Go's results for `MIN / -1` (`MIN`) and, through
    /// `msub`, `MIN % -1` (0); only division by zero needs a check.
    fn divide(&mut self, b: BlockId, span: Span, op: Opcode, dst: Reg, x: Operand, y: Operand) {
        let (vx, vy) = (self.val(x), self.val(y));
        // A constant divisor other than 0 needs no zero check.
        if !matches!(vy, Val::Imm(v) if v != 0) {
            let zero = self.cold_label(b, span, ColdKind::Fault(FaultCode::DivideByZero, 0));
            if vy == Val::Imm(0) {
                dynasm!(self.ops ; .arch aarch64 ; b =>zero);
                return;
            }
            self.load(X1, vy);
            dynasm!(self.ops ; .arch aarch64 ; cbz x1, =>zero);
        } else {
            self.load(X1, vy);
        }
        self.load(X0, vx);
        dynasm!(self.ops ; .arch aarch64 ; sdiv x2, x0, x1);
        if op == Opcode::Rem {
            dynasm!(self.ops ; .arch aarch64 ; msub x2, x2, x1, x0);
        }
        self.store(dst, X2);
    }

    // ---- control flow ------------------------------------------------------

    /// A loop back-edge is always one `b`, recorded; other jumps to the
    /// next block in layout vanish.
    fn jump(&mut self, from: BlockId, to: BlockId) {
        if self.plan.is_back_edge(from, to) {
            self.back_edge(from, to);
        } else if !self.plan.falls_into(from, to) {
            dynasm!(self.ops ; .arch aarch64 ; b =>self.block_labels[to.index()]);
        }
    }

    /// A loop back-edge from `from` to `to`: always one `b`, recorded,
    /// and before it what the preemption mode puts on back-edges:
    ///
    /// - `poll`: `ldr x17, [ctx, poll]; cbnz x17, yield`, the yield out of
    ///   line (the stub entered as a redirect would, then the branch);
    /// - `trap`: `ldr x17, [ctx, poll_page]; ldr x17, [x17]`, whose second
    ///   load faults when the page is armed (the fault handler finds it in
    ///   the poll-site table and redirects into the stub);
    /// - `patch`: nothing before the `b`, which gets a trampoline; the
    ///   runtime rewrites the `b` itself (B <-> B, one aligned word).
    ///
    /// x17 is scratch here, and the stub returns it as it found it.
    /// `coop` and `async` leave the back-edge bare.
    fn back_edge(&mut self, from: BlockId, to: BlockId) {
        let target = self.block_labels[to.index()];
        match self.mode {
            PreemptMode::Poll => {
                let at = self.off();
                let slow = self.ops.new_dynamic_label();
                dynasm!(self.ops
                    ; .arch aarch64
                    ; ldr x17, [X(CTX), CTX_POLL as u32]
                    ; cbnz x17, =>slow
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
                dynasm!(self.ops ; .arch aarch64 ; ldr x17, [X(CTX), CTX_POLL_PAGE as u32]);
                let load = self.off();
                dynasm!(self.ops ; .arch aarch64 ; ldr x17, [x17]);
                self.meta.poll_site(load, 4);
            }
            PreemptMode::Coop | PreemptMode::Async | PreemptMode::Patch => {}
        }
        let at = self.off();
        dynasm!(self.ops ; .arch aarch64 ; b =>target);
        self.meta.back_edge(at, 4, from, to);
        if self.mode == PreemptMode::Patch {
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

    fn branch(&mut self, from: BlockId, t: Test, then_: BlockId, else_: BlockId) {
        let back = |e: &Self, to: BlockId| e.plan.is_back_edge(from, to);
        if back(self, then_) && !back(self, else_) {
            let l = self.block_labels[else_.index()];
            self.branch_if(t.inverse(), l);
            self.jump(from, then_);
        } else if back(self, then_) {
            let other = self.ops.new_dynamic_label();
            self.branch_if(t, other);
            self.jump(from, else_);
            dynasm!(self.ops ; .arch aarch64 ; =>other);
            self.jump(from, then_);
        } else if self.plan.falls_into(from, then_) && !back(self, else_) {
            let l = self.block_labels[else_.index()];
            self.branch_if(t.inverse(), l);
        } else {
            let l = self.block_labels[then_.index()];
            self.branch_if(t, l);
            self.jump(from, else_);
        }
    }

    fn epilogue(&mut self) {
        self.meta
            .begin_unsafe(UnsafeKind::FrameTeardown, self.off());
        let saved_base = self.saved_base;
        for (j, &r) in self.plan.alloc.used_callee_saved.iter().enumerate() {
            self.ldr(r, SP, saved_base + 8 * j as i32);
        }
        dynasm!(self.ops
            ; .arch aarch64
            ; mov sp, x29
            ; ldp x29, x30, [sp], #16
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
                let t = match fused {
                    Some((c, x, y)) => {
                        let (vx, vy) = (self.val(x), self.val(y));
                        self.compare(vx, vy);
                        Test::Flags(c)
                    }
                    None => match self.val(*cond) {
                        Val::Imm(v) => {
                            self.jump(b, if v != 0 { *then_ } else { *else_ });
                            return;
                        }
                        v => Test::NonZero(self.in_reg(v, X0)),
                    },
                };
                self.branch(b, t, *then_, *else_);
            }
            TermKind::Ret { value } => {
                if let Some(v) = value {
                    let v = self.val(*v);
                    self.load(X0, v);
                }
                self.epilogue();
            }
            TermKind::Goexit => {
                self.runtime_call(b, span, Opcode::Goexit, &[], 0, None);
                dynasm!(self.ops ; .arch aarch64 ; udf 0);
            }
            TermKind::Panic { message } => {
                let msg = self.pool.message(message);
                self.mov_imm(X0, fault_request(FaultCode::Panic, msg) as i64);
                dynasm!(self.ops ; .arch aarch64 ; bl =>self.rt_call);
                self.meta.call_site(self.off(), b, span, CallKind::Fault);
                dynasm!(self.ops ; .arch aarch64 ; udf 0);
            }
            TermKind::Select { arms } => {
                if !kind.is_runtime_op() {
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
                        let k = i as u32;
                        dynasm!(self.ops
                            ; .arch aarch64
                            ; cmp x0, k
                            ; b.ne =>next_arm
                        );
                    }
                    if let ArmKind::Recv { into: Some(v), .. } = arm.kind {
                        dynasm!(self.ops ; .arch aarch64 ; ldr x1, [X(CTX), CTX_RESULT2 as u32]);
                        self.store(v, X1);
                    }
                    if last {
                        self.jump(b, arm.target);
                    } else {
                        if self.plan.is_back_edge(b, arm.target) {
                            self.back_edge(b, arm.target);
                        } else {
                            dynasm!(self.ops ; .arch aarch64 ; b =>self.block_labels[arm.target.index()]);
                        }
                        dynasm!(self.ops ; .arch aarch64 ; =>next_arm);
                    }
                }
            }
        }
    }
}

/// Registers the write barrier's slow path saves around its call, in
/// pairs: the caller-saved ones (AAPCS64) that may hold a value at a store
/// (the slot or global address, the value, anything allocated), and x30,
/// which the call clobbers. An even count keeps sp 16-byte aligned.
const BARRIER_SAVED: &[u8] = &[0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 30];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_registers_are_never_allocatable() {
        for r in [
            X0,
            X1,
            X2,
            X3,
            super::super::STUB_SCRATCH,
            X17,
            18,
            CTX,
            FP,
            super::super::LR,
            SP,
        ] {
            assert!(
                !REGISTERS.caller_saved.contains(&r) && !REGISTERS.callee_saved.contains(&r),
                "x{r}"
            );
        }
    }

    #[test]
    fn the_barrier_saves_every_caller_saved_register() {
        for r in REGISTERS.caller_saved {
            assert!(BARRIER_SAVED.contains(r), "x{r}");
        }
        assert_eq!(BARRIER_SAVED.len() % 2, 0);
        assert!(!BARRIER_SAVED.contains(&super::super::STUB_SCRATCH));
    }
}
