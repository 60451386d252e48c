//! Installing, chaining and restoring signal handlers; alternate signal
//! stacks; thread-directed signals.
//!
//! Handlers installed here are `extern "C"` functions that must stay
//! async-signal-safe: no allocation, no locks, no panics, no formatting.
//! Every handler is installed with:
//!
//! - `SA_SIGINFO`: the handler needs the `ucontext_t` (the interrupted PC)
//!   and `si_code` (to tell a `tgkill` from other senders);
//! - `SA_ONSTACK`: goroutine stacks are small and end in a guard page; the
//!   kernel's signal frame (over 3 KiB with AVX-512 state) goes on the
//!   thread's alternate stack instead;
//! - `SA_RESTART`: a worker blocked in a system call when the signal
//!   arrives resumes the call instead of failing with `EINTR`.

use std::io;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;

/// The signature of a `SA_SIGINFO` handler.
pub type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// A handler that was installed before ours, to chain to and to restore.
#[derive(Clone, Copy)]
pub struct Previous {
    signo: libc::c_int,
    action: libc::sigaction,
}

impl std::fmt::Debug for Previous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Previous")
            .field("signo", &self.signo)
            .field("handler", &self.action.sa_sigaction)
            .finish()
    }
}

impl Previous {
    /// The handler address, or `SIG_DFL` / `SIG_IGN`.
    pub fn handler(&self) -> usize {
        self.action.sa_sigaction
    }

    /// Whether the previous disposition was "ignore".
    pub fn is_ignore(&self) -> bool {
        self.action.sa_sigaction == libc::SIG_IGN
    }

    /// Passes a signal that is not ours to whoever had it before.
    /// Async-signal-safe.
    ///
    /// # Safety
    ///
    /// Must be called from a signal handler with the arguments it received.
    pub unsafe fn forward(
        &self,
        signo: libc::c_int,
        info: *mut libc::siginfo_t,
        uc: *mut libc::c_void,
    ) {
        let h = self.action.sa_sigaction;
        if h == libc::SIG_IGN {
            return;
        }
        if h == libc::SIG_DFL {
            // Re-raise with the default action (which may end the process,
            // as the signal would have without us).
            // SAFETY: restoring a disposition and raising are async-signal-safe.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signo, &dfl, std::ptr::null_mut());
                libc::raise(signo);
            }
            return;
        }
        if self.action.sa_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous handler was installed as a SA_SIGINFO
            // handler, so this is its signature.
            let f: Handler = unsafe { std::mem::transmute::<usize, Handler>(h) };
            f(signo, info, uc);
        } else {
            // SAFETY: a plain handler takes the signal number only.
            let f: extern "C" fn(libc::c_int) =
                unsafe { std::mem::transmute::<usize, extern "C" fn(libc::c_int)>(h) };
            f(signo);
        }
    }
}

/// Installs `handler` for `signo` and returns what was there before.
pub fn install(signo: libc::c_int, handler: Handler) -> io::Result<Previous> {
    install_with(signo, handler, 0)
}

/// Installs `handler` for `signo` with `flags` besides `SA_SIGINFO`,
/// `SA_ONSTACK` and `SA_RESTART`, and an empty `sa_mask`.
fn install_with(signo: libc::c_int, handler: Handler, flags: libc::c_int) -> io::Result<Previous> {
    // SAFETY: a zeroed sigaction is a valid starting point; the mask is
    // emptied explicitly.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART | flags;
    // SAFETY: sa_mask is a valid sigset_t inside `action`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::sigaction(signo, &action, old.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Previous {
        signo,
        // SAFETY: sigaction succeeded and filled `old`.
        action: unsafe { old.assume_init() },
    })
}

