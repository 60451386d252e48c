//! The aarch64 instructions of the shared lowering: the [`Machine`] hooks.
//! What is lowered when, and the metadata around it, is
//! [`crate::lower`]'s; this file only spells it.

use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi};

use crate::code::CodeBuffer;

use super::{Aarch64, BARRIER_SAVED, CTX, FP, REGISTERS, SP, TABLE, X0, X1, X17, X2, X3};
use crate::abi::{
    CTX_FUNC, CTX_GC, CTX_POLL, CTX_POLL_PAGE, CTX_STACK_GUARD, GC_MARKING, GC_SHADE, OBJ_LEN,
    OBJ_SLOTS, SLOT_SHIFT, SLOT_TAG, SLOT_VALUE, TAG_INT, TAG_REF,
};
use crate::code::{MetadataBuilder, UnsafeKind};
use crate::ir::{Opcode, Reg};
use crate::lower::machine::{Cond, Frame, OldRef, Slot, SlotRun, Test, Val};
use crate::lower::{Allocation, Location, Lower, Machine, RegisterFile};
use crate::module::StubAddresses;

/// `xzr` in register-operand position (31 means `sp` as a base or in the
/// immediate forms).
const XZR: u8 = 31;

/// The offsets of a slot's tag and value from the address
/// [`Machine::slot_address`] leaves.
const TAG_AT: u32 = (OBJ_SLOTS + SLOT_TAG) as u32;
const VALUE_AT: u32 = (OBJ_SLOTS + SLOT_VALUE) as u32;

impl Machine for Aarch64 {
    type Relocation = Aarch64Relocation;

    const REGISTERS: RegisterFile = REGISTERS;
    const RESULT: u8 = X0;
    const INDEX: u8 = X2;
    const VALUE: u8 = X2;
    const SCRATCH: u8 = X1;
    /// What the handler's `push_call` does takes three instructions: x29
    /// and x30 below SP, x30 = the resume address, the branch.
    const STUB_ENTRY_IS_A_SEQUENCE: bool = true;

    fn emit_stubs(
        ops: &mut CodeBuffer<Aarch64Relocation>,
        meta: &mut MetadataBuilder,
        rt_call: DynamicLabel,
        preempt: DynamicLabel,
    ) -> StubAddresses {
        super::stubs::emit(ops, meta, rt_call, preempt)
    }

    /// Everything `sp`-relative, with the scaled unsigned 12-bit offset
    /// form: the outgoing area at the bottom, then the spill slots, then
    /// the saved registers under the frame record.
    fn frame_layout(alloc: &Allocation) -> Frame {
        let (out, spills) = (alloc.outgoing_words as i32, alloc.spill_slots as i32);
        let from_sp = |first| SlotRun {
            base: SP,
            first,
            step: 8,
        };
        Frame {
            size: Frame::size_of(alloc),
            saved: from_sp(8 * (out + spills)),
            spills: from_sp(8 * out),
            params: SlotRun {
                base: FP,
                first: 16,
                step: 8,
            },
        }
    }

    // ---- moves ---------------------------------------------------------------

    /// `dst = v` in one to four instructions.
    fn mov_imm(cx: &mut Lower<'_, Self>, dst: u8, v: i64) {
        let u = v as u64;
        let chunks: [u32; 4] = [0, 1, 2, 3].map(|i| ((u >> (16 * i)) & 0xffff) as u32);
        let ones = chunks.iter().filter(|&&c| c == 0xffff).count();
        let zeros = chunks.iter().filter(|&&c| c == 0).count();
        // Start from all ones (movn) or all zeros (movz), whichever
        // leaves fewer chunks to patch in.
        let (fill, ones_first) = if ones > zeros {
            (0xffff, true)
        } else {
            (0, false)
        };
        let Some(i) = chunks.iter().position(|&c| c != fill) else {
            if ones_first {
                dynasm!(cx.ops ; .arch aarch64 ; movn X(dst), 0);
            } else {
                dynasm!(cx.ops ; .arch aarch64 ; movz X(dst), 0);
            }
            return;
        };
        if ones_first {
            movn(cx, dst, !chunks[i] & 0xffff, i);
        } else {
            movz(cx, dst, chunks[i], i);
        }
        for (j, &c) in chunks.iter().enumerate().skip(i + 1) {
            if c != fill {
                movk(cx, dst, c, j);
            }
        }
    }

