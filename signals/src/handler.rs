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
    // SAFETY: a zeroed sigaction is a valid starting point; the mask is
    // emptied explicitly.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
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
