//! aarch64 machine context.
//!
//! `push_call(target, resume)` makes the thread, when the handler returns,
//! enter `target` as if `bl target` had been executed at `resume`: the
//! interrupted LR and FP are saved in a 16-byte slot below SP (keeping SP
//! 16-byte aligned), LR is set to `resume` and PC to `target`. The stub at
//! `target` restores LR and FP from that slot before returning.

/// The interrupted thread's registers, borrowed from the `ucontext_t` the
/// kernel passed to a `SA_SIGINFO` handler.
#[derive(Debug)]
pub struct MachineContext<'a> {
    uc: &'a mut libc::ucontext_t,
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
}