    fn mov_reg(cx: &mut Lower<'_, Self>, dst: u8, src: u8) {
        dynasm!(cx.ops ; .arch aarch64 ; mov X(dst), X(src));
    }

    fn load_slot(cx: &mut Lower<'_, Self>, dst: u8, slot: Slot) {
        ldr(cx, dst, slot.base, slot.offset);
    }

    fn store_slot(cx: &mut Lower<'_, Self>, slot: Slot, src: u8) {
        str(cx, src, slot.base, slot.offset);
    }

    /// Zero is `xzr`, no load.
    fn in_reg(cx: &mut Lower<'_, Self>, v: Val, scratch: u8) -> u8 {
        match v {
            Val::Reg(r) => r,
            Val::Imm(0) => XZR,
            _ => {
                cx.load(scratch, v);
                scratch
            }
        }
    }

    fn assign(cx: &mut Lower<'_, Self>, d: Reg, v: Val) {
        match cx.location(d) {
            Location::Reg(r) => cx.load(r, v),
            Location::Unused => {}
            _ => {
                let r = Self::in_reg(cx, v, X0);
                cx.store(d, r);
            }
        }
    }

    fn outgoing(cx: &mut Lower<'_, Self>, i: usize, v: Val) {
        let r = Self::in_reg(cx, v, X0);
        str(cx, r, SP, 8 * i as i32);
    }

    fn load_context(cx: &mut Lower<'_, Self>, dst: u8, field: i32) {
        dynasm!(cx.ops ; .arch aarch64 ; ldr X(dst), [X(CTX), field as u32]);
    }

    /// x17 is scratch at entry and after a call.
    fn store_current_function(cx: &mut Lower<'_, Self>, index: u32) {
        dynasm!(cx.ops
            ; .arch aarch64
            ; movz x17, index
            ; str x17, [X(CTX), CTX_FUNC as u32]
        );
    }

    // ---- frames -------------------------------------------------------------------

    fn prologue(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops
            ; .arch aarch64
            ; stp x29, x30, [sp, #-16]!
            ; mov x29, sp
        );
        let size = cx.frame.size;
        adjust_sp(cx, -size);
    }

    fn stack_check(cx: &mut Lower<'_, Self>, check: DynamicLabel, overflow: DynamicLabel) {
        let guard = CTX_STACK_GUARD as u32;
        dynasm!(cx.ops
            ; .arch aarch64
            ; =>check
            ; ldr x1, [X(CTX), guard]
            ; cmp sp, x1
            ; b.lo =>overflow
        );
    }

    /// Frees the frame from `sp` where one `add` does (not `mov sp, x29`,
    /// whose x29 the callee's `ldp` had just loaded: that would chain
    /// every return's stack pointer to a load).
    fn epilogue(cx: &mut Lower<'_, Self>) {
        let size = cx.frame.size;
        if size <= 0xfff {
            adjust_sp(cx, size);
        } else {
            dynasm!(cx.ops ; .arch aarch64 ; mov sp, x29);
        }
        dynasm!(cx.ops
            ; .arch aarch64
            ; ldp x29, x30, [sp], #16
            ; ret
        );
    }

    // ---- control ------------------------------------------------------------------

    /// Always one `b`, the form [`Backend::patch_branch`](crate::isa::Backend::patch_branch) rewrites.
    fn jump(cx: &mut Lower<'_, Self>, target: DynamicLabel) {
        dynasm!(cx.ops ; .arch aarch64 ; b =>target);
    }

    fn call(cx: &mut Lower<'_, Self>, target: DynamicLabel) {
        dynasm!(cx.ops ; .arch aarch64 ; bl =>target);
    }

