//! Runtime stubs for x86-64: the switch between the scheduler and a
//! goroutine, and a fresh goroutine's entry.
//!
//! ```text
//!  scheduler stack while a goroutine runs     goroutine stack parked in rt_call
//!  +------------------------+                 +------------------------+
//!  | return into Rust       |                 | outgoing operands ...  |  [sp + 8 + 8*i]
//!  | rbp rbx r12 r13 r14 r15|  <- sched_sp    | return into JIT code   |  <- ctx.sp
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
//! `async_preempt` is where a signal handler sends an interrupted
//! goroutine (`push_call(async_preempt, pc)` pushed `pc`). Its frame, on
//! the goroutine's stack (16-byte aligned when the interrupted code's SP
//! was, which JIT code keeps outside its unsafe regions):
//!
//! ```text
//!  +------------------------+
//!  | resume pc              |  pushed by the signal handler
//!  | rflags                 |
//!  | rax rcx ... r13 r14    |  14 general registers (r15, the context, is never changed)
//!  | xmm0 ... xmm15         |  256 bytes
//!  | return into the stub   |  <- ctx.sp during the AsyncPreempt runtime call
//!  +------------------------+
//! ```

use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};

use super::{CTX, RUNTIME_SAVED};
use crate::abi::{RuntimeOp, CTX_REQUEST, CTX_RESULT, CTX_SAVED, CTX_SCHED_SP, CTX_SP};
use crate::code::{MetadataBuilder, UnsafeKind};
use crate::module::StubAddresses;

fn saved_slot(r: u8) -> i32 {
    CTX_SAVED + 8 * i32::from(r)
}

/// Emits the stubs at the start of the code; `rt_call` is the label JIT
/// code calls.
pub(super) fn emit(
    ops: &mut VecAssembler<X64Relocation>,
    meta: &mut MetadataBuilder,
    rt_call: DynamicLabel,
    async_label: DynamicLabel,
) -> StubAddresses {
    // switch_to(ctx: rdi) -> request: saves the scheduler's callee-saved
    // registers (SysV) on its own stack, then resumes the goroutine.
    let switch_to = ops.offset().0;
    meta.begin_stub("switch_to", ops.offset().0);
    meta.begin_unsafe(UnsafeKind::RuntimeTransition, ops.offset().0);
    dynasm!(ops
        ; .arch x64
        ; push rbp
        ; push rbx
        ; push r12
        ; push r13
        ; push r14
        ; push r15
        ; mov [rdi + CTX_SCHED_SP], rsp
        ; mov Rq(CTX), rdi
        ; mov rsp, [Rq(CTX) + CTX_SP]
    );
    for &r in RUNTIME_SAVED {
        dynasm!(ops ; .arch x64 ; mov Rq(r), [Rq(CTX) + saved_slot(r)]);
    }
    // Whatever the scheduler left in the registers the goroutine does not
    // get back is cleared: the scratch registers and the vector registers
    // (which JIT code never uses) would otherwise carry the runtime's stale
    // words onto the goroutine's stack when the preemption stub saves
    // them, where the collector's conservative scan would take a dangling
    // heap address for a ref. Zeroing idioms: no execution units.
    dynasm!(ops
        ; .arch x64
        ; xor ecx, ecx
        ; xor edx, edx
        ; xor r11d, r11d
    );
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
    for &r in RUNTIME_SAVED {
        dynasm!(ops ; .arch x64 ; mov [Rq(CTX) + saved_slot(r)], Rq(r));
    }
    dynasm!(ops
        ; .arch x64
        ; mov [Rq(CTX) + CTX_SP], rsp
        ; mov rsp, [Rq(CTX) + CTX_SCHED_SP]
        ; pop r15
        ; pop r14
        ; pop r13
        ; pop r12
        ; pop rbx
        ; pop rbp
        ; ret
    );
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

    let async_preempt = ops.offset().0;
    meta.begin_stub("async_preempt", async_preempt);
    let request = RuntimeOp::AsyncPreempt.request(0) as i32;
    dynasm!(ops ; .arch x64 ; =>async_label ; pushfq);
    for &r in PRESERVED {
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
    for x in 0..16u8 {
        let off = 16 * i32::from(x);
        dynasm!(ops ; .arch x64 ; movdqu Rx(x), [rsp + off]);
    }
    dynasm!(ops ; .arch x64 ; add rsp, VECTOR_BYTES);
    for &r in PRESERVED.iter().rev() {
        dynasm!(ops ; .arch x64 ; pop Rq(r));
    }
    dynasm!(ops
        ; .arch x64
        ; popfq
        ; ret
    );
    meta.end_stub(ops.offset().0);
    StubAddresses {
        switch_to,
        rt_call: rt_call_offset,
        goroutine_entry,
        async_preempt,
    }
}

/// The general registers `async_preempt` saves: all but rsp and r15.
const PRESERVED: &[u8] = &[0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
/// Bytes of xmm0-xmm15.
const VECTOR_BYTES: i32 = 256;
