//! aarch64 machine context.
//!
//! `push_call(target, resume)` makes the thread, when the handler returns,
//! enter `target` as if `bl target` had been executed at `resume`: the
//! interrupted LR and FP are saved in a 16-byte slot below SP (keeping SP
//! 16-byte aligned), LR is set to `resume` and PC to `target`. The stub at
//! `target` restores LR and FP from that slot before returning.
//!
//! There is no user-mode single-step: PSTATE.SS only takes effect with
//! MDSCR_EL1.SS, which only the kernel (for ptrace) sets. The single-step
//! names exist so that shared code compiles; [`SINGLE_STEP`] is false and
//! they do nothing.

/// The interrupted thread's registers, borrowed from the `ucontext_t` the
/// kernel passed to a `SA_SIGINFO` handler.
#[derive(Debug)]
pub struct MachineContext<'a> {
    pub(super) uc: &'a mut libc::ucontext_t,
}

impl<'a> MachineContext<'a> {
    /// # Safety
    ///
    /// `uc` must be the third argument of a `SA_SIGINFO` handler (a valid,
    /// writable `ucontext_t` for the duration of the handler).
    pub unsafe fn from_raw(uc: *mut libc::c_void) -> MachineContext<'a> {
        // SAFETY: the caller passes the kernel's ucontext_t.
        let uc = unsafe { &mut *uc.cast::<libc::ucontext_t>() };
        MachineContext { uc }
    }

    /// The address of the next instruction the thread will execute.
    pub fn pc(&self) -> usize {
        self.uc.uc_mcontext.pc as usize
    }

    pub fn sp(&self) -> usize {
        self.uc.uc_mcontext.sp as usize
    }

    /// The frame pointer (`x29`).
    pub fn fp(&self) -> usize {
        self.uc.uc_mcontext.regs[29] as usize
    }

    /// An x86-64 thread's registers: none here.
    pub fn x86_64_state(&self) -> Option<super::X86State> {
        None
    }

    pub fn set_pc(&mut self, pc: usize) {
        self.uc.uc_mcontext.pc = pc as u64;
    }

    /// Redirects the thread into `target` as if it had branched-and-linked
    /// from `resume`.
    ///
    /// # Safety
    ///
    /// The 16 bytes below the interrupted SP must be writable stack that
    /// the interrupted code does not use.
    pub unsafe fn push_call(&mut self, target: usize, resume: usize) {
        let m = &mut self.uc.uc_mcontext;
        let sp = (m.sp as usize - 16) as *mut u64;
        // SAFETY: the caller guarantees the slot below SP is free stack.
        unsafe {
            sp.write(m.regs[29]);
            sp.add(1).write(m.regs[30]);
        }
        m.sp = sp as u64;
        m.regs[30] = resume as u64;
        m.pc = target as u64;
    }

    /// NZCV and the rest of PSTATE.
    pub fn flags(&self) -> u64 {
        self.uc.uc_mcontext.pstate
    }

    pub fn set_flags(&mut self, flags: u64) {
        self.uc.uc_mcontext.pstate = flags;
    }

    /// The condition flags N, Z and C (not V): inverting them inverts
    /// what a compare left for its branch or `cset` on equality, signed
    /// order (N xor V) and unsigned order.
    pub const CONDITION_FLAGS: u64 = 0xe000_0000;

    /// Always false: see the module header.
    pub fn single_stepping(&self) -> bool {
        false
    }

    /// Does nothing: see the module header.
    pub fn set_single_step(&mut self, _on: bool) {}
}

/// No in-process single-stepping on aarch64 (see the module header).
pub const SINGLE_STEP: bool = false;

/// Calls `target(arg)`, an `extern "C" fn(usize) -> u64`, without stepping
/// (there is none here).
///
/// # Safety
///
/// `target` must be the address of a function with that signature.
pub unsafe fn call_single_stepped(target: usize, arg: usize) -> u64 {
    // SAFETY: the caller guarantees the signature.
    let f = unsafe { std::mem::transmute::<usize, extern "C" fn(usize) -> u64>(target) };
    f(arg)
}