    fn branch_if(cx: &mut Lower<'_, Self>, t: Test, target: DynamicLabel) {
        match t {
            Test::NonZero(r) => dynasm!(cx.ops ; .arch aarch64 ; cbnz X(r), =>target),
            Test::Zero(r) => dynasm!(cx.ops ; .arch aarch64 ; cbz X(r), =>target),
            Test::Flags(c) => match c {
                Cond::Eq => dynasm!(cx.ops ; .arch aarch64 ; b.eq =>target),
                Cond::Ne => dynasm!(cx.ops ; .arch aarch64 ; b.ne =>target),
                Cond::Lt => dynasm!(cx.ops ; .arch aarch64 ; b.lt =>target),
                Cond::Le => dynasm!(cx.ops ; .arch aarch64 ; b.le =>target),
                Cond::Gt => dynasm!(cx.ops ; .arch aarch64 ; b.gt =>target),
                Cond::Ge => dynasm!(cx.ops ; .arch aarch64 ; b.ge =>target),
            },
        }
    }

    /// No flags needed: the branch is `cbnz`.
    fn test_nonzero(cx: &mut Lower<'_, Self>, v: Val) -> Test {
        Test::NonZero(Self::in_reg(cx, v, X0))
    }

    fn compare(cx: &mut Lower<'_, Self>, a: Val, b: Val) {
        let ra = Self::in_reg(cx, a, X0);
        let ra = if ra == XZR {
            // xzr cannot be cmp's first operand (31 there means sp).
            dynasm!(cx.ops ; .arch aarch64 ; movz x0, 0);
            X0
        } else {
            ra
        };
        match b {
            Val::Imm(i) if (0..4096).contains(&i) => {
                let u = i as u32;
                dynasm!(cx.ops ; .arch aarch64 ; cmp XSP(ra), u);
            }
            Val::Imm(i) if (-4095..0).contains(&i) => {
                let u = (-i) as u32;
                dynasm!(cx.ops ; .arch aarch64 ; cmn XSP(ra), u);
            }
            v => {
                let rb = Self::in_reg(cx, v, X1);
                dynasm!(cx.ops ; .arch aarch64 ; cmp X(ra), X(rb));
            }
        }
    }

    fn compare_result(cx: &mut Lower<'_, Self>, k: u32) {
        dynasm!(cx.ops ; .arch aarch64 ; cmp x0, k);
    }