/// The disposition installed for `signo` now, to forward to or restore
/// later.
pub fn query(signo: libc::c_int) -> io::Result<Previous> {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null new action only queries.
    if unsafe { libc::sigaction(signo, std::ptr::null(), old.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Previous {
        signo,
        // SAFETY: filled by the successful call.
        action: unsafe { old.assume_init() },
    })
}

/// Puts a previous handler back.
pub fn restore(previous: &Previous) -> io::Result<()> {
    // SAFETY: `previous.action` came from the kernel.
    if unsafe { libc::sigaction(previous.signo, &previous.action, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Signal numbers a [`Chained`] handler can be installed for (1..=64 on
/// Linux: the standard and the real-time signals).
pub const NSIG: usize = 65;

/// A handler chained in front of whatever each signal had before: the one
/// way every handler of the workspace is installed.
///
/// - **Installed once per signal.** The first [`Chained::install`] for a
///   signal records the disposition it replaces; installing again (after
///   someone else replaced ours, say) keeps that record, so a signal that
///   is not ours always goes where it went before the runtime came.
/// - **Forwarded.** [`Chained::forward`] passes a signal the handler does
///   not want to that disposition: a previous handler is called with the
///   same arguments, `SIG_DFL` is re-raised with the default action, and
///   `SIG_IGN` drops it.
/// - **errno kept.** [`Chained::enter`] runs the handler's body with the
///   interrupted thread's `errno` saved and put back.
///
/// Everything a handler calls here is async-signal-safe.
pub struct Chained {
    handler: Handler,
    previous: [OnceLock<Previous>; NSIG],
}

impl std::fmt::Debug for Chained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chained")
            .field("handler", &(self.handler as usize))
            .finish()
    }
}

impl Chained {
    /// `handler`, not yet installed for any signal (for a `static`).
    pub const fn new(handler: Handler) -> Chained {
        Chained {
            handler,
            previous: [const { OnceLock::new() }; NSIG],
        }
    }

    /// Installs the handler for `signo`, recording what it replaces the
    /// first time. Idempotent.
    pub fn install(&self, signo: libc::c_int) -> io::Result<()> {
        self.install_flags(signo, 0)
    }

    /// [`Chained::install`] with `SA_NODEFER`: the signal is not blocked
    /// while the handler runs, so the mask in force inside it is the
    /// interrupted thread's own (`uc_sigmask`; `sa_mask` is empty), and a
    /// handler that leaves without returning has no mask to put back. The
    /// price: the same signal may interrupt the handler itself, which must
    /// then be safe to re-enter, and bound its own nesting.
    pub fn install_reentrant(&self, signo: libc::c_int) -> io::Result<()> {
        self.install_flags(signo, libc::SA_NODEFER)
    }

    fn install_flags(&self, signo: libc::c_int, flags: libc::c_int) -> io::Result<()> {
        let slot = self.slot(signo)?;
        if slot.get().is_none() {
            let before = query(signo)?;
            // Ours already (installed by another copy of this record):
            // nothing to record, forwarding to ourselves would recurse.
            if before.handler() != self.handler as usize {
                let _ = slot.set(before);
            }
        }
        install_with(signo, self.handler, flags)?;
        Ok(())
    }

    /// Whether this handler is the one installed for `signo` now (code
    /// outside the runtime may have replaced it).
    pub fn is_installed(&self, signo: libc::c_int) -> bool {
        current_handler(signo).is_ok_and(|h| h == self.handler as usize)
    }

    /// The disposition the first install replaced, if any.
    pub fn previous(&self, signo: libc::c_int) -> Option<&Previous> {
        self.slot(signo).ok()?.get()
    }

    /// Passes a signal that is not the handler's to the disposition it
    /// replaced. Async-signal-safe.
    ///
    /// # Safety
    ///
    /// Must be called from the handler with the arguments it received.
    pub unsafe fn forward(
        &self,
        signo: libc::c_int,
        info: *mut libc::siginfo_t,
        uc: *mut libc::c_void,
    ) {
        if let Some(prev) = self.previous(signo) {
            // SAFETY: the caller's contract.
            unsafe { prev.forward(signo, info, uc) };
        }
    }

    /// Runs a handler's body `f`, leaving `errno` as the interrupted code
    /// had it. Async-signal-safe if `f` is.
    pub fn enter<R>(f: impl FnOnce() -> R) -> R {
        // SAFETY: errno is thread-local; reading and writing it is safe on
        // the thread that runs the handler.
        let errno = unsafe { *libc::__errno_location() };
        let r = f();
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
        r
    }

    /// [`Chained::enter`] for a handler installed by
    /// [`Chained::install_reentrant`], bounding its nesting: a handler
    /// that interrupted another on this thread returns with its signal
    /// added to its frame's mask, so the one it interrupted runs on with
    /// the signal blocked (a storm cannot stack handlers on the alternate
    /// stack), and that one's `sigreturn` puts the thread's mask back. A
    /// handler that leaves without returning calls
    /// [`Chained::leave_without_return`] to learn whether it must unblock
    /// the signal itself. Async-signal-safe if `f` is.
    ///
    /// The bound holds once the handler has counted itself: under
    /// emulation, where that takes long, a storm can still nest handlers
    /// before they do (see `install_reentrant`'s callers).
    ///
    /// # Safety
    ///
    /// `uc` is null or the kernel's context for the delivery being handled.
    pub unsafe fn enter_reentrant<R>(
        signo: libc::c_int,
        uc: *mut libc::c_void,
        f: impl FnOnce() -> R,
    ) -> R {
        Chained::enter(|| {
            let outer = NESTING.with(|n| nesting_depth(n.fetch_add(ONE_DEEPER, Relaxed)) == 0);
            let r = f();
            NESTING.with(|n| {
                if outer {
                    // This frame's sigreturn restores the thread's mask.
                    n.store(0, Relaxed);
                } else if uc.is_null() {
                    n.fetch_sub(ONE_DEEPER, Relaxed);
                } else {
                    // SAFETY: uc is the kernel's ucontext_t for this
                    // delivery (the function's contract).
                    unsafe { crate::MachineContext::from_raw(uc) }.block_on_return(signo);
                    let blocked = signo as u32 as u64;
                    let _ = n.fetch_update(Relaxed, Relaxed, |w| {
                        Some(((nesting_depth(w).saturating_sub(1) as u64) << 32) | blocked)
                    });
                }
            });
            r
        })
    }

    /// For a handler entered by [`Chained::enter_reentrant`] that leaves
    /// without returning: the next signal is not nested, and the signal a
    /// nested handler left blocked, if any, which the caller unblocks.
    /// Async-signal-safe.
    ///
    /// One atomic exchange, so that a nested handler cannot land between
    /// reading the word and clearing it: one that did (a read, then a
    /// store) blocked the signal on its return, had its note wiped by the
    /// store, and the hand-off left the thread with the signal blocked for
    /// good (the soak caught it about once in 1,000-2,000 runs of a
    /// program stopped every 20 us by its thread's timer).
    pub fn leave_without_return() -> Option<libc::c_int> {
        let word = NESTING.with(|n| n.swap(0, Relaxed));
        let blocked = word as u32 as libc::c_int;
        (blocked != 0).then_some(blocked)
    }

    fn slot(&self, signo: libc::c_int) -> io::Result<&OnceLock<Previous>> {
        usize::try_from(signo)
            .ok()
            .filter(|&s| s > 0)
            .and_then(|s| self.previous.get(s))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
    }
}

thread_local! {
    /// Handlers entered by [`Chained::enter_reentrant`] running on this
    /// thread (the high 32 bits), and the signal a nested one left blocked
    /// (the low 32 bits; 0: none). A handler runs between two instructions
    /// of the code it interrupts, so every change is one atomic
    /// read-modify-write of the word: a nested handler finds it whole and
    /// leaves it whole. Constant-initialised, with no destructor and no
    /// allocation, so a handler may touch it.
    static NESTING: AtomicU64 = const { AtomicU64::new(0) };
}

/// One more handler in [`NESTING`]'s count.
const ONE_DEEPER: u64 = 1 << 32;

/// How many handlers a [`NESTING`] word counts.
fn nesting_depth(word: u64) -> u32 {
    (word >> 32) as u32
}

/// The handler currently installed for `signo` (`SIG_DFL`, `SIG_IGN` or a
/// function address).
pub fn current_handler(signo: libc::c_int) -> io::Result<usize> {
    query(signo).map(|p| p.handler())
}

/// The calling thread's kernel thread id.
pub fn gettid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Sends `signo` to thread `tid` of this process. Async-signal-safe.
pub fn tgkill(tid: libc::pid_t, signo: libc::c_int) -> io::Result<()> {
    // SAFETY: tgkill takes plain integers.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signo) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An alternate signal stack for one thread, with a guard page below it.
/// Uninstalled and unmapped on drop (drop it on the thread it serves).
#[derive(Debug)]
pub struct AltStack {
    map: NonNull<u8>,
    map_len: usize,
}

impl AltStack {
    /// Bytes of usable alternate stack.
    pub const SIZE: usize = 64 * 1024;

    /// Maps an alternate stack and installs it for the calling thread.
    pub fn install() -> io::Result<AltStack> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let map_len = Self::SIZE + page;
        // SAFETY: a fresh private anonymous mapping, checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let alt = AltStack {
            map: NonNull::new(p.cast()).expect("mmap never returns null on success"),
            map_len,
        };
        // SAFETY: the lowest page of our mapping becomes the guard page.
        if unsafe { libc::mprotect(p, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let ss = libc::stack_t {
            // SAFETY: the usable part starts one page into the mapping.
            ss_sp: unsafe { p.cast::<u8>().add(page) }.cast(),
            ss_flags: 0,
            ss_size: Self::SIZE,
        };
        // SAFETY: `ss` describes memory that lives as long as `alt`.
        if unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(alt)
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let ss = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disables the alternate stack of this thread, then unmaps
        // it; the owner drops it on the thread it was installed for.
        unsafe {
            libc::sigaltstack(&ss, std::ptr::null_mut());
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    static BEFORE: AtomicU64 = AtomicU64::new(0);
    static OURS: AtomicU64 = AtomicU64::new(0);
    static CHAINED: Chained = Chained::new(ours);

    extern "C" fn before(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
        BEFORE.fetch_add(1, Ordering::SeqCst);
    }

    extern "C" fn ours(signo: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
        Chained::enter(|| {
            OURS.fetch_add(1, Ordering::SeqCst);
            // Clobbers errno, as a system call in a handler would.
            // SAFETY: errno is thread-local.
            unsafe { *libc::__errno_location() = libc::EAGAIN };
            // SAFETY: from the handler, with its arguments.
            unsafe { CHAINED.forward(signo, info, uc) };
        })
    }

    /// SIGUSR2 is this test's alone in this binary; `raise` delivers it
    /// to the calling thread before it returns.
    #[test]
    fn a_chained_handler_runs_first_forwards_once_and_keeps_errno() {
        let sig = libc::SIGUSR2;
        install(sig, before).expect("the handler that was there first");
        CHAINED.install(sig).expect("chain ours in front");
        assert!(CHAINED.is_installed(sig));
        assert_eq!(
            CHAINED.previous(sig).map(Previous::handler),
            Some(before as *const () as usize)
        );
        // Installing again (ours is there already) keeps the first record:
        // forwarding to ourselves would recurse.
        CHAINED.install(sig).expect("idempotent");
        assert_eq!(
            CHAINED.previous(sig).map(Previous::handler),
            Some(before as *const () as usize)
        );
        for n in 1..=3 {
            // SAFETY: errno is thread-local.
            unsafe { *libc::__errno_location() = libc::EINTR };
            // SAFETY: raising a signal with a handler installed.
            assert_eq!(unsafe { libc::raise(sig) }, 0);
            // SAFETY: as above.
            let errno = unsafe { *libc::__errno_location() };
            assert_eq!(errno, libc::EINTR, "the handler left errno as found");
            assert_eq!(OURS.load(Ordering::SeqCst), n);
            assert_eq!(BEFORE.load(Ordering::SeqCst), n, "forwarded once each");
        }
        // Someone replaces ours; installing again puts ours back and still
        // forwards to the first disposition, not to the replacement.
        install(sig, before).expect("replaced");
        assert!(!CHAINED.is_installed(sig));
        CHAINED.install(sig).expect("reinstalled");
        assert_eq!(
            CHAINED.previous(sig).map(Previous::handler),
            Some(before as *const () as usize)
        );
    }

    static DEPTH: AtomicU64 = AtomicU64::new(0);
    static DEEPEST: AtomicU64 = AtomicU64::new(0);
    static BLOCKED_INSIDE: AtomicU64 = AtomicU64::new(0);
    static RAISED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    static REENTRANT: Chained = Chained::new(nesting);

    /// Raises its own signal once from inside itself.
    extern "C" fn nesting(signo: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
        Chained::enter(|| {
            let depth = DEPTH.fetch_add(1, Ordering::SeqCst) + 1;
            DEEPEST.fetch_max(depth, Ordering::SeqCst);
            // SAFETY: a zeroed sigset_t is filled by the query below.
            let mut now: libc::sigset_t = unsafe { std::mem::zeroed() };
            // SAFETY: a null new set only reads the thread's mask.
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now) };
            // SAFETY: `now` is a valid set.
            if unsafe { libc::sigismember(&now, signo) } == 1 {
                BLOCKED_INSIDE.fetch_add(1, Ordering::SeqCst);
            }
            if !RAISED.swap(true, Ordering::SeqCst) {
                // SAFETY: raising a signal with a handler installed.
                unsafe { libc::raise(signo) };
            }
            DEPTH.fetch_sub(1, Ordering::SeqCst);
        })
    }

    /// A real-time signal that is this test's alone in this binary.
    #[test]
    fn a_reentrant_handler_runs_with_its_signal_unblocked_and_nests() {
        let sig = libc::SIGRTMIN() + 3;
        REENTRANT.install_reentrant(sig).expect("installed");
        let flags = query(sig).expect("queried").action.sa_flags;
        assert_ne!(flags & libc::SA_NODEFER, 0);
        // SAFETY: raising a signal with a handler installed.
        assert_eq!(unsafe { libc::raise(sig) }, 0);
        // The handler's own raise was delivered inside it, at once: the
        // mask in force there is the thread's, without the signal.
        assert_eq!(DEEPEST.load(Ordering::SeqCst), 2);
        assert_eq!(BLOCKED_INSIDE.load(Ordering::SeqCst), 0);
        assert_eq!(DEPTH.load(Ordering::SeqCst), 0);
    }

    static BOUNDED: Chained = Chained::new(bounded);
    static BOUNDED_RUNS: AtomicU64 = AtomicU64::new(0);
    static BOUNDED_DEEPEST: AtomicU64 = AtomicU64::new(0);
    static BOUNDED_DEPTH: AtomicU64 = AtomicU64::new(0);
    /// What the first handler saw after its nested one returned: whether
    /// the signal was blocked (1), and how many handlers had run once it
    /// had raised the signal a second time.
    static BLOCKED_AFTER_NESTED: AtomicU64 = AtomicU64::new(0);
    static RUNS_AFTER_SECOND_RAISE: AtomicU64 = AtomicU64::new(0);

    /// The first run raises its signal (a nested run follows at once),
    /// then looks at its mask and raises the signal again.
    extern "C" fn bounded(signo: libc::c_int, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
        let body = || {
            let run = BOUNDED_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
            let depth = BOUNDED_DEPTH.fetch_add(1, Ordering::SeqCst) + 1;
            BOUNDED_DEEPEST.fetch_max(depth, Ordering::SeqCst);
            if run == 1 {
                // SAFETY: raising a signal with a handler installed.
                unsafe { libc::raise(signo) };
                // SAFETY: a zeroed sigset_t is filled by the query.
                let mut now: libc::sigset_t = unsafe { std::mem::zeroed() };
                // SAFETY: a null new set only reads the thread's mask.
                unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now) };
                // SAFETY: `now` is a valid set.
                let blocked = unsafe { libc::sigismember(&now, signo) } == 1;
                BLOCKED_AFTER_NESTED.store(u64::from(blocked), Ordering::SeqCst);
                // SAFETY: as above.
                unsafe { libc::raise(signo) };
                RUNS_AFTER_SECOND_RAISE
                    .store(BOUNDED_RUNS.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            BOUNDED_DEPTH.fetch_sub(1, Ordering::SeqCst);
        };
        // SAFETY: uc is the kernel's, passed on as received.
        unsafe { Chained::enter_reentrant(signo, uc, body) }
    }

    /// Another real-time signal that is this test's alone in this binary.
    #[test]
    fn a_nested_reentrant_handler_leaves_its_signal_blocked_until_the_outer_returns() {
        let sig = libc::SIGRTMIN() + 4;
        BOUNDED.install_reentrant(sig).expect("installed");
        // SAFETY: raising a signal with a handler installed.
        assert_eq!(unsafe { libc::raise(sig) }, 0);
        // The first run, the nested one, and the second raise's, which
        // waited for the first to return.
        assert_eq!(BOUNDED_RUNS.load(Ordering::SeqCst), 3);
        assert_eq!(BOUNDED_DEEPEST.load(Ordering::SeqCst), 2);
        assert_eq!(BLOCKED_AFTER_NESTED.load(Ordering::SeqCst), 1);
        assert_eq!(RUNS_AFTER_SECOND_RAISE.load(Ordering::SeqCst), 2);
        // Back outside, the thread's mask is its own again.
        // SAFETY: a zeroed sigset_t is filled by the query.
        let mut now: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: a null new set only reads the thread's mask.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now) };
        // SAFETY: `now` is a valid set.
        assert_eq!(unsafe { libc::sigismember(&now, sig) }, 0);
        assert_eq!(Chained::leave_without_return(), None);
    }

    static LEAVING: Chained = Chained::new(leaving);
    static LEAVING_RUNS: AtomicU64 = AtomicU64::new(0);
    /// What the first run learnt from `leave_without_return`, twice (the
    /// signal number, or 0 for none).
    static LEARNT: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

    /// The first run raises its signal (a nested run follows at once and
    /// returns with the signal blocked), then asks what a handler leaving
    /// without returning must unblock, twice.
    extern "C" fn leaving(signo: libc::c_int, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
        let body = || {
            if LEAVING_RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
                // SAFETY: raising a signal with a handler installed.
                unsafe { libc::raise(signo) };
                for learnt in &LEARNT {
                    let b = Chained::leave_without_return().unwrap_or(0);
                    learnt.store(b as u64, Ordering::SeqCst);
                }
            }
        };
        // SAFETY: uc is the kernel's, passed on as received.
        unsafe { Chained::enter_reentrant(signo, uc, body) }
    }

    /// Another real-time signal that is this test's alone in this binary.
    #[test]
    fn a_handler_leaving_without_return_learns_what_a_nested_one_blocked() {
        let sig = libc::SIGRTMIN() + 5;
        LEAVING.install_reentrant(sig).expect("installed");
        // SAFETY: raising a signal with a handler installed.
        assert_eq!(unsafe { libc::raise(sig) }, 0);
        assert_eq!(LEAVING_RUNS.load(Ordering::SeqCst), 2);
        assert_eq!(
            LEARNT[0].load(Ordering::SeqCst),
            sig as u64,
            "the nested run's block"
        );
        assert_eq!(
            LEARNT[1].load(Ordering::SeqCst),
            0,
            "told once: the word is clear"
        );
        assert_eq!(Chained::leave_without_return(), None);
    }

    #[test]
    fn signal_numbers_out_of_range_are_refused() {
        for sig in [0, -1, NSIG as libc::c_int] {
            let e = CHAINED.install(sig).expect_err("out of range");
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{sig}");
        }
    }
}
