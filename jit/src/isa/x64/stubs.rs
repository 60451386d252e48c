//! Runtime stubs for x86-64: the switch between the scheduler and a
//! goroutine, and a fresh goroutine's entry. Every register list they
//! save, restore or clear is a set derived from the register table in
//! `mod.rs`.
//!
//! ```text
//!  scheduler stack while a goroutine runs     goroutine stack parked in rt_call
//!  +------------------------+                 +------------------------+
//!  | return into Rust       |                 | outgoing operands ...  |  [sp + 8 + 8*i]
//!  | rbx rbp r12 r13 r14 r15|  <- sched_sp    | return into JIT code   |  <- ctx.sp
//!  +------------------------+                 +------------------------+
//!
//!  fresh goroutine stack, before the first switch_to (ctx.result holds
//!  the function's address, which switch_to leaves in rax)
//!  +------------------------+
//!  | argument n-1 ... 0     |  16-byte aligned: sp0
//!  | goroutine_entry        |  <- ctx.sp = sp0 - 8
//!  +------------------------+
//! ```
//!
//! `switch_to` and `rt_call` are each one `RuntimeTransition` unsafe
//! region: between their first and last instruction SP and the context
//! disagree about whose stack is live.
//!
//! `preempt_stub` is where every mechanism but `coop` stops a goroutine: a
//! signal or poll-page fault handler sends an interrupted
//! goroutine (`push_call(preempt_stub, pc)` pushed `pc`). Its frame, on
//! the goroutine's stack (16-byte aligned when the interrupted code's SP
//! was, which JIT code keeps outside its unsafe regions):
//!
//! ```text
//!  +------------------------+
//!  | resume pc              |  pushed by the signal handler
//!  | rflags                 |
//!  | rax rcx ... r13 r14    |  14 general registers (r15, the context, is never changed)
//!  | xmm0 ... xmm15         |  256 bytes
//!  | return into the stub   |  <- ctx.sp during the PreemptStub runtime call
//!  +------------------------+
//! ```

use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi};

use crate::code::CodeBuffer;

use super::{CLEARED_ON_SWITCH, CTX, PREEMPT_STUB_SAVED, RUNTIME_SAVED, SCHEDULER_SAVED};
use crate::abi::{RuntimeOp, CTX_REQUEST, CTX_RESULT, CTX_SAVED, CTX_SCHED_SP, CTX_SP};
use crate::code::{MetadataBuilder, UnsafeKind};
use crate::module::{Handoff, StubAddresses};

fn saved_slot(r: u8) -> i32 {
    CTX_SAVED + 8 * i32::from(r)
}

// The short forms of three instructions the stubs and the write barrier
// emit for registers chosen from a table: dynasm's run-time register
// operands always carry a REX prefix, which the forms for rax-rdi do not
// need.

/// `push r`.
pub(super) fn push(ops: &mut impl DynasmApi, r: u8) {
    if r >= 8 {
        ops.push(0x41);
    }
    ops.push(0x50 | (r & 7));
}

/// `pop r`.
pub(super) fn pop(ops: &mut impl DynasmApi, r: u8) {
    if r >= 8 {
        ops.push(0x41);
    }
    ops.push(0x58 | (r & 7));
}

/// `xor r32, r32`: the zeroing idiom, which needs no execution unit and
/// clears the whole 64-bit register.
pub(super) fn zero(ops: &mut impl DynasmApi, r: u8) {
    if r >= 8 {
        ops.push(0x45);
    }
    ops.push(0x31);
    ops.push(0xc0 | (r & 7) << 3 | (r & 7));
}

