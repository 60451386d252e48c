//! The interrupted thread's registers, as a signal handler sees them.
//!
//! One file per architecture exports the same names; this module picks
//! one, and holds what is the same on both (the signal mask). They are
//! the only code in the workspace that reads or writes a `ucontext_t`, or
//! the processor's trap flag ([`call_single_stepped`], [`SINGLE_STEP`]).

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{call_single_stepped, MachineContext, SINGLE_STEP};

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::{call_single_stepped, MachineContext, SINGLE_STEP};

/// An interrupted x86-64 thread's registers, as a handler that stops the
/// thread itself needs them ([`MachineContext::x86_64_state`]; `None` on
/// other architectures).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct X86State {
    /// The general registers by hardware number (rax = 0 ... r15 = 15).
    pub gpr: [u64; 16],
    pub rflags: u64,
    /// xmm0-xmm15, each as its low and high 64 bits.
    pub xmm: [[u64; 2]; 16],
}

/// The signal mask, which sits at the same name in both architectures'
/// `ucontext_t`.
impl MachineContext<'_> {
    /// Sets the thread's signal mask to the interrupted code's, as
    /// `sigreturn` would: for a handler that leaves without returning.
    /// Async-signal-safe.
    pub fn restore_mask(&self) {
        // SAFETY: uc_sigmask is a valid sigset_t in the kernel's frame;
        // pthread_sigmask is async-signal-safe.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.uc.uc_sigmask, std::ptr::null_mut());
        }
    }

    /// Adds `signo` to the mask `sigreturn` puts back: the thread leaves
    /// the handler with the signal blocked. Async-signal-safe.
    pub fn block_on_return(&mut self, signo: libc::c_int) {
        // SAFETY: uc_sigmask is a valid sigset_t in the kernel's frame;
        // sigaddset only writes it.
        unsafe { libc::sigaddset(&mut self.uc.uc_sigmask, signo) };
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("preempt-signals supports x86_64 and aarch64 only");