    fn trap(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops ; .arch aarch64 ; udf 0);
    }

    // ---- what back-edges carry ---------------------------------------------------

    /// x17 is scratch at a back-edge, and the stub returns it as it found
    /// it.
    fn poll_check(cx: &mut Lower<'_, Self>, slow: DynamicLabel) {
        dynasm!(cx.ops
            ; .arch aarch64
            ; ldr x17, [X(CTX), CTX_POLL as u32]
            ; cbnz x17, =>slow
        );
    }

    fn poll_page_address(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops ; .arch aarch64 ; ldr x17, [X(CTX), CTX_POLL_PAGE as u32]);
    }

    fn poll_page_load(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops ; .arch aarch64 ; ldr x17, [x17]);
    }

    /// What the handler's `push_call` does: x29 and x30 below SP, x30 =
    /// the resume address (right after the branch into the stub).
    fn enter_stub(cx: &mut Lower<'_, Self>, stub: DynamicLabel) {
        let resume = cx.label();
        dynasm!(cx.ops
            ; .arch aarch64
            ; stp x29, x30, [sp, #-16]!
            ; adr x30, =>resume
            ; b =>stub
            ; =>resume
        );
    }

    // ---- out-of-line paths -------------------------------------------------------

    /// The tag is in x1; the object at `x0 - (x2 << 4)`.
    fn slot_tag_operands(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops
            ; .arch aarch64
            ; str x1, [sp]
            ; sub x0, x0, x2, lsl SLOT_SHIFT as u32
            ; str x0, [sp, 8]
        );
    }

    fn index_operands(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops
            ; .arch aarch64
            ; str x2, [sp]
            ; ldr x1, [x0, OBJ_LEN as u32]
            ; str x1, [sp, 8]
        );
    }

    /// Uses x1 only.
    fn barrier_test(cx: &mut Lower<'_, Self>, slow: DynamicLabel) {
        let (gc, marking) = (CTX_GC as u32, GC_MARKING as u32);
        dynasm!(cx.ops
            ; .arch aarch64
            ; ldr x1, [X(CTX), gc]
            ; ldr x1, [x1, marking]
            ; cbnz x1, =>slow
        );
    }

    /// The old ref is in the slot at `[x0 + 16]` or the global at `[x3]`.
    /// The call saves x30 too, and goes through x17: x16 stays the stubs'.
    fn shade_old_ref(cx: &mut Lower<'_, Self>, resume: DynamicLabel, old: OldRef) {
        let (gc, shade) = (CTX_GC as u32, GC_SHADE as u32);
        match old {
            OldRef::Slot => dynasm!(cx.ops
                ; .arch aarch64
                ; ldr x1, [x0, TAG_AT]
                ; cmp x1, TAG_REF as u32
                ; b.ne =>resume
                ; ldr x1, [x0, VALUE_AT]
                ; cbz x1, =>resume
            ),
            OldRef::Global => dynasm!(cx.ops
                ; .arch aarch64
                ; ldr x1, [x3]
                ; cbz x1, =>resume
            ),
        }
        let frame = 8 * BARRIER_SAVED.len() as u32;
        dynasm!(cx.ops ; .arch aarch64 ; sub sp, sp, frame);
        for (k, (a, b)) in BARRIER_SAVED.pairs().enumerate() {
            let off = 16 * k as i32;
            dynasm!(cx.ops ; .arch aarch64 ; stp X(a), X(b), [sp, off]);
        }
        dynasm!(cx.ops
            ; .arch aarch64
            ; ldr x0, [X(CTX), gc]
            ; ldr x17, [x0, shade]
            ; blr x17
        );
        for (k, (a, b)) in BARRIER_SAVED.pairs().enumerate() {
            let off = 16 * k as i32;
            dynasm!(cx.ops ; .arch aarch64 ; ldp X(a), X(b), [sp, off]);
        }
        // The collector's code left its own words in the registers not
        // restored and the vector registers; cleared, as `switch_to`
        // clears them, so that no stale heap address reaches a preemption
        // stub's frame (see stubs.rs).
        for r in TABLE.host_clobbered().minus(BARRIER_SAVED).iter() {
            dynasm!(cx.ops ; .arch aarch64 ; mov X(r), xzr);
        }
        for v in 0..32u8 {
            dynasm!(cx.ops ; .arch aarch64 ; movi V(v).D2, 0);
        }
        dynasm!(cx.ops ; .arch aarch64 ; add sp, sp, frame);
    }

    // ---- instructions -----------------------------------------------------------------

    fn unary(cx: &mut Lower<'_, Self>, op: Opcode, dst: Reg, v: Val) {
        let w = cx.dst_reg(dst).unwrap_or(X0);
        let a = Self::in_reg(cx, v, X1);
        if op == Opcode::Neg {
            dynasm!(cx.ops ; .arch aarch64 ; neg X(w), X(a));
        } else {
            dynasm!(cx.ops ; .arch aarch64 ; mvn X(w), X(a));
        }
        cx.store(dst, w);
    }

    fn arithmetic(cx: &mut Lower<'_, Self>, op: Opcode, dst: Reg, x: Val, y: Val) {
        let w = cx.dst_reg(dst).unwrap_or(X0);
        let a = Self::in_reg(cx, x, X1);
        let a = if a == XZR {
            // xzr is not valid as the first operand of the immediate forms.
            dynasm!(cx.ops ; .arch aarch64 ; movz x1, 0);
            X1
        } else {
            a
        };
        match (op, y) {
            (Opcode::Add | Opcode::Sub, Val::Imm(i)) if (-4095..4096).contains(&i) => {
                let u = i.unsigned_abs() as u32;
                if (op == Opcode::Add) == (i >= 0) {
                    dynasm!(cx.ops ; .arch aarch64 ; add XSP(w), XSP(a), u);
                } else {
                    dynasm!(cx.ops ; .arch aarch64 ; sub XSP(w), XSP(a), u);
                }
            }
            (Opcode::Shl | Opcode::Shr | Opcode::Sar, Val::Imm(n)) => {
                // Shift counts are taken modulo 64, as PIR defines them.
                let n = (n & 63) as u32;
                match (op, n) {
                    (_, 0) => dynasm!(cx.ops ; .arch aarch64 ; mov X(w), X(a)),
                    (Opcode::Shl, n) => dynasm!(cx.ops ; .arch aarch64 ; lsl X(w), X(a), n),
                    (Opcode::Shr, n) => dynasm!(cx.ops ; .arch aarch64 ; lsr X(w), X(a), n),
                    (_, n) => dynasm!(cx.ops ; .arch aarch64 ; asr X(w), X(a), n),
                }
            }
            (_, v) => {
                let r = Self::in_reg(cx, v, X2);
                match op {
                    Opcode::Add => dynasm!(cx.ops ; .arch aarch64 ; add X(w), X(a), X(r)),
                    Opcode::Sub => dynasm!(cx.ops ; .arch aarch64 ; sub X(w), X(a), X(r)),
                    Opcode::Mul => dynasm!(cx.ops ; .arch aarch64 ; mul X(w), X(a), X(r)),
                    Opcode::And => dynasm!(cx.ops ; .arch aarch64 ; and X(w), X(a), X(r)),
                    Opcode::Or => dynasm!(cx.ops ; .arch aarch64 ; orr X(w), X(a), X(r)),
                    Opcode::Xor => dynasm!(cx.ops ; .arch aarch64 ; eor X(w), X(a), X(r)),
                    // Register shifts use the count modulo 64 in hardware.
                    Opcode::Shl => dynasm!(cx.ops ; .arch aarch64 ; lsl X(w), X(a), X(r)),
                    Opcode::Shr => dynasm!(cx.ops ; .arch aarch64 ; lsr X(w), X(a), X(r)),
                    _ => dynasm!(cx.ops ; .arch aarch64 ; asr X(w), X(a), X(r)),
                }
            }
        }
        cx.store(dst, w);
    }

    fn set_from_flags(cx: &mut Lower<'_, Self>, c: Cond, dst: Reg) -> u8 {
        let w = cx.dst_reg(dst).unwrap_or(X0);
        match c {
            Cond::Eq => dynasm!(cx.ops ; .arch aarch64 ; cset X(w), eq),
            Cond::Ne => dynasm!(cx.ops ; .arch aarch64 ; cset X(w), ne),
            Cond::Lt => dynasm!(cx.ops ; .arch aarch64 ; cset X(w), lt),
            Cond::Le => dynasm!(cx.ops ; .arch aarch64 ; cset X(w), le),
            Cond::Gt => dynasm!(cx.ops ; .arch aarch64 ; cset X(w), gt),
            Cond::Ge => dynasm!(cx.ops ; .arch aarch64 ; cset X(w), ge),
        }
        w
    }

    /// `sdiv` gives Go's results for `MIN / -1` (`MIN`) and, through
    /// `msub`, `MIN % -1` (0); only division by zero needs a check.
    fn divide(
        cx: &mut Lower<'_, Self>,
        op: Opcode,
        dst: Reg,
        x: Val,
        y: Val,
        zero: Option<DynamicLabel>,
    ) {
        cx.load(X1, y);
        if let Some(zero) = zero {
            dynasm!(cx.ops ; .arch aarch64 ; cbz x1, =>zero);
        }
        cx.load(X0, x);
        dynasm!(cx.ops ; .arch aarch64 ; sdiv x2, x0, x1);
        if op == Opcode::Rem {
            dynasm!(cx.ops ; .arch aarch64 ; msub x2, x2, x1, x0);
        }
        cx.store(dst, X2);
    }

    fn object_length(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops ; .arch aarch64 ; ldr x0, [x0, OBJ_LEN as u32]);
    }

    /// x2 keeps the index.
    fn slot_address(cx: &mut Lower<'_, Self>, oob: DynamicLabel) {
        dynasm!(cx.ops
            ; .arch aarch64
            ; ldr x1, [x0, OBJ_LEN as u32]
            ; cmp x2, x1
            ; b.hs =>oob
            ; add x0, x0, x2, lsl SLOT_SHIFT as u32
        );
    }

    /// As on x86-64: fresh or the kind read passes; the other kind, or any
    /// other tag (a freed object's poison), goes to the runtime. The tag
    /// stays in x1 for it.
    fn load_slot_value(cx: &mut Lower<'_, Self>, op: Opcode, bad: DynamicLabel) -> u8 {
        dynasm!(cx.ops ; .arch aarch64 ; ldr x1, [x0, TAG_AT]);
        if op == Opcode::Get {
            dynasm!(cx.ops
                ; .arch aarch64
                ; cmp x1, TAG_INT as u32
                ; b.hi =>bad
            );
        } else {
            dynasm!(cx.ops
                ; .arch aarch64
                ; tst x1, !TAG_REF
                ; b.ne =>bad
            );
        }
        dynasm!(cx.ops ; .arch aarch64 ; ldr x0, [x0, VALUE_AT]);
        X0
    }

    /// As on x86-64: an i64 store retags first, a ref store retags last.
    fn store_slot_value(cx: &mut Lower<'_, Self>, op: Opcode, value: u8) {
        if op == Opcode::Set {
            dynasm!(cx.ops
                ; .arch aarch64
                ; movz x1, TAG_INT as u32
                ; str x1, [x0, TAG_AT]
                ; str X(value), [x0, VALUE_AT]
            );
        } else {
            dynasm!(cx.ops
                ; .arch aarch64
                ; str X(value), [x0, VALUE_AT]
                ; movz x1, TAG_REF as u32
                ; str x1, [x0, TAG_AT]
            );
        }
    }

    fn load_global(cx: &mut Lower<'_, Self>, op: Opcode, dst: u8, addr: i64) {
        Self::global_address(cx, addr);
        if op == Opcode::LoadAtomic {
            dynasm!(cx.ops ; .arch aarch64 ; ldar X(dst), [x3]);
        } else {
            dynasm!(cx.ops ; .arch aarch64 ; ldr X(dst), [x3]);
        }
    }

    /// The address goes in x3.
    fn global_address(cx: &mut Lower<'_, Self>, addr: i64) {
        Self::mov_imm(cx, X3, addr);
    }

    fn store_global(cx: &mut Lower<'_, Self>, value: u8) {
        dynasm!(cx.ops ; .arch aarch64 ; str X(value), [x3]);
    }

    fn store_global_atomic(cx: &mut Lower<'_, Self>, addr: i64, v: Val) {
        let r = Self::in_reg(cx, v, X0);
        Self::global_address(cx, addr);
        dynasm!(cx.ops ; .arch aarch64 ; stlr X(r), [x3]);
    }

    /// Load-exclusive/store-exclusive: interrupted before the store, the
    /// sequence restarts cleanly from its first instruction. The region
    /// ends with the store: once it has succeeded, restarting would add
    /// twice.
    fn atomic_add(cx: &mut Lower<'_, Self>, addr: i64, v: Val) -> u8 {
        cx.load(X2, v);
        Self::global_address(cx, addr);
        let retry = cx.label();
        cx.restartable(UnsafeKind::AtomicSequence, |cx| {
            dynasm!(cx.ops
                ; .arch aarch64
                ; =>retry
                ; ldaxr x0, [x3]
                ; add x0, x0, x2
                ; stlxr W(X17), x0, [x3]
            );
        });
        dynasm!(cx.ops ; .arch aarch64 ; cbnz W(X17), =>retry);
        X0
    }

    /// Restartable up to and including the store-exclusive, as
    /// `atomic_add`: after a successful store, a restart would compare the
    /// new value with `old` and report a failure.
    fn compare_and_swap(cx: &mut Lower<'_, Self>, addr: i64, old: Val, new: Val) -> u8 {
        cx.load(X1, old);
        cx.load(X2, new);
        Self::global_address(cx, addr);
        let (retry, fail, done) = (cx.label(), cx.label(), cx.label());
        cx.restartable(UnsafeKind::AtomicSequence, |cx| {
            dynasm!(cx.ops
                ; .arch aarch64
                ; =>retry
                ; ldaxr x0, [x3]
                ; cmp x0, x1
                ; b.ne =>fail
                ; stlxr W(X17), x2, [x3]
            );
        });
        dynasm!(cx.ops
            ; .arch aarch64
            ; cbnz W(X17), =>retry
            ; movz x0, 1
            ; b =>done
            ; =>fail
            ; clrex
            ; movz x0, 0
            ; =>done
        );
        X0
    }
}

