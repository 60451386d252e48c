//! x86-64 machine context.
//!
//! `push_call(target, resume)` makes the thread, when the handler returns,
//! behave as if the interrupted instruction had been `call target` with
//! `resume` as its return address: it pushes `resume` on the interrupted
//! stack and sets RIP to `target`.

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

    fn greg(&self, i: libc::c_int) -> u64 {
        self.uc.uc_mcontext.gregs[i as usize] as u64
    }

    fn set_greg(&mut self, i: libc::c_int, v: u64) {
        self.uc.uc_mcontext.gregs[i as usize] = v as i64;
    }

    /// The address of the next instruction the thread will execute.
    pub fn pc(&self) -> usize {
        self.greg(libc::REG_RIP) as usize
    }

    pub fn sp(&self) -> usize {
        self.greg(libc::REG_RSP) as usize
    }

    /// The frame pointer (`rbp`).
    pub fn fp(&self) -> usize {
        self.greg(libc::REG_RBP) as usize
    }

    pub fn set_pc(&mut self, pc: usize) {
        self.set_greg(libc::REG_RIP, pc as u64);
    }

    /// Redirects the thread into `target` as if it had called it from
    /// `resume`.
    ///
    /// # Safety
    ///
    /// The 8 bytes below the interrupted SP must be writable stack that the
    /// interrupted code does not use (no red zone is used by JIT code).
    pub unsafe fn push_call(&mut self, target: usize, resume: usize) {
        let sp = self.sp() - 8;
        // SAFETY: the caller guarantees the slot below SP is free stack.
        unsafe { (sp as *mut u64).write(resume as u64) };
        self.set_greg(libc::REG_RSP, sp as u64);
        self.set_pc(target);
    }

    /// EFLAGS.
    pub fn flags(&self) -> u64 {
        self.greg(libc::REG_EFL)
    }

    pub fn set_flags(&mut self, flags: u64) {
        self.set_greg(libc::REG_EFL, flags);
    }
}
