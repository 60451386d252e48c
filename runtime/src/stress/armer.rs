//! Arming at an instruction boundary for the stepping harness, under the
//! back-edge mechanisms (`poll`, `trap`, `patch`): the trap-flag handler
//! stops the stepped thread at boundary k and has the goroutine armed by
//! the runtime's own [`Arming`], exactly as the monitor's request would,
//! then lets the goroutine run on to its next back-edge.
//!
//! Arming takes a lock, records a histogram and, for `patch` and
//! `--trap-arm mprotect`, makes system calls whose effect other cores must
//! see (a rewrite and `membarrier`, an `mprotect`): none of that belongs in
//! a signal handler, and patching never happens in one. So the handler
//! hands the goroutine to a thread of the run (the *armer*) and waits for
//! its answer on a futex, which is async-signal-safe (atomics and the
//! `futex` system call). Waiting is safe: the stepped thread is in JIT
//! code, so it holds no runtime lock the armer could need, and the IPIs of
//! `membarrier` and of the `mprotect` shoot-down are served by the kernel
//! without it.
//!
//! [`Arming`]: crate::preempt::arm::Arming

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use preempt_jit::ir::PreemptMode;

use super::probe::ProbeMode;
use crate::sched::g::G;
use crate::sched::{monotonic_nanos, Runtime};

/// How long the handler waits for the armer before it gives up (and the
/// harness reports the run): the armer answers in microseconds, but a
/// loaded host may keep it off the CPU for a while.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// What the handler asks of the armer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmOp {
    /// [`Arming::arm`](crate::preempt::arm::Arming::arm) the goroutine.
    Arm,
    /// [`Arming::follow`](crate::preempt::arm::Arming::follow): under
    /// `patch`, move the patch to the function the goroutine runs now.
    Follow,
}

/// The handler's mailbox to the armer (in the run's probe).
#[derive(Debug, Default)]
pub struct Mailbox {
    /// The goroutine (a `*const G`) and the operation of the last post.
    g: AtomicUsize,
    op: AtomicU32,
    /// Bumped by each post (the armer's futex word).
    posted: AtomicU32,
    /// Set to `posted` once the armer is done (the handler's futex word).
    answered: AtomicU32,
    /// Posts the armer did not answer in time.
    pub timeouts: AtomicU64,
}

impl Mailbox {
    /// From the trap-flag handler: has the armer do `op` for `g` and waits
    /// for it. Returns false if it did not answer in time.
    pub(crate) fn post_and_wait(&self, g: &G, op: ArmOp) -> bool {
        self.g.store(g as *const G as usize, Ordering::Relaxed);
        self.op.store(op as u32, Ordering::Relaxed);
        let n = self.posted.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        futex_wake(&self.posted);
        let deadline = monotonic_nanos() + ANSWER_WITHIN.as_nanos() as u64;
        loop {
            let seen = self.answered.load(Ordering::Acquire);
            if seen == n {
                return true;
            }
            let now = monotonic_nanos();
            if now >= deadline {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            futex_wait(&self.answered, seen, deadline - now);
        }
    }
}

/// Starts the armer if the run is stepped under a mechanism that arms.
pub(crate) fn start(rt: &Arc<Runtime>) -> std::io::Result<()> {
    let Some(probe) = rt.cfg.probe.as_ref() else {
        return Ok(());
    };
    let stepped = matches!(probe.mode(), ProbeMode::Step { .. });
    let arms = matches!(
        rt.cfg.mode,
        PreemptMode::Poll | PreemptMode::Trap | PreemptMode::Patch
    );
    if !stepped || !arms {
        return Ok(());
    }
    let rt = rt.clone();
    std::thread::Builder::new()
        .name("preempt-armer".into())
        .spawn(move || serve(&rt))
        .map(drop)
}

fn serve(rt: &Runtime) {
    let Some(probe) = rt.cfg.probe.as_ref() else {
        return;
    };
    let mb = &probe.mailbox;
    let mut done = mb.answered.load(Ordering::Acquire);
    while !rt.shutdown.load(Ordering::Acquire) {
        let posted = mb.posted.load(Ordering::Acquire);
        if posted == done {
            // A tick bounds the wait, so that shutdown is seen.
            futex_wait(&mb.posted, posted, 10_000_000);
            continue;
        }
        let g = mb.g.load(Ordering::Relaxed) as *const G;
        // SAFETY: the poster is the goroutine's own thread, stopped in its
        // trap handler until this answer: the goroutine exists (the
        // runtime holds it while it runs) and stays put meanwhile.
        let g = unsafe { &*g };
        let stats = &rt.cfg.stats.sched;
        if mb.op.load(Ordering::Relaxed) == ArmOp::Follow as u32 {
            rt.arming.follow(g, stats);
        } else {
            rt.arming.arm(g, stats);
        }
        done = posted;
        mb.answered.store(done, Ordering::Release);
        futex_wake(&mb.answered);
    }
}

/// Sleeps while `word` holds `expected`, `timeout_ns` at most (or until a
/// wake). Async-signal-safe: one system call.
fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned 32-bit atomic; `ts` outlives the
    // call; FUTEX_WAIT only reads both.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        )
    };
}

/// Wakes the waiters on `word`. Async-signal-safe: one system call.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`; FUTEX_WAKE reads nothing else.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}
