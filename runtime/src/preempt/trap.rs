//! `--preempt trap`: every back-edge loads a word through the goroutine's
//! poll-page pointer; a request makes that load fault, and the fault
//! handler sends the goroutine into the preemption stub.
//!
//! **What it is.** A safepoint poll that costs one load and no branch:
//! HotSpot's polling page, and with `--trap-arm page` (the default) its
//! thread-local handshakes (JEP 312): each goroutine's `ctx.poll_page`
//! names a readable word, and a request swaps it, for that goroutine
//! alone, to a page mapped without access. With `--trap-arm mprotect`
//! every goroutine's pointer names one global page and a request
//! protects that page (HotSpot before JEP 312): every goroutine in a loop
//! faults, and those not asked to stop go on at once.
//!
//! **What it costs.** In the loop: one load per back-edge
//! (`mov r11, [r11]` on x86-64, `ldr xzr, [x16]` on aarch64). A stop: a
//! store of the pointer (page), or an `mprotect` and the TLB shoot-down on
//! every CPU the process ran on (mprotect); then a fault, the kernel's
//! signal delivery and the handler, more than a poll's branch.
//!
//! **What it cannot stop.** Code without a back-edge (straight-line code
//! reaches a function entry, whose stack check is the cooperative point);
//! foreign code and runtime calls (a runtime call honours the request when
//! it returns).
//!
//! **The fault.** The handler, for `SIGSEGV` (and `SIGBUS`, which some
//! kernels raise for the same access), asks [`decide`] about the fault
//! (the fault address is in a poll page, the thread runs a JIT goroutine,
//! the PC is a poll site of the compiler's table); on a redirect the
//! goroutine resumes after the load (the load has no effect: its
//! destination is a scratch register or the zero register). Anything else
//! goes to the handler installed before (Rust's stack-overflow reporter, a
//! debugger's, or the default action, which ends the process with the
//! signal as it would have). Async-signal-safe: atomics, table lookups by
//! binary search, and the same redirect the preemption signal's handler
//! uses. The pages are the process's for its whole life: a goroutine of a
//! run that has ended may still name one.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use preempt_jit::abi::{GoroutineContext, POLL_PAGE_READY};
use preempt_jit::code::memory::page_size;
use preempt_signals::handler::Chained;
use preempt_signals::MachineContext;

use super::decide::{decide, passes_on, Decision, Thread, Trigger, UnsafePoints, NO_TABLES};
use super::worker::{current, redirect};
use crate::sync::lock;
use crate::trace::HandlerTrigger;

/// How `--preempt trap` arms a goroutine.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum TrapArm {
    /// Swap the goroutine's poll-page pointer to a page that faults.
    #[default]
    Page,
    /// Protect the one global poll page every goroutine loads from.
    Mprotect,
}

impl TrapArm {
    pub fn name(self) -> &'static str {
        match self {
            TrapArm::Page => "page",
            TrapArm::Mprotect => "mprotect",
        }
    }
}

/// The mechanism of a `--preempt trap` run.
#[derive(Debug, Clone, Copy)]
pub struct Trap {
    pub arm: TrapArm,
    pub pages: &'static TrapPages,
}

impl Trap {
    /// Maps the process's pages (the first run of the process does).
    pub fn new(arm: TrapArm) -> io::Result<Trap> {
        Ok(Trap {
            arm,
            pages: TrapPages::get()?,
        })
    }

    /// What a fresh goroutine's `ctx.poll_page` points at.
    pub fn initial_poll_page(&self) -> u64 {
        match self.arm {
            TrapArm::Mprotect => self.pages.global as u64,
            TrapArm::Page => &POLL_PAGE_READY as *const AtomicU64 as u64,
        }
    }

    /// Applies the effect; `first` is whether this owner has not applied
    /// it yet (the global page is counted once per goroutine). Returns
    /// whether anything was done.
    pub(super) fn apply(&self, ctx: &GoroutineContext, first: bool, mark: impl FnOnce()) -> bool {
        match self.arm {
            TrapArm::Page => {
                mark();
                ctx.poll_page
                    .store(self.pages.armed as u64, Ordering::Release);
            }
            TrapArm::Mprotect if first => {
                mark();
                self.pages.protect_global(true);
            }
            TrapArm::Mprotect => return false,
        }
        true
    }

    /// Undoes [`Trap::apply`].
    pub(super) fn unapply(&self, ctx: &GoroutineContext) {
        match self.arm {
            TrapArm::Page => ctx.poll_page.store(
                &POLL_PAGE_READY as *const AtomicU64 as u64,
                Ordering::Release,
            ),
            TrapArm::Mprotect => self.pages.protect_global(false),
        }
    }

    /// For the hang diagnosis.
    pub(super) fn describe(&self, claimed: &str, ctx: &GoroutineContext) -> String {
        match self.arm {
            TrapArm::Page => format!(
                "{claimed}; its poll-page pointer names {}",
                if ctx.poll_page.load(Ordering::Acquire) == self.pages.armed as u64 {
                    "the page without access: its next back-edge faults"
                } else {
                    "a readable word"
                }
            ),
            TrapArm::Mprotect => {
                let n = *lock(&self.pages.global_armed);
                format!(
                    "{claimed}; the global poll page is {}",
                    if n > 0 {
                        format!("protected ({n} goroutine(s) armed): every looping goroutine's next back-edge faults")
                    } else {
                        "readable".to_string()
                    }
                )
            }
        }
    }
}

