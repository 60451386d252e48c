//! The x86-64 instructions of the shared lowering: the [`Machine`] hooks.
//! What is lowered when, and the metadata around it, is
//! [`crate::lower`]'s; this file only spells it.

use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi};

use crate::code::CodeBuffer;

use super::{ARG_REGS, BARRIER_SAVED, CTX, RAX, RBP, RCX, RDX, REGISTERS, TABLE, X64};
use crate::abi::{
    CTX_FUNC, CTX_GC, CTX_POLL, CTX_POLL_PAGE, CTX_STACK_GUARD, GC_MARKING, GC_SHADE, OBJ_LEN,
    OBJ_SLOTS, SLOT_SHIFT, SLOT_TAG, SLOT_VALUE, TAG_INT, TAG_REF,
};
use crate::code::MetadataBuilder;
use crate::ir::{Opcode, Reg};
use crate::lower::machine::{Cond, Frame, OldRef, Slot, SlotRun, Test, Val};
use crate::lower::{Allocation, Location, Lower, Machine, RegisterFile};
use crate::module::StubAddresses;

/// `v` as a sign-extended 32-bit immediate, where it fits one.
fn imm32(v: Val) -> Option<i32> {
    match v {
        Val::Imm(v) => i32::try_from(v).ok(),
        _ => None,
    }
}

/// `rsp -= bytes` (`grow`) or `rsp += bytes`, in the short form where the
/// amount fits a byte, nothing for 0.
fn adjust_rsp(cx: &mut Lower<'_, X64>, bytes: i32, grow: bool) {
    match (i8::try_from(bytes), grow) {
        (Ok(0), _) => {}
        (Ok(b), true) => dynasm!(cx.ops ; .arch x64 ; sub rsp, BYTE b),
        (Ok(b), false) => dynasm!(cx.ops ; .arch x64 ; add rsp, BYTE b),
        (Err(_), true) => dynasm!(cx.ops ; .arch x64 ; sub rsp, bytes),
        (Err(_), false) => dynasm!(cx.ops ; .arch x64 ; add rsp, bytes),
    }
}

/// Every frame slot is addressed from `rbp` (see [`X64::frame_layout`]).
fn rbp_offset(slot: Slot) -> i32 {
    debug_assert_eq!(slot.base, RBP);
    slot.offset
}

impl Machine for X64 {
    type Relocation = X64Relocation;

    const REGISTERS: RegisterFile = REGISTERS;
    const RESULT: u8 = RAX;
    const INDEX: u8 = RDX;
    const VALUE: u8 = RCX;
    const SCRATCH: u8 = RCX;
    /// One `call` pushes the resume address and enters the stub, as the
    /// handler's `push_call` does: there is no instant in between.
    const STUB_ENTRY_IS_A_SEQUENCE: bool = false;
    const FRAME_SAVES_REGISTERS: bool = true;
    const ARG_REGS: &'static [u8] = &ARG_REGS;

    fn emit_stubs(
        ops: &mut CodeBuffer<X64Relocation>,
        meta: &mut MetadataBuilder,
        rt_call: DynamicLabel,
        preempt: DynamicLabel,
    ) -> StubAddresses {
        super::stubs::emit(ops, meta, rt_call, preempt)
    }

    /// The saved registers right under the frame record, then the spill
    /// slots: all `rbp`-relative, so `rsp` is free for the outgoing area.
    fn frame_layout(alloc: &Allocation) -> Frame {
        let saved = alloc.used_callee_saved.len() as i32;
        let below_rbp = |first| SlotRun {
            base: RBP,
            first,
            step: -8,
        };
        Frame {
            size: Frame::size_of(alloc),
            saved: below_rbp(-8),
            spills: below_rbp(-8 * (saved + 1)),
            params: SlotRun {
                base: RBP,
                first: 16,
                step: 8,
            },
        }
    }

    // ---- moves ---------------------------------------------------------------