fn movz(cx: &mut Lower<'_, Aarch64>, dst: u8, imm: u32, chunk: usize) {
    match chunk {
        0 => dynasm!(cx.ops ; .arch aarch64 ; movz X(dst), imm),
        1 => dynasm!(cx.ops ; .arch aarch64 ; movz X(dst), imm, lsl 16),
        2 => dynasm!(cx.ops ; .arch aarch64 ; movz X(dst), imm, lsl 32),
        _ => dynasm!(cx.ops ; .arch aarch64 ; movz X(dst), imm, lsl 48),
    }
}

fn movn(cx: &mut Lower<'_, Aarch64>, dst: u8, imm: u32, chunk: usize) {
    match chunk {
        0 => dynasm!(cx.ops ; .arch aarch64 ; movn X(dst), imm),
        1 => dynasm!(cx.ops ; .arch aarch64 ; movn X(dst), imm, lsl 16),
        2 => dynasm!(cx.ops ; .arch aarch64 ; movn X(dst), imm, lsl 32),
        _ => dynasm!(cx.ops ; .arch aarch64 ; movn X(dst), imm, lsl 48),
    }
}

fn movk(cx: &mut Lower<'_, Aarch64>, dst: u8, imm: u32, chunk: usize) {
    match chunk {
        0 => dynasm!(cx.ops ; .arch aarch64 ; movk X(dst), imm),
        1 => dynasm!(cx.ops ; .arch aarch64 ; movk X(dst), imm, lsl 16),
        2 => dynasm!(cx.ops ; .arch aarch64 ; movk X(dst), imm, lsl 32),
        _ => dynasm!(cx.ops ; .arch aarch64 ; movk X(dst), imm, lsl 48),
    }
}