/// Emits the stubs at the start of the code; `rt_call` is the label JIT
/// code calls.
pub(super) fn emit(
    ops: &mut CodeBuffer<X64Relocation>,
    meta: &mut MetadataBuilder,
    rt_call: DynamicLabel,
    async_label: DynamicLabel,
) -> StubAddresses {
    // switch_to(ctx: rdi) -> request: saves the scheduler's callee-saved
    // registers (SysV) on its own stack, then resumes the goroutine.
    let switch_to = ops.offset().0;
    meta.begin_stub("switch_to", ops.offset().0);
    meta.begin_unsafe(UnsafeKind::RuntimeTransition, ops.offset().0);
    for r in SCHEDULER_SAVED.iter() {
        push(ops, r);
    }
    dynasm!(ops
        ; .arch x64
        ; mov [rdi + CTX_SCHED_SP], rsp
        ; mov Rq(CTX), rdi
        ; mov rsp, [Rq(CTX) + CTX_SP]
    );
    for r in RUNTIME_SAVED.iter() {
        dynasm!(ops ; .arch x64 ; mov Rq(r), [Rq(CTX) + saved_slot(r)]);
    }
    // Whatever the scheduler left in the registers the goroutine does not
    // get back is cleared: the scratch registers and the vector registers
    // (which JIT code never uses) would otherwise carry the runtime's stale
    // words onto the goroutine's stack when the preemption stub saves
    // them, where the collector's conservative scan would take a dangling
    // heap address for a ref. Zeroing idioms: no execution units.
    for r in CLEARED_ON_SWITCH.iter() {
        zero(ops, r);
    }
    for x in 0..16u8 {
        dynasm!(ops ; .arch x64 ; xorps Rx(x), Rx(x));
    }
    dynasm!(ops
        ; .arch x64
        ; mov rax, [Rq(CTX) + CTX_RESULT]
        ; ret
    );
    meta.end_unsafe(ops.offset().0);
    meta.end_stub(ops.offset().0);

    // rt_call: rax = request, [rsp] = return address into JIT code.
    let rt_call_offset = ops.offset().0;
    meta.begin_stub("rt_call", ops.offset().0);
    meta.begin_unsafe(UnsafeKind::RuntimeTransition, ops.offset().0);
    dynasm!(ops
        ; .arch x64
        ; =>rt_call
        ; mov [Rq(CTX) + CTX_REQUEST], rax
    );
    for r in RUNTIME_SAVED.iter() {
        dynasm!(ops ; .arch x64 ; mov [Rq(CTX) + saved_slot(r)], Rq(r));
    }
    dynasm!(ops
        ; .arch x64
        ; mov [Rq(CTX) + CTX_SP], rsp
        ; mov rsp, [Rq(CTX) + CTX_SCHED_SP]
    );
    for r in SCHEDULER_SAVED.iter().rev() {
        pop(ops, r);
    }
    dynasm!(ops ; .arch x64 ; ret);
    meta.end_unsafe(ops.offset().0);
    meta.end_stub(ops.offset().0);

    // goroutine_entry: rax = the function, rsp = its arguments.
    let goroutine_entry = ops.offset().0;
    meta.begin_stub("goroutine_entry", ops.offset().0);
    let exit = RuntimeOp::Exit.request(0) as i32;
    dynasm!(ops
        ; .arch x64
        ; xor ebp, ebp
        ; call rax
        ; mov eax, exit
        ; call =>rt_call
        ; ud2
    );
    meta.end_stub(ops.offset().0);

    let preempt_stub = ops.offset().0;
    meta.begin_stub("preempt_stub", preempt_stub);
    let request = RuntimeOp::PreemptStub.request(0) as i32;
    dynasm!(ops ; .arch x64 ; =>async_label ; pushfq);
    for r in PREEMPT_STUB_SAVED.iter() {
        dynasm!(ops ; .arch x64 ; push Rq(r));
    }
    dynasm!(ops ; .arch x64 ; sub rsp, VECTOR_BYTES);
    for x in 0..16u8 {
        let off = 16 * i32::from(x);
        dynasm!(ops ; .arch x64 ; movdqu [rsp + off], Rx(x));
    }
    dynasm!(ops
        ; .arch x64
        ; mov eax, request
        ; call =>rt_call
    );
    let stub_return = ops.offset().0;
    for x in 0..16u8 {
        let off = 16 * i32::from(x);
        dynasm!(ops ; .arch x64 ; movdqu Rx(x), [rsp + off]);
    }
    dynasm!(ops ; .arch x64 ; add rsp, VECTOR_BYTES);
    for r in PREEMPT_STUB_SAVED.iter().rev() {
        dynasm!(ops ; .arch x64 ; pop Rq(r));
    }
    dynasm!(ops
        ; .arch x64
        ; popfq
        ; ret
    );
    meta.end_stub(ops.offset().0);

    // leave_handler(ctx: rdi) -> !: the second half of rt_call, for the
    // preemption signal's handler once it has written the stub's frame
    // and the context (see handoff.rs): onto the scheduler's stack, and
    // back into switch_to's caller with the request.
    let leave = ops.offset().0;
    meta.begin_stub("leave_handler", leave);
    meta.begin_unsafe(UnsafeKind::RuntimeTransition, ops.offset().0);
    dynasm!(ops
        ; .arch x64
        ; mov rsp, [rdi + CTX_SCHED_SP]
        ; mov rax, [rdi + CTX_REQUEST]
    );
    for r in SCHEDULER_SAVED.iter().rev() {
        pop(ops, r);
    }
    dynasm!(ops ; .arch x64 ; ret);
    meta.end_unsafe(ops.offset().0);
    meta.end_stub(ops.offset().0);
    StubAddresses {
        switch_to,
        rt_call: rt_call_offset,
        goroutine_entry,
        preempt_stub,
        handoff: Some(Handoff { leave, stub_return }),
    }
}

/// Bytes of xmm0-xmm15.
pub(super) const VECTOR_BYTES: i32 = 256;

/// Bytes from `ctx.sp` to the resume pc while a goroutine is in the
/// stub's `PreemptStub` runtime call (the frame drawn above): the return
/// address into the stub, the vector registers, the general registers and
/// rflags lie in between.
pub(crate) const RESUME_FROM_CTX_SP: usize =
    8 + VECTOR_BYTES as usize + 8 * PREEMPT_STUB_SAVED.len() + 8;
