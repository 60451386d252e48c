//! Runtime stubs for aarch64: the switch between the scheduler and a
//! goroutine, and a fresh goroutine's entry. They may use `x16`, the
//! register reserved for stubs. Every register list they save, restore or
//! clear is a set derived from the register table in `mod.rs`.
//!
//! ```text
//!  scheduler stack while a goroutine runs     goroutine stack parked in rt_call
//!  +------------------------+                 +------------------------+
//!  | (caller's frame)       |                 | outgoing operands ...  |  [ctx.sp + 8 + 8*i]
//!  | x27 x28                |  [sp + 80]      | x30: return into JIT   |  <- ctx.sp
//!  | x25 x26                |  [sp + 64]      | 0 (padding)            |  16-byte aligned
//!  | x23 x24                |  [sp + 48]      +------------------------+
//!  | x21 x22                |  [sp + 32]
//!  | x19 x20                |  [sp + 16]      fresh goroutine stack (ctx.result =
//!  | x29 x30                |  <- sched_sp    the function, left in x0 by switch_to)
//!  +------------------------+                 +------------------------+
//!                                             | argument n-1 ... 0     |  sp0, 16-aligned
//!                                             | goroutine_entry        |  <- ctx.sp = sp0 - 8
//!                                             +------------------------+
//! ```
//!
//! Both `switch_to` and `rt_call` are one `RuntimeTransition` unsafe
//! region: between their first and last instruction SP and the context
//! disagree about whose stack is live.
//!
//! `preempt_stub` is where every mechanism but `coop` stops a goroutine: a
//! signal or poll-page fault handler sends an interrupted
//! goroutine: `push_call(preempt_stub, pc)` stored the interrupted x29
//! and x30 in a 16-byte slot below SP and set x30 = pc. The stub's frame:
//!
//! ```text
//!  +------------------------+
//!  | interrupted x29, x30   |  pushed by the signal handler
//!  | q0 ... q31             |  [sp + 256], 512 bytes
//!  | nzcv                   |  [sp + 248]
//!  | x30 = resume pc        |  [sp + 240]
//!  | x0 ... x29             |  [sp + 0 .. 240]  (x16's slot is scratch)
//!  +------------------------+  <- sp during the PreemptStub runtime call
//! ```
//!
//! It returns with `br x16`: `x16` is the one register the stubs may
//! clobber, which is why no function body ever keeps a value in it.

use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi};

use crate::code::CodeBuffer;

use super::{
    CLEARED_ON_SWITCH, CTX, FP, LR, PREEMPT_STUB_RESTORED, PREEMPT_STUB_SAVED, RUNTIME_SAVED,
    SCHEDULER_SAVED,
};
use crate::abi::{RuntimeOp, CTX_REQUEST, CTX_RESULT, CTX_SAVED, CTX_SCHED_SP, CTX_SP};
use crate::code::{MetadataBuilder, UnsafeKind};
use crate::lower::RegSet;
use crate::module::StubAddresses;

fn saved_slot(r: u8) -> u32 {
    (CTX_SAVED + 8 * i32::from(r)) as u32
}