/// `--preempt trap`'s pages: the process's, shared by every run in it (a
/// goroutine may name one until the process ends, and the fault handler
/// knows one pair).
#[derive(Debug)]
pub struct TrapPages {
    /// A page without access: what an armed goroutine's pointer names.
    pub armed: usize,
    /// The global page (`--trap-arm mprotect`): readable, or protected
    /// while any goroutine is armed.
    pub global: usize,
    /// How many goroutines are armed through the global page.
    global_armed: Mutex<u64>,
}

/// Set once, read without a lock (the fault handler reads it).
static TRAP_PAGES: OnceLock<TrapPages> = OnceLock::new();
/// Serialises the first mapping of the pages.
static TRAP_PAGES_INIT: Mutex<()> = Mutex::new(());

impl TrapPages {
    /// The process's poll pages, mapped by the first call.
    pub fn get() -> io::Result<&'static TrapPages> {
        if let Some(p) = TRAP_PAGES.get() {
            return Ok(p);
        }
        let _init = lock(&TRAP_PAGES_INIT);
        if let Some(p) = TRAP_PAGES.get() {
            return Ok(p);
        }
        let pages = TrapPages {
            armed: map_page(libc::PROT_NONE)?,
            global: map_page(libc::PROT_READ)?,
            global_armed: Mutex::new(0),
        };
        Ok(TRAP_PAGES.get_or_init(|| pages))
    }

    /// The pages, if a trap-mode run mapped them. Async-signal-safe.
    pub fn mapped() -> Option<&'static TrapPages> {
        TRAP_PAGES.get()
    }

    /// Whether `addr` lies in one of the poll pages.
    pub fn contains(&self, addr: usize) -> bool {
        let page = page_size();
        (self.armed..self.armed + page).contains(&addr)
            || (self.global..self.global + page).contains(&addr)
    }

    fn protect_global(&self, arm: bool) {
        let mut n = lock(&self.global_armed);
        let before = *n;
        *n = if arm {
            before + 1
        } else {
            before.saturating_sub(1)
        };
        let prot = match (before, *n) {
            (0, 1) => libc::PROT_NONE,
            (1, 0) => libc::PROT_READ,
            _ => return,
        };
        // SAFETY: the global page is ours (mapped in `new`), one page long;
        // changing its protection affects only loads from it.
        let r = unsafe { libc::mprotect(self.global as *mut libc::c_void, page_size(), prot) };
        debug_assert_eq!(r, 0, "mprotect of the poll page");
    }
}

fn map_page(prot: libc::c_int) -> io::Result<usize> {
    // SAFETY: a fresh private anonymous page; the runtime keeps it for the
    // life of the process (goroutines may point at it until the end).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page_size(),
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p as usize)
}

static FAULT: Chained = Chained::new(on_fault);

/// A redirect from a poll site cannot be declined and retried (the load
/// would fault again at once), so the stub's room below SP must be there
/// already: the stack guard every function entry checks lies further up.
const _: () = assert!(
    crate::stack::STACK_RESERVE >= preempt_jit::abi::PREEMPT_STUB_STACK,
    "the stack reserve holds the preemption stub's frame"
);

/// Installs the fault handler for the poll pages (idempotent).
pub fn install() -> io::Result<()> {
    FAULT.install(libc::SIGSEGV)?;
    FAULT.install(libc::SIGBUS)
}

/// Whether the runtime's fault handler is the one installed for
/// `SIGSEGV` (foreign code may have replaced it).
pub fn installed() -> bool {
    FAULT.is_installed(libc::SIGSEGV)
}

extern "C" fn on_fault(signo: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    Chained::enter(|| {
        // SAFETY: the kernel's arguments for this delivery.
        if unsafe { handle(info, uc) } {
            // SAFETY: called from the handler with the arguments it got.
            unsafe { FAULT.forward(signo, info, uc) };
        }
    })
}

/// Redirects a poll-page fault, as [`decide`] says; returns whether the
/// fault passes on to the previous handler (it is not a poll's).
///
/// # Safety
///
/// `info` and `uc` are the kernel's for this delivery, on this thread.
unsafe fn handle(info: *mut libc::siginfo_t, uc: *mut libc::c_void) -> bool {
    if info.is_null() || uc.is_null() {
        return true;
    }
    // SAFETY: a fault's siginfo carries the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let trigger = Trigger::PollFault {
        in_poll_page: TrapPages::mapped().is_some_and(|p| p.contains(addr)),
    };
    let m = current();
    let shared = m.and_then(|m| m.shared());
    // SAFETY: uc is the kernel's ucontext_t for this delivery.
    let mut mc = unsafe { MachineContext::from_raw(uc) };
    let pc = mc.pc();
    let d = decide(
        trigger,
        pc,
        mc.sp(),
        shared.map_or(&NO_TABLES, |s| s.tables()),
        m.map_or(Thread::NotAnM, |m| m.thread()),
        shared.map_or(UnsafePoints::Honour, |s| s.points()),
    );
    if let (Some(m), Some(shared)) = (m, shared) {
        if shared.records() {
            let g = m.running().map_or(0, |g| g.id);
            let now = crate::stats::monotonic_ns();
            m.log.record(now, g, HandlerTrigger::Fault, d, pc);
        }
    }
    if let (Decision::Redirect { resume_pc }, Some(m), Some(shared)) = (d, m, shared) {
        if let Some(g) = m.running() {
            g.redirected_at
                .store(crate::stats::monotonic_ns(), Ordering::Release);
        }
        // SAFETY: decide answered Redirect for this context.
        unsafe { redirect(shared, m, &mut mc, resume_pc) };
    }
    passes_on(trigger, d)
}