    fn mov_imm(cx: &mut Lower<'_, Self>, dst: u8, v: i64) {
        if let Ok(v32) = u32::try_from(v) {
            // A 32-bit move zero-extends, and is shorter.
            let v32 = v32 as i32;
            dynasm!(cx.ops ; .arch x64 ; mov Rd(dst), v32);
        } else if let Ok(v32) = i32::try_from(v) {
            dynasm!(cx.ops ; .arch x64 ; mov Rq(dst), v32);
        } else {
            dynasm!(cx.ops ; .arch x64 ; mov Rq(dst), QWORD v);
        }
    }

    fn mov_reg(cx: &mut Lower<'_, Self>, dst: u8, src: u8) {
        dynasm!(cx.ops ; .arch x64 ; mov Rq(dst), Rq(src));
    }

    fn load_slot(cx: &mut Lower<'_, Self>, dst: u8, slot: Slot) {
        let off = rbp_offset(slot);
        match i8::try_from(off) {
            Ok(d) => dynasm!(cx.ops ; .arch x64 ; mov Rq(dst), [BYTE rbp + d]),
            Err(_) => dynasm!(cx.ops ; .arch x64 ; mov Rq(dst), [rbp + off]),
        }
    }

    fn store_slot(cx: &mut Lower<'_, Self>, slot: Slot, src: u8) {
        let off = rbp_offset(slot);
        match i8::try_from(off) {
            Ok(d) => dynasm!(cx.ops ; .arch x64 ; mov [BYTE rbp + d], Rq(src)),
            Err(_) => dynasm!(cx.ops ; .arch x64 ; mov [rbp + off], Rq(src)),
        }
    }

    /// A spilled destination takes a 32-bit immediate directly.
    fn assign(cx: &mut Lower<'_, Self>, d: Reg, v: Val) {
        match (cx.location(d), v) {
            (Location::Reg(r), v) => cx.load(r, v),
            (Location::Unused, _) => {}
            (_, Val::Reg(s)) => {
                let slot = cx.slot(d);
                Self::store_slot(cx, slot, s);
            }
            (_, v) if imm32(v).is_some() => {
                let off = rbp_offset(cx.slot(d));
                let imm = imm32(v).unwrap_or(0);
                dynasm!(cx.ops ; .arch x64 ; mov QWORD [rbp + off], imm);
            }
            (_, v) => {
                cx.load(RAX, v);
                cx.store(d, RAX);
            }
        }
    }

    fn outgoing(cx: &mut Lower<'_, Self>, i: usize, v: Val) {
        let off = 8 * i as i32;
        match v {
            Val::Reg(r) => match i8::try_from(off) {
                Ok(d) => dynasm!(cx.ops ; .arch x64 ; mov [BYTE rsp + d], Rq(r)),
                Err(_) => dynasm!(cx.ops ; .arch x64 ; mov [rsp + off], Rq(r)),
            },
            v if imm32(v).is_some() => {
                let imm = imm32(v).unwrap_or(0);
                dynasm!(cx.ops ; .arch x64 ; mov QWORD [rsp + off], imm);
            }
            v => {
                cx.load(RAX, v);
                dynasm!(cx.ops ; .arch x64 ; mov [rsp + off], rax);
            }
        }
    }

    fn load_context(cx: &mut Lower<'_, Self>, dst: u8, field: i32) {
        dynasm!(cx.ops ; .arch x64 ; mov Rq(dst), [Rq(CTX) + field]);
    }

    fn store_current_function(cx: &mut Lower<'_, Self>, index: u32) {
        let id = index as i32;
        dynasm!(cx.ops ; .arch x64 ; mov QWORD [Rq(CTX) + CTX_FUNC], id);
    }

    // ---- frames -------------------------------------------------------------------