/// Emits the stubs at the start of the code; `rt_call` is the label JIT
/// code calls.
pub(super) fn emit(
    ops: &mut CodeBuffer<Aarch64Relocation>,
    meta: &mut MetadataBuilder,
    rt_call: DynamicLabel,
    async_label: DynamicLabel,
) -> StubAddresses {
    let (sched_sp, ctx_sp, result, request) = (
        CTX_SCHED_SP as u32,
        CTX_SP as u32,
        CTX_RESULT as u32,
        CTX_REQUEST as u32,
    );

    // switch_to(ctx: x0) -> request: saves the scheduler's callee-saved
    // registers (AAPCS64: x19-x29, x30 for the return) on its own stack,
    // then resumes the goroutine. d8-d15 need no saving: JIT code never
    // touches the vector registers.
    // The frame record first, then the other registers in pairs above it.
    let others = SCHEDULER_SAVED.minus(RegSet::of(&[FP, LR]));
    let frame = 16 * (1 + others.len() as i32 / 2);
    let switch_to = ops.offset().0;
    meta.begin_stub("switch_to", switch_to);
    meta.begin_unsafe(UnsafeKind::RuntimeTransition, switch_to);
    dynasm!(ops ; .arch aarch64 ; stp x29, x30, [sp, -frame]!);
    for (k, (a, b)) in others.pairs().enumerate() {
        let off = 16 * (k as i32 + 1);
        dynasm!(ops ; .arch aarch64 ; stp X(a), X(b), [sp, off]);
    }
    dynasm!(ops
        ; .arch aarch64
        ; mov x16, sp
        ; str x16, [x0, sched_sp]
        ; mov X(CTX), x0
        ; ldr x16, [X(CTX), ctx_sp]
        ; ldr x30, [x16]
        ; add x16, x16, #8
        ; mov sp, x16
    );
    for r in RUNTIME_SAVED.iter() {
        dynasm!(ops ; .arch aarch64 ; ldr X(r), [X(CTX), saved_slot(r)]);
    }
    // Whatever the scheduler left in the registers the goroutine does not
    // get back is cleared: the scratch registers and the vector registers
    // (which JIT code never uses) would otherwise carry the runtime's stale
    // words onto the goroutine's stack when the preemption stub saves
    // them, where the collector's conservative scan would take a dangling
    // heap address for a ref.
    for r in CLEARED_ON_SWITCH.iter() {
        dynasm!(ops ; .arch aarch64 ; mov X(r), xzr);
    }
    for v in 0..32u8 {
        dynasm!(ops ; .arch aarch64 ; movi V(v).D2, 0);
    }
    dynasm!(ops
        ; .arch aarch64
        ; ldr x0, [X(CTX), result]
        ; ret
    );
    meta.end_unsafe(ops.offset().0);
    meta.end_stub(ops.offset().0);

    // rt_call: x0 = request, x30 = return address into JIT code. Pushing
    // 16 bytes keeps SP aligned; the return address lands right below the
    // caller's outgoing operands, where the runtime expects it.
    let rt_call_offset = ops.offset().0;
    meta.begin_stub("rt_call", rt_call_offset);
    meta.begin_unsafe(UnsafeKind::RuntimeTransition, rt_call_offset);
    dynasm!(ops
        ; .arch aarch64
        ; =>rt_call
        ; str x0, [X(CTX), request]
        ; stp xzr, x30, [sp, #-16]!
        ; add x16, sp, #8
        ; str x16, [X(CTX), ctx_sp]
    );
    for r in RUNTIME_SAVED.iter() {
        dynasm!(ops ; .arch aarch64 ; str X(r), [X(CTX), saved_slot(r)]);
    }
    dynasm!(ops
        ; .arch aarch64
        ; ldr x16, [X(CTX), sched_sp]
        ; mov sp, x16
    );
    for (k, (a, b)) in others.pairs().enumerate() {
        let off = 16 * (k as i32 + 1);
        dynasm!(ops ; .arch aarch64 ; ldp X(a), X(b), [sp, off]);
    }
    dynasm!(ops
        ; .arch aarch64
        ; ldp x29, x30, [sp], frame
        ; ret
    );
    meta.end_unsafe(ops.offset().0);
    meta.end_stub(ops.offset().0);

    // goroutine_entry: x0 = the function, sp = its arguments. A zero frame
    // pointer ends tracebacks here.
    let goroutine_entry = ops.offset().0;
    meta.begin_stub("goroutine_entry", goroutine_entry);
    let exit = RuntimeOp::Exit.request(0) as u32;
    dynasm!(ops
        ; .arch aarch64
        ; mov x29, xzr
        ; blr x0
        ; movz x0, exit
        ; bl =>rt_call
        ; udf 0
    );
    meta.end_stub(ops.offset().0);

    let preempt_stub = ops.offset().0;
    meta.begin_stub("preempt_stub", preempt_stub);
    let request = RuntimeOp::PreemptStub.request(0) as u32;
    dynasm!(ops ; .arch aarch64 ; =>async_label ; sub sp, sp, FRAME);
    for (a, b) in PREEMPT_STUB_SAVED.pairs() {
        dynasm!(ops ; .arch aarch64 ; stp X(a), X(b), [sp, slot(a)]);
    }
    dynasm!(ops
        ; .arch aarch64
        ; str x30, [sp, RESUME]
        ; mrs x16, NZCV
        ; str x16, [sp, FLAGS]
        ; add x16, sp, VECTORS
    );
    for pair in 0..16u8 {
        let (q, off) = (2 * pair, 32 * i32::from(pair));
        dynasm!(ops ; .arch aarch64 ; stp Q(q), Q(q + 1), [x16, off]);
    }
    dynasm!(ops
        ; .arch aarch64
        ; movz x0, request
        ; bl =>rt_call
        ; add x16, sp, VECTORS
    );
    for pair in 0..16u8 {
        let (q, off) = (2 * pair, 32 * i32::from(pair));
        dynasm!(ops ; .arch aarch64 ; ldp Q(q), Q(q + 1), [x16, off]);
    }
    dynasm!(ops
        ; .arch aarch64
        ; ldr x16, [sp, FLAGS]
        ; msr NZCV, x16
    );
    // x16 is the stub's scratch: of its pair, only x17 comes back.
    for (a, b) in PREEMPT_STUB_SAVED.pairs() {
        match (
            PREEMPT_STUB_RESTORED.contains(a),
            PREEMPT_STUB_RESTORED.contains(b),
        ) {
            (true, true) => dynasm!(ops ; .arch aarch64 ; ldp X(a), X(b), [sp, slot(a)]),
            (false, true) => dynasm!(ops ; .arch aarch64 ; ldr X(b), [sp, slot(b) as u32]),
            (true, false) => dynasm!(ops ; .arch aarch64 ; ldr X(a), [sp, slot(a) as u32]),
            (false, false) => {}
        }
    }
    dynasm!(ops
        ; .arch aarch64
        ; ldr x16, [sp, RESUME]
        ; add sp, sp, FRAME
        ; ldp x29, x30, [sp], #16
        ; br x16
    );
    meta.end_stub(ops.offset().0);
    StubAddresses {
        switch_to,
        rt_call: rt_call_offset,
        goroutine_entry,
        preempt_stub,
        // The handler redirects into preempt_stub and returns: no hand-off
        // is written for aarch64 yet (see the x86-64 handoff module).
        handoff: None,
    }
}

/// Where the preemption stub keeps `xn`.
fn slot(n: u8) -> i32 {
    8 * i32::from(n)
}

/// The system-register number of NZCV in MRS/MSR (`S3_3_C4_C2_0`).
const NZCV: u32 = 0x5a10;
/// The async stub's frame: x0-x29, x30 (the resume pc), the flags, then
/// q0-q31.
const RESUME: u32 = 240;
/// Bytes from `ctx.sp` to the resume pc while a goroutine is in the
/// stub's `PreemptStub` runtime call: `rt_call` pushed 16 bytes below the
/// stub's frame and left `ctx.sp` at the second word (its x30).
pub(crate) const RESUME_FROM_CTX_SP: usize = 8 + RESUME as usize;
const FLAGS: u32 = 248;
const VECTORS: u32 = 256;
const FRAME: u32 = VECTORS + 32 * 16;
