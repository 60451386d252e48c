//! The preemption signal's hand-off on x86-64: the handler stops the
//! goroutine itself instead of sending it through `preempt_stub`.
//!
//! A redirect (`push_call(preempt_stub, pc)` and return) costs a
//! `sigreturn` (the kernel restores the signal frame: over 3 KiB of AVX-512
//! state here) and then the stub's own saves before its runtime call. The
//! handler already holds every register the stub saves, in the signal
//! frame: it writes them where the stub would have, in the stub's layout
//! (drawn in `stubs.rs`), with the return address of the stub's runtime
//! call below them, fills the context as `rt_call` would, and jumps to
//! `leave_handler`, the second half of `rt_call`, which returns into the
//! scheduler with the `PreemptStub` request. The signal frame is
//! abandoned on the alternate signal stack. When the goroutine is resumed,
//! `switch_to` returns into the stub after its call, and the stub restores
//! everything and returns to the interrupted instruction, exactly as after
//! a redirect: from the goroutine's side the two paths cannot be told
//! apart.
//!
//! What the hand-off leaves behind, and why each is harmless:
//! - the signal mask: the kernel blocks the signal while its handler runs
//!   and `sigreturn` unblocks it; the handler sets the interrupted code's
//!   mask back itself before it leaves.
//! - the alternate stack: the kernel decides whether a thread is on it by
//!   its SP at the next delivery; once `leave_handler` has switched stacks
//!   the next signal starts at its top again.
//! - the FPU state: the kernel gives a handler the initial state (default
//!   MXCSR and x87 control word), which is what the scheduler's Rust code
//!   expects; the goroutine's xmm registers are in the frame written here.
//! - `errno`: the interrupted code is JIT code, which never reads it.
//!
//! The handler hands off only where it would have redirected (the PC is
//! at a safe point of this goroutine's JIT code, so no lock is held and
//! the stack has room for the frame), and not while the thread is being
//! single-stepped (the harness's trap flag), where it redirects as before.

use super::stubs::VECTOR_BYTES;
use super::{PREEMPT_STUB_SAVED, RSP, RUNTIME_SAVED};
use crate::abi::{GoroutineContext, RuntimeOp};

/// Bytes the hand-off writes below the interrupted SP: the resume pc,
/// rflags, the general registers, the vector registers and the return
/// address into the stub.
pub const FRAME_BYTES: usize = 8 + 8 + 8 * PREEMPT_STUB_SAVED.len() + VECTOR_BYTES as usize + 8;

/// The interrupted goroutine's registers, as the signal frame holds them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interrupted {
    /// The general registers by hardware number (rax = 0 ... r15 = 15).
    pub gpr: [u64; 16],
    pub rflags: u64,
    /// xmm0-xmm15, each as its low and high 64 bits.
    pub xmm: [[u64; 2]; 16],
}

/// Writes the frame `preempt_stub` writes below `regs.gpr[RSP]` and fills
/// `ctx` as the stub's `rt_call` does, so that a `leave_handler` jump then
/// hands the goroutine to the scheduler with the `PreemptStub` request.
///
/// # Safety
///
/// The [`FRAME_BYTES`] below `regs.gpr[RSP]` must be writable memory that
/// nothing else uses: the goroutine's own free stack (JIT code keeps no red
/// zone, and the handler's decision checked the room), or a test's buffer.
pub unsafe fn write_frame(
    ctx: &mut GoroutineContext,
    regs: &Interrupted,
    resume_pc: u64,
    stub_return: u64,
) {
    let mut at = regs.gpr[RSP as usize] as *mut u64;
    let mut push = |w: u64| {
        // SAFETY: the caller's contract: FRAME_BYTES of free stack, which
        // exactly this many pushes fill.
        unsafe {
            at = at.sub(1);
            at.write(w);
        }
    };
    push(resume_pc);
    push(regs.rflags);
    for r in PREEMPT_STUB_SAVED.iter() {
        push(regs.gpr[usize::from(r)]);
    }
    // `movdqu [rsp + 16 * x], xmm{x}`: xmm0 lowest, each low half first.
    for x in regs.xmm.iter().rev() {
        push(x[1]);
        push(x[0]);
    }
    push(stub_return);
    ctx.sp = at as u64;
    for r in RUNTIME_SAVED.iter() {
        ctx.saved[usize::from(r)] = regs.gpr[usize::from(r)];
    }
    ctx.request = RuntimeOp::PreemptStub.request(0);
}

#[cfg(test)]
mod tests {
    use super::super::{stubs::RESUME_FROM_CTX_SP, CTX};
    use super::*;

    #[test]
    fn the_frame_is_the_stubs() {
        let mut stack = vec![0u64; 128];
        let top = stack.as_mut_ptr_range().end as u64;
        let mut regs = Interrupted {
            rflags: 0x246,
            ..Interrupted::default()
        };
        for (i, r) in regs.gpr.iter_mut().enumerate() {
            *r = 0x1000 + i as u64;
        }
        regs.gpr[usize::from(RSP)] = top;
        for (i, x) in regs.xmm.iter_mut().enumerate() {
            *x = [0x2000 + i as u64, 0x3000 + i as u64];
        }
        let mut ctx = GoroutineContext::new();
        // SAFETY: the frame goes into `stack`, which has room for it.
        unsafe { write_frame(&mut ctx, &regs, 0xdead, 0xbeef) };
        assert_eq!(top - ctx.sp, FRAME_BYTES as u64);
        let word = |off: usize| stack[(ctx.sp as usize + off - stack.as_ptr() as usize) / 8];
        // Where the runtime reads the resume pc of a goroutine in the stub.
        assert_eq!(word(RESUME_FROM_CTX_SP), 0xdead);
        assert_eq!(word(RESUME_FROM_CTX_SP - 8), 0x246);
        assert_eq!(word(0), 0xbeef);
        // The stub's first push is the highest register slot; the vector
        // registers start right above the return address.
        let first = PREEMPT_STUB_SAVED.iter().next().unwrap();
        assert_eq!(word(RESUME_FROM_CTX_SP - 16), 0x1000 + u64::from(first));
        assert_eq!(word(8), 0x2000);
        assert_eq!(word(16), 0x3000);
        assert_eq!(word(8 + 16 * 15 + 8), 0x300f);
        assert!(!PREEMPT_STUB_SAVED.contains(CTX) && !PREEMPT_STUB_SAVED.contains(RSP));
        for r in RUNTIME_SAVED.iter() {
            assert_eq!(ctx.saved[usize::from(r)], 0x1000 + u64::from(r));
        }
        assert_eq!(ctx.request, RuntimeOp::PreemptStub.request(0));
    }
}
