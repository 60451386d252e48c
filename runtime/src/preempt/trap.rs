//! `--preempt trap`: the fault handler for armed poll pages.
//!
//! A back-edge loads a word through the goroutine's poll-page pointer
//! (`mov r11, [r11]` on x86-64, `ldr xzr, [x16]` on aarch64). Armed, the
//! pointer names a page without access (or the global page is
//! protected), and the load faults. The handler, for `SIGSEGV` (and
//! `SIGBUS`, which some kernels raise for the same access):
//!
//! 1. the fault address is in one of the poll pages, the thread is a
//!    worker running a JIT goroutine, and the PC is a poll site of the
//!    compiler's table: redirect into the preemption stub, with the
//!    instruction after the load as the resume address (the load has no
//!    effect: its destination is a scratch register or the zero register);
//! 2. anything else is not ours: it goes to the handler installed before
//!    (Rust's stack-overflow reporter, a debugger's, or the default
//!    action, which ends the process with the signal as it would have).
//!
//! Async-signal-safe: atomics, table lookups by binary search, and the
//! same `redirect` the preemption signal's handler uses. The pages are the
//! process's for its whole life: a goroutine of a run that has ended may
//! still name one.

use std::sync::OnceLock;

use preempt_signals::handler::{self, Previous};
use preempt_signals::MachineContext;

use super::arm::TrapPages;
use super::signal::{current, redirect};

static PREV_SEGV: OnceLock<Previous> = OnceLock::new();
static PREV_BUS: OnceLock<Previous> = OnceLock::new();

/// A redirect from a poll site cannot be declined and retried (the load
/// would fault again at once), so the stub's room below SP must be there
/// already: the stack guard every function entry checks lies further up.
const _: () = assert!(
    crate::sched::stack::STACK_RESERVE >= preempt_jit::abi::ASYNC_STUB_STACK,
    "the stack reserve holds the preemption stub's frame"
);

/// Installs the fault handler for the poll pages (idempotent; the pages
/// are mapped first, [`TrapPages::get`]).
pub fn install() -> std::io::Result<()> {
    TrapPages::get()?;
    for (signo, prev) in [(libc::SIGSEGV, &PREV_SEGV), (libc::SIGBUS, &PREV_BUS)] {
        if prev.get().is_none() {
            let before = handler::query(signo)?;
            if before.handler() == on_fault as *const () as usize {
                continue;
            }
            let _ = prev.set(before);
        }
        handler::install(signo, on_fault)?;
    }
    Ok(())
}

/// Whether the runtime's fault handler is the one installed for
/// `SIGSEGV` (foreign code may have replaced it).
pub fn installed() -> bool {
    handler::current_handler(libc::SIGSEGV).is_ok_and(|h| h == on_fault as *const () as usize)
}

extern "C" fn on_fault(signo: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: errno is thread-local; the handler must leave it as found.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel's arguments for this delivery.
    if !unsafe { handle(info, uc) } {
        let prev = if signo == libc::SIGBUS {
            PREV_BUS.get()
        } else {
            PREV_SEGV.get()
        };
        if let Some(p) = prev {
            // SAFETY: called from the handler with the arguments it got.
            unsafe { p.forward(signo, info, uc) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Redirects a poll-page fault; false if the fault is not one.
///
/// # Safety
///
/// `info` and `uc` are the kernel's for this delivery, on this thread.
unsafe fn handle(info: *mut libc::siginfo_t, uc: *mut libc::c_void) -> bool {
    if info.is_null() || uc.is_null() {
        return false;
    }
    // SAFETY: a fault's siginfo carries the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    if !TrapPages::mapped().is_some_and(|p| p.contains(addr)) {
        return false;
    }
    let Some(m) = current() else {
        return false;
    };
    let Some(shared) = m.shared() else {
        return false;
    };
    // SAFETY: uc is the kernel's ucontext_t for this delivery.
    let mut mc = unsafe { MachineContext::from_raw(uc) };
    let pc = mc.pc();
    let Some(site) = shared.tables().poll_site_at(pc) else {
        return false;
    };
    if let Some(g) = m.running() {
        g.redirected_at.store(
            crate::sched::monotonic_nanos(),
            std::sync::atomic::Ordering::Release,
        );
    }
    // SAFETY: a back-edge is outside every unsafe region and the frame is
    // complete; the function's entry check keeps SP above the stack's
    // guard, which leaves the stub its room (asserted at compile time).
    unsafe { redirect(shared, m, &mut mc, pc + site.len) };
    true
}
