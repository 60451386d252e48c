//! x86-64 machine context.
//!
//! `push_call(target, resume)` makes the thread, when the handler returns,
//! behave as if the interrupted instruction had been `call target` with
//! `resume` as its return address: it pushes `resume` on the interrupted
//! stack and sets RIP to `target`.
//!
//! Single-stepping: with EFLAGS.TF (bit 8) set, the processor raises a
//! debug exception after each instruction, which Linux delivers as
//! `SIGTRAP` with `si_code == TRAP_TRACE`. The kernel clears TF while the
//! handler runs and restores the interrupted flags, TF included, when it
//! returns, so a handler that leaves TF set in the context sees the next
//! instruction too, and one that clears it ends the stepping.
//! [`call_single_stepped`] starts it from Rust: the first trap comes with
//! the PC at the first instruction of the function called.

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

    /// General register `n` by its hardware number (rax = 0, rcx, rdx,
    /// rbx, rsp, rbp, rsi, rdi, r8 ... r15 = 15).
    fn gpr(&self, n: u8) -> u64 {
        const BY_NUMBER: [libc::c_int; 16] = [
            libc::REG_RAX,
            libc::REG_RCX,
            libc::REG_RDX,
            libc::REG_RBX,
            libc::REG_RSP,
            libc::REG_RBP,
            libc::REG_RSI,
            libc::REG_RDI,
            libc::REG_R8,
            libc::REG_R9,
            libc::REG_R10,
            libc::REG_R11,
            libc::REG_R12,
            libc::REG_R13,
            libc::REG_R14,
            libc::REG_R15,
        ];
        BY_NUMBER.get(usize::from(n)).map_or(0, |&i| self.greg(i))
    }

    /// xmm register `i` (0-15) as its low and high 64 bits, from the
    /// frame's saved FPU state (all zero if the frame has none).
    fn xmm(&self, i: usize) -> [u64; 2] {
        let fp = self.uc.uc_mcontext.fpregs;
        if fp.is_null() {
            return [0, 0];
        }
        // SAFETY: the kernel points fpregs at the FPU state it saved in
        // this signal frame, valid while the handler runs.
        let Some(x) = (unsafe { &*fp })._xmm.get(i) else {
            return [0, 0];
        };
        let e = x.element.map(u64::from);
        [e[0] | e[1] << 32, e[2] | e[3] << 32]
    }

    /// Every register a handler needs to stop the thread itself.
    pub fn x86_64_state(&self) -> Option<super::X86State> {
        let mut st = super::X86State {
            rflags: self.flags(),
            ..super::X86State::default()
        };
        for (n, r) in (0u8..).zip(st.gpr.iter_mut()) {
            *r = self.gpr(n);
        }
        for (i, x) in st.xmm.iter_mut().enumerate() {
            *x = self.xmm(i);
        }
        Some(st)
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

    /// The carry, zero and sign flags (not overflow): inverting them
    /// inverts what a compare left for its branch or `setcc` on equality,
    /// signed order (sign xor overflow) and unsigned order.
    pub const CONDITION_FLAGS: u64 = 0xc1;

    /// Whether the thread traps after its next instruction (EFLAGS.TF).
    pub fn single_stepping(&self) -> bool {
        self.flags() & TRAP_FLAG != 0
    }

    /// Sets or clears EFLAGS.TF in the flags the thread resumes with.
    pub fn set_single_step(&mut self, on: bool) {
        let f = self.flags() & !TRAP_FLAG;
        self.set_flags(if on { f | TRAP_FLAG } else { f });
    }
}

/// In-process single-stepping works here (see the module header).
pub const SINGLE_STEP: bool = true;

/// EFLAGS.TF.
const TRAP_FLAG: u64 = 1 << 8;

/// Calls `target(arg)` (an `extern "C" fn(usize) -> u64`) with the trap
/// flag set: the first `SIGTRAP` arrives with the PC at `target`'s first
/// instruction, and one follows every instruction until a handler clears
/// TF. Without a `SIGTRAP` handler that does so, the process dies of the
/// first trap.
///
/// # Safety
///
/// `target` must be the address of a function with that signature, and
/// whatever it runs must be fit to be stepped: a `SIGTRAP` handler that
/// knows what to do with each trap is installed.
pub unsafe fn call_single_stepped(target: usize, arg: usize) -> u64 {
    let result: u64;
    // SAFETY: the caller guarantees `target` is a C-ABI function taking
    // one word and returning one; pushfq/popfq leave the stack as found
    // (Rust lets an asm block without `nostack` use the stack below SP),
    // and TF changes nothing but when the processor traps.
    unsafe {
        std::arch::asm!(
            "pushfq",
            "or qword ptr [rsp], 0x100",
            "popfq",
            "call {target}",
            target = in(reg) target,
            inout("rdi") arg => _,
            lateout("rax") result,
            clobber_abi("C"),
        );
    }
    result
}