    /// `push rbp; mov rbp, rsp`, the used callee-saved registers pushed
    /// (so they land in `frame.saved`, right under the frame record), the
    /// rest of the frame allocated, then the check.
    fn prologue(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops ; .arch x64 ; push rbp ; mov rbp, rsp);
        let saved = cx.callee_saved();
        for &r in saved {
            dynasm!(cx.ops ; .arch x64 ; push Rq(r));
        }
        adjust_rsp(cx, cx.frame.size - 8 * saved.len() as i32, true);
    }

    fn stack_check(cx: &mut Lower<'_, Self>, check: DynamicLabel, overflow: DynamicLabel) {
        dynasm!(cx.ops
            ; .arch x64
            ; =>check
            ; cmp rsp, [Rq(CTX) + CTX_STACK_GUARD]
            ; jb =>overflow
        );
    }

    /// Above the return address.
    fn load_stack_argument(cx: &mut Lower<'_, Self>, dst: u8, i: usize) {
        let off = 8 + 8 * i as i32;
        dynasm!(cx.ops ; .arch x64 ; mov Rq(dst), [rsp + off]);
    }

    /// Frees the frame from `rsp` (not `mov rsp, rbp`, whose `rbp` was
    /// loaded by the callee's `pop rbp` just before: that would chain
    /// every return's stack pointer to a load) and pops what the prologue
    /// pushed.
    fn epilogue(cx: &mut Lower<'_, Self>) {
        let saved = cx.callee_saved();
        adjust_rsp(cx, cx.frame.size - 8 * saved.len() as i32, false);
        for &r in saved.iter().rev() {
            dynasm!(cx.ops ; .arch x64 ; pop Rq(r));
        }
        dynasm!(cx.ops ; .arch x64 ; pop rbp ; ret);
    }

    // ---- control ------------------------------------------------------------------

    /// Always `jmp rel32`, the form [`Backend::patch_branch`](crate::isa::Backend::patch_branch) rewrites.
    fn jump(cx: &mut Lower<'_, Self>, target: DynamicLabel) {
        dynasm!(cx.ops ; .arch x64 ; jmp =>target);
    }

    fn call(cx: &mut Lower<'_, Self>, target: DynamicLabel) {
        dynasm!(cx.ops ; .arch x64 ; call =>target);
    }

    fn branch_if(cx: &mut Lower<'_, Self>, t: Test, target: DynamicLabel) {
        let c = match t {
            Test::Flags(c) => c,
            Test::NonZero(r) | Test::Zero(r) => {
                dynasm!(cx.ops ; .arch x64 ; test Rq(r), Rq(r));
                if matches!(t, Test::Zero(_)) {
                    Cond::Eq
                } else {
                    Cond::Ne
                }
            }
        };
        match c {
            Cond::Eq => dynasm!(cx.ops ; .arch x64 ; je =>target),
            Cond::Ne => dynasm!(cx.ops ; .arch x64 ; jne =>target),
            Cond::Lt => dynasm!(cx.ops ; .arch x64 ; jl =>target),
            Cond::Le => dynasm!(cx.ops ; .arch x64 ; jle =>target),
            Cond::Gt => dynasm!(cx.ops ; .arch x64 ; jg =>target),
            Cond::Ge => dynasm!(cx.ops ; .arch x64 ; jge =>target),
        }
    }

    fn test_nonzero(cx: &mut Lower<'_, Self>, v: Val) -> Test {
        match v {
            Val::Reg(r) => dynasm!(cx.ops ; .arch x64 ; test Rq(r), Rq(r)),
            Val::Mem(slot) => {
                let off = rbp_offset(slot);
                dynasm!(cx.ops ; .arch x64 ; cmp QWORD [rbp + off], 0);
            }
            Val::Imm(i) => {
                Self::mov_imm(cx, RAX, i);
                dynasm!(cx.ops ; .arch x64 ; test rax, rax);
            }
        }
        Test::Flags(Cond::Ne)
    }

    /// `cmp a, b`, with whatever loads the operand forms need.
    fn compare(cx: &mut Lower<'_, Self>, a: Val, b: Val) {
        let a_reg = match (a, b) {
            (Val::Mem(slot), Val::Reg(rb)) => {
                let off = rbp_offset(slot);
                dynasm!(cx.ops ; .arch x64 ; cmp [rbp + off], Rq(rb));
                return;
            }
            (Val::Mem(slot), b) if imm32(b).is_some() => {
                let (off, imm) = (rbp_offset(slot), imm32(b).unwrap_or(0));
                dynasm!(cx.ops ; .arch x64 ; cmp QWORD [rbp + off], imm);
                return;
            }
            (a, _) => Self::in_reg(cx, a, RAX),
        };
        match b {
            Val::Reg(rb) => dynasm!(cx.ops ; .arch x64 ; cmp Rq(a_reg), Rq(rb)),
            Val::Mem(slot) => {
                let off = rbp_offset(slot);
                dynasm!(cx.ops ; .arch x64 ; cmp Rq(a_reg), [rbp + off]);
            }
            Val::Imm(_) if imm32(b).is_some() => {
                let imm = imm32(b).unwrap_or(0);
                dynasm!(cx.ops ; .arch x64 ; cmp Rq(a_reg), imm);
            }
            Val::Imm(i) => {
                Self::mov_imm(cx, RCX, i);
                dynasm!(cx.ops ; .arch x64 ; cmp Rq(a_reg), rcx);
            }
        }
    }

    fn compare_result(cx: &mut Lower<'_, Self>, k: u32) {
        let k = k as i32;
        dynasm!(cx.ops ; .arch x64 ; cmp rax, k);
    }

    fn trap(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops ; .arch x64 ; ud2);
    }

    // ---- what back-edges carry ---------------------------------------------------

    fn poll_check(cx: &mut Lower<'_, Self>, slow: DynamicLabel) {
        dynasm!(cx.ops
            ; .arch x64
            ; cmp QWORD [Rq(CTX) + CTX_POLL], 0
            ; jne =>slow
        );
    }

    /// r11 is scratch at a back-edge.
    fn poll_page_address(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops ; .arch x64 ; mov r11, [Rq(CTX) + CTX_POLL_PAGE]);
    }

    fn poll_page_load(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops ; .arch x64 ; mov r11, [r11]);
    }

    /// The displacement must lie inside one aligned 8-byte word (the
    /// runtime rewrites it with one store); where it would not (3 offsets
    /// of 8), one NOP of the length needed moves it to the next word (a
    /// loop runs it every iteration: one instruction, never three).
    fn align_patchable_branch(cx: &mut Lower<'_, Self>) {
        let at = (cx.off() + 1) % 8;
        let pad = if at > 4 { 8 - at } else { 0 };
        let nop: &[u8] = match pad {
            1 => &[0x90],
            2 => &[0x66, 0x90],
            3 => &[0x0f, 0x1f, 0x00],
            _ => &[],
        };
        for &b in nop {
            cx.ops.push(b);
        }
    }

    /// `call` pushes the address of the next instruction, as the handler's
    /// `push_call` pushes the interrupted PC: the stub's frame is the
    /// same, and it returns there.
    fn enter_stub(cx: &mut Lower<'_, Self>, stub: DynamicLabel) {
        dynasm!(cx.ops ; .arch x64 ; call =>stub);
    }

    // ---- out-of-line paths -------------------------------------------------------

    /// The slot is at `[rax + 16]`, the object at `rax - rdx`.
    fn slot_tag_operands(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops
            ; .arch x64
            ; mov rcx, [rax + OBJ_SLOTS + SLOT_TAG]
            ; mov [rsp], rcx
            ; sub rax, rdx
            ; mov [rsp + 8], rax
        );
    }

    fn index_operands(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops
            ; .arch x64
            ; mov [rsp], rdx
            ; mov rcx, [rax + OBJ_LEN]
            ; mov [rsp + 8], rcx
        );
    }

    /// Leaves the barrier's block in rdx for the slow path.
    fn barrier_test(cx: &mut Lower<'_, Self>, slow: DynamicLabel) {
        const { assert!(GC_MARKING == 0, "the flag is the block's first word") };
        dynasm!(cx.ops
            ; .arch x64
            ; mov rdx, [Rq(CTX) + CTX_GC]
            ; cmp QWORD [rdx], 0
            ; jne =>slow
        );
    }

    /// The old ref is in the slot at `[rax + 16]` or the global at `[r11]`;
    /// the barrier's block is in rdx.
    fn shade_old_ref(cx: &mut Lower<'_, Self>, resume: DynamicLabel, old: OldRef) {
        match old {
            OldRef::Slot => dynasm!(cx.ops
                ; .arch x64
                ; cmp QWORD [rax + OBJ_SLOTS + SLOT_TAG], TAG_REF as i32
                ; jne =>resume
                ; cmp QWORD [rax + OBJ_SLOTS + SLOT_VALUE], 0
                ; je =>resume
            ),
            OldRef::Global => dynasm!(cx.ops
                ; .arch x64
                ; cmp QWORD [r11], 0
                ; je =>resume
            ),
        }
        // An even number of pushes keeps rsp 16-byte aligned for the call.
        for r in BARRIER_SAVED.iter() {
            dynasm!(cx.ops ; .arch x64 ; push Rq(r));
        }
        dynasm!(cx.ops ; .arch x64 ; mov rdi, rdx);
        match old {
            OldRef::Slot => {
                dynasm!(cx.ops ; .arch x64 ; mov rsi, [rax + OBJ_SLOTS + SLOT_VALUE])
            }
            OldRef::Global => dynasm!(cx.ops ; .arch x64 ; mov rsi, [r11]),
        }
        dynasm!(cx.ops ; .arch x64 ; call QWORD [rdi + GC_SHADE]);
        for r in BARRIER_SAVED.iter().rev() {
            dynasm!(cx.ops ; .arch x64 ; pop Rq(r));
        }
        // The collector's code left its own words in the registers not
        // restored (rdx) and the vector registers; cleared, as `switch_to`
        // clears them, so that no stale heap address reaches a preemption
        // stub's frame (see stubs.rs).
        for r in TABLE.host_clobbered().minus(BARRIER_SAVED).iter() {
            super::stubs::zero(cx.ops, r);
        }
        for x in 0..16u8 {
            dynasm!(cx.ops ; .arch x64 ; xorps Rx(x), Rx(x));
        }
    }

    // ---- instructions -----------------------------------------------------------------

    fn unary(cx: &mut Lower<'_, Self>, op: Opcode, dst: Reg, v: Val) {
        let w = cx.dst_reg(dst).unwrap_or(RAX);
        cx.load(w, v);
        if op == Opcode::Neg {
            dynasm!(cx.ops ; .arch x64 ; neg Rq(w));
        } else {
            dynasm!(cx.ops ; .arch x64 ; not Rq(w));
        }
        cx.store(dst, w);
    }

    /// Two-address forms: the result is computed in the destination
    /// register unless it holds the right operand (then the operands swap
    /// if the operation allows, else rax is used).
    fn arithmetic(cx: &mut Lower<'_, Self>, op: Opcode, dst: Reg, x: Val, y: Val) {
        if matches!(op, Opcode::Shl | Opcode::Shr | Opcode::Sar) {
            return shift(cx, op, dst, x, y);
        }
        let commutative = matches!(
            op,
            Opcode::Add | Opcode::Mul | Opcode::And | Opcode::Or | Opcode::Xor
        );
        let (mut vx, mut vy) = (x, y);
        let w = match cx.dst_reg(dst) {
            Some(r) if vy != Val::Reg(r) || vx == vy => r,
            Some(r) if commutative => {
                std::mem::swap(&mut vx, &mut vy);
                r
            }
            _ => RAX,
        };
        let imm = imm32(vy);
        // Three-address forms when the left operand stays in another
        // register: `lea w, [x + k]` for add and sub of a literal, `imul w,
        // x, k`, instead of a copy then the operation.
        if let (Some(i), Val::Reg(rx)) = (imm, vx) {
            if rx != w {
                let disp = match op {
                    Opcode::Add => Some(i),
                    Opcode::Sub => i.checked_neg(),
                    _ => None,
                };
                if let Some(d) = disp {
                    dynasm!(cx.ops ; .arch x64 ; lea Rq(w), [Rq(rx) + d]);
                    return cx.store(dst, w);
                }
                if op == Opcode::Mul {
                    dynasm!(cx.ops ; .arch x64 ; imul Rq(w), Rq(rx), i);
                    return cx.store(dst, w);
                }
            }
        }
        cx.load(w, vx);
        match (op, vy) {
            (Opcode::Mul, _) if imm.is_some() => {
                let i = imm.unwrap_or(0);
                dynasm!(cx.ops ; .arch x64 ; imul Rq(w), Rq(w), i);
            }
            (Opcode::Mul, Val::Reg(r)) => dynasm!(cx.ops ; .arch x64 ; imul Rq(w), Rq(r)),
            (Opcode::Mul, Val::Mem(slot)) => {
                let off = rbp_offset(slot);
                dynasm!(cx.ops ; .arch x64 ; imul Rq(w), [rbp + off]);
            }
            (_, _) if imm.is_some() => {
                let i = imm.unwrap_or(0);
                match op {
                    Opcode::Add => dynasm!(cx.ops ; .arch x64 ; add Rq(w), i),
                    Opcode::Sub => dynasm!(cx.ops ; .arch x64 ; sub Rq(w), i),
                    Opcode::And => dynasm!(cx.ops ; .arch x64 ; and Rq(w), i),
                    Opcode::Or => dynasm!(cx.ops ; .arch x64 ; or Rq(w), i),
                    _ => dynasm!(cx.ops ; .arch x64 ; xor Rq(w), i),
                }
            }
            (_, Val::Mem(slot)) => {
                let off = rbp_offset(slot);
                match op {
                    Opcode::Add => dynasm!(cx.ops ; .arch x64 ; add Rq(w), [rbp + off]),
                    Opcode::Sub => dynasm!(cx.ops ; .arch x64 ; sub Rq(w), [rbp + off]),
                    Opcode::And => dynasm!(cx.ops ; .arch x64 ; and Rq(w), [rbp + off]),
                    Opcode::Or => dynasm!(cx.ops ; .arch x64 ; or Rq(w), [rbp + off]),
                    _ => dynasm!(cx.ops ; .arch x64 ; xor Rq(w), [rbp + off]),
                }
            }
            (_, v) => {
                let r = Self::in_reg(cx, v, RCX);
                match op {
                    Opcode::Add => dynasm!(cx.ops ; .arch x64 ; add Rq(w), Rq(r)),
                    Opcode::Sub => dynasm!(cx.ops ; .arch x64 ; sub Rq(w), Rq(r)),
                    Opcode::Mul => dynasm!(cx.ops ; .arch x64 ; imul Rq(w), Rq(r)),
                    Opcode::And => dynasm!(cx.ops ; .arch x64 ; and Rq(w), Rq(r)),
                    Opcode::Or => dynasm!(cx.ops ; .arch x64 ; or Rq(w), Rq(r)),
                    _ => dynasm!(cx.ops ; .arch x64 ; xor Rq(w), Rq(r)),
                }
            }
        }
        cx.store(dst, w);
    }

    fn set_from_flags(cx: &mut Lower<'_, Self>, c: Cond, _dst: Reg) -> u8 {
        match c {
            Cond::Eq => dynasm!(cx.ops ; .arch x64 ; sete al),
            Cond::Ne => dynasm!(cx.ops ; .arch x64 ; setne al),
            Cond::Lt => dynasm!(cx.ops ; .arch x64 ; setl al),
            Cond::Le => dynasm!(cx.ops ; .arch x64 ; setle al),
            Cond::Gt => dynasm!(cx.ops ; .arch x64 ; setg al),
            Cond::Ge => dynasm!(cx.ops ; .arch x64 ; setge al),
        }
        dynasm!(cx.ops ; .arch x64 ; movzx eax, al);
        RAX
    }

    /// `idiv` traps on `MIN / -1` (#DE), so a divisor of -1 takes a path
    /// of its own: `neg` gives `MIN` for `MIN`, and the remainder is 0.
    fn divide(
        cx: &mut Lower<'_, Self>,
        op: Opcode,
        dst: Reg,
        x: Val,
        y: Val,
        zero: Option<DynamicLabel>,
    ) {
        match y {
            Val::Imm(-1) => {
                cx.load(RAX, x);
                minus_one_divisor(cx, op);
            }
            Val::Imm(_) => {
                cx.load(RAX, x);
                cx.load(RCX, y);
                idiv_rcx(cx, op);
            }
            _ => {
                let zero = zero.expect("made for a variable divisor");
                let (normal, done) = (cx.label(), cx.label());
                cx.load(RCX, y);
                cx.load(RAX, x);
                dynasm!(cx.ops
                    ; .arch x64
                    ; test rcx, rcx
                    ; jz =>zero
                    ; cmp rcx, -1
                    ; jne =>normal
                );
                minus_one_divisor(cx, op);
                dynasm!(cx.ops
                    ; .arch x64
                    ; jmp =>done
                    ; =>normal
                );
                idiv_rcx(cx, op);
                dynasm!(cx.ops ; .arch x64 ; =>done);
            }
        }
        cx.store(dst, RAX);
    }

    fn object_length(cx: &mut Lower<'_, Self>) {
        dynasm!(cx.ops ; .arch x64 ; mov rax, [rax + OBJ_LEN]);
    }

    /// rdx ends up 16 times the index: the slot-tag path subtracts it.
    fn slot_address(cx: &mut Lower<'_, Self>, oob: DynamicLabel) {
        dynasm!(cx.ops
            ; .arch x64
            ; cmp rdx, [rax + OBJ_LEN]
            ; jae =>oob
            ; shl rdx, SLOT_SHIFT as i8
            ; add rax, rdx
        );
    }

    /// A fresh slot reads as 0 through get and as nil through getref. A
    /// slot of the other kind is a mismatch, and so is any other tag (a
    /// freed object's poison): the runtime tells the two apart.
    fn load_slot_value(cx: &mut Lower<'_, Self>, op: Opcode, bad: DynamicLabel) -> u8 {
        if op == Opcode::Get {
            dynasm!(cx.ops
                ; .arch x64
                ; cmp QWORD [rax + OBJ_SLOTS + SLOT_TAG], TAG_INT as i32
                ; ja =>bad
            );
        } else {
            dynasm!(cx.ops
                ; .arch x64
                ; test QWORD [rax + OBJ_SLOTS + SLOT_TAG], !(TAG_REF as i32)
                ; jnz =>bad
            );
        }
        dynasm!(cx.ops ; .arch x64 ; mov rax, [rax + OBJ_SLOTS + SLOT_VALUE]);
        RAX
    }

    /// The order keeps a concurrent reader from seeing a ref tag with an
    /// integer value: an i64 store retags first, a ref store retags last.
    fn store_slot_value(cx: &mut Lower<'_, Self>, op: Opcode, value: u8) {
        if op == Opcode::Set {
            dynasm!(cx.ops
                ; .arch x64
                ; mov QWORD [rax + OBJ_SLOTS + SLOT_TAG], TAG_INT as i32
                ; mov [rax + OBJ_SLOTS + SLOT_VALUE], Rq(value)
            );
        } else {
            dynasm!(cx.ops
                ; .arch x64
                ; mov [rax + OBJ_SLOTS + SLOT_VALUE], Rq(value)
                ; mov QWORD [rax + OBJ_SLOTS + SLOT_TAG], TAG_REF as i32
            );
        }
    }

    /// Plain and atomic loads are both a plain mov: x86-64 is TSO and
    /// atomic stores use xchg, which makes them SC.
    fn load_global(cx: &mut Lower<'_, Self>, _op: Opcode, dst: u8, addr: i64) {
        dynasm!(cx.ops
            ; .arch x64
            ; mov r11, QWORD addr
            ; mov Rq(dst), [r11]
        );
    }

    /// The address goes in r11.
    fn global_address(cx: &mut Lower<'_, Self>, addr: i64) {
        dynasm!(cx.ops ; .arch x64 ; mov r11, QWORD addr);
    }

    fn store_global(cx: &mut Lower<'_, Self>, value: u8) {
        dynasm!(cx.ops ; .arch x64 ; mov [r11], Rq(value));
    }

    fn store_global_atomic(cx: &mut Lower<'_, Self>, addr: i64, v: Val) {
        cx.load(RAX, v);
        dynasm!(cx.ops
            ; .arch x64
            ; mov r11, QWORD addr
            ; xchg [r11], rax
        );
    }

    fn atomic_add(cx: &mut Lower<'_, Self>, addr: i64, v: Val) -> u8 {
        cx.load(RAX, v);
        dynasm!(cx.ops
            ; .arch x64
            ; mov rcx, rax
            ; mov r11, QWORD addr
            ; lock xadd [r11], rax
            ; add rax, rcx
        );
        RAX
    }

    fn compare_and_swap(cx: &mut Lower<'_, Self>, addr: i64, old: Val, new: Val) -> u8 {
        cx.load(RAX, old);
        cx.load(RCX, new);
        dynasm!(cx.ops
            ; .arch x64
            ; mov r11, QWORD addr
            ; lock cmpxchg [r11], rcx
            ; sete al
            ; movzx eax, al
        );
        RAX
    }
}