/// `dst = [base + off]`: the scaled form, the unscaled one, or through x17.
fn ldr(cx: &mut Lower<'_, Aarch64>, dst: u8, base: u8, off: i32) {
    if off >= 0 && off % 8 == 0 && off <= 32760 {
        let o = off as u32;
        dynasm!(cx.ops ; .arch aarch64 ; ldr X(dst), [XSP(base), o]);
    } else if (-256..256).contains(&off) {
        dynasm!(cx.ops ; .arch aarch64 ; ldur X(dst), [XSP(base), off]);
    } else {
        Aarch64::mov_imm(cx, X17, i64::from(off));
        dynasm!(cx.ops ; .arch aarch64 ; ldr X(dst), [XSP(base), X(X17)]);
    }
}

/// `[base + off] = src`, in the forms of [`ldr`].
fn str(cx: &mut Lower<'_, Aarch64>, src: u8, base: u8, off: i32) {
    if off >= 0 && off % 8 == 0 && off <= 32760 {
        let o = off as u32;
        dynasm!(cx.ops ; .arch aarch64 ; str X(src), [XSP(base), o]);
    } else if (-256..256).contains(&off) {
        dynasm!(cx.ops ; .arch aarch64 ; stur X(src), [XSP(base), off]);
    } else {
        Aarch64::mov_imm(cx, X17, i64::from(off));
        dynasm!(cx.ops ; .arch aarch64 ; str X(src), [XSP(base), X(X17)]);
    }
}

/// `sp += delta` for a frame-sized delta.
fn adjust_sp(cx: &mut Lower<'_, Aarch64>, delta: i32) {
    let n = delta.unsigned_abs();
    if n == 0 {
        return;
    }
    let (hi, lo) = (n >> 12, n & 0xfff);
    if hi >= 4096 {
        Aarch64::mov_imm(cx, X17, i64::from(n));
        if delta < 0 {
            dynasm!(cx.ops ; .arch aarch64 ; sub sp, sp, X(X17));
        } else {
            dynasm!(cx.ops ; .arch aarch64 ; add sp, sp, X(X17));
        }
    } else if delta < 0 {
        if hi != 0 {
            dynasm!(cx.ops ; .arch aarch64 ; sub sp, sp, hi, lsl 12);
        }
        if lo != 0 {
            dynasm!(cx.ops ; .arch aarch64 ; sub sp, sp, lo);
        }
    } else {
        if hi != 0 {
            dynasm!(cx.ops ; .arch aarch64 ; add sp, sp, hi, lsl 12);
        }
        if lo != 0 {
            dynasm!(cx.ops ; .arch aarch64 ; add sp, sp, lo);
        }
    }
}