/// Shifts by a constant (the hardware masks a 64-bit count to 6 bits, as
/// PIR does), or by cl.
fn shift(cx: &mut Lower<'_, X64>, op: Opcode, dst: Reg, x: Val, y: Val) {
    if let Val::Imm(n) = y {
        let n = (n & 63) as i8;
        let w = cx.dst_reg(dst).unwrap_or(RAX);
        cx.load(w, x);
        if n != 0 {
            match op {
                Opcode::Shl => dynasm!(cx.ops ; .arch x64 ; shl Rq(w), n),
                Opcode::Shr => dynasm!(cx.ops ; .arch x64 ; shr Rq(w), n),
                _ => dynasm!(cx.ops ; .arch x64 ; sar Rq(w), n),
            }
        }
        cx.store(dst, w);
        return;
    }
    cx.load(RCX, y);
    cx.load(RAX, x);
    match op {
        Opcode::Shl => dynasm!(cx.ops ; .arch x64 ; shl rax, cl),
        Opcode::Shr => dynasm!(cx.ops ; .arch x64 ; shr rax, cl),
        _ => dynasm!(cx.ops ; .arch x64 ; sar rax, cl),
    }
    cx.store(dst, RAX);
}

/// `x / -1` is `-x` (`MIN` for `MIN`, as Go has it), `x % -1` is 0.
fn minus_one_divisor(cx: &mut Lower<'_, X64>, op: Opcode) {
    if op == Opcode::Div {
        dynasm!(cx.ops ; .arch x64 ; neg rax);
    } else {
        dynasm!(cx.ops ; .arch x64 ; mov eax, 0);
    }
}

/// `rax / rcx`, the quotient or remainder left in rax.
fn idiv_rcx(cx: &mut Lower<'_, X64>, op: Opcode) {
    dynasm!(cx.ops
        ; .arch x64
        ; cqo
        ; idiv rcx
    );
    if op == Opcode::Rem {
        dynasm!(cx.ops ; .arch x64 ; mov rax, rdx);
    }
}
