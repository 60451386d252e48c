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
//! [`Arming`]: preempt_runtime::preempt::effect::Arming

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use preempt_jit::ir::PreemptMode;

use crate::probe::{probe_of_run, Probe, ProbeMode};
use preempt_runtime::g::G;
use preempt_runtime::sched::{monotonic_nanos, Runtime};

/// How long the handler waits for the armer before it gives up (and the
/// harness reports the run): the armer answers in microseconds, but a
/// loaded host may keep it off the CPU for a while.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// What the handler asks of the armer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmerJob {
    /// Make the stop request and apply its effect
    /// ([`Fx`](preempt_runtime::preempt::effect::Fx)).
    Arm,
    /// Re-request ([`Again::Follow`](preempt_runtime::preempt::Again::Follow)): under
    /// `patch`, move the patch to the function the goroutine runs now.
    Follow,
}

/// The handler's mailbox to the armer (in the run's probe).
#[derive(Debug, Default)]
pub struct Mailbox {
    /// The goroutine (a `*const G`) of the pending post, 0 once the armer
    /// has claimed it (or the handler withdrawn it), and the operation.
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
    /// for it. Returns false if the armer had not taken the post in time
    /// (it is then withdrawn: the armer never touches `g` after this
    /// returns, when the goroutine may run on and end).
    pub(crate) fn post_and_wait(&self, g: &G, op: ArmerJob) -> bool {
        self.post(g as *const G as usize, op, ANSWER_WITHIN)
    }

    /// [`Mailbox::post_and_wait`] for the address `addr`, giving up on an
    /// untaken post after `within`.
    fn post(&self, addr: usize, op: ArmerJob, within: Duration) -> bool {
        self.op.store(op as u32, Ordering::Relaxed);
        self.g.store(addr, Ordering::Release);
        let n = self.posted.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        futex_wake(&self.posted);
        let mut deadline = monotonic_nanos().saturating_add(within.as_nanos() as u64);
        loop {
            let seen = self.answered.load(Ordering::Acquire);
            if seen == n {
                return true;
            }
            let now = monotonic_nanos();
            if now >= deadline {
                if self
                    .g
                    .compare_exchange(addr, 0, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    self.timeouts.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                // Taken: the armer is at work on it and answers when done.
                deadline = u64::MAX;
            }
            futex_wait(
                &self.answered,
                seen,
                deadline.saturating_sub(now).min(1 << 30),
            );
        }
    }

    /// For the armer, whose last answer was `done`: waits up to
    /// `timeout_ns` for a post, then takes it. Returns the post's number
    /// and what it asks (None: withdrawn), or None if nothing came.
    fn take(&self, done: u32, timeout_ns: u64) -> Option<(u32, Option<(usize, ArmerJob)>)> {
        let mut posted = self.posted.load(Ordering::Acquire);
        if posted == done {
            futex_wait(&self.posted, posted, timeout_ns);
            posted = self.posted.load(Ordering::Acquire);
            if posted == done {
                return None;
            }
        }
        let addr = self.g.swap(0, Ordering::AcqRel);
        let op = if self.op.load(Ordering::Relaxed) == ArmerJob::Follow as u32 {
            ArmerJob::Follow
        } else {
            ArmerJob::Arm
        };
        Some((posted, (addr != 0).then_some((addr, op))))
    }

    /// For the armer: post `n` is done.
    fn answer(&self, n: u32) {
        self.answered.store(n, Ordering::Release);
        futex_wake(&self.answered);
    }
}

/// Starts the armer if the run is stepped under a mechanism that arms.
pub(crate) fn start(probe: &Probe, rt: &Arc<Runtime>) -> std::io::Result<()> {
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
    let Some(probe) = probe_of_run(rt) else {
        return;
    };
    let mb = &probe.mailbox;
    let mut done = mb.answered.load(Ordering::Acquire);
    while !rt.shutdown.load(Ordering::Acquire) {
        // A tick bounds the wait, so that shutdown is seen.
        let Some((n, post)) = mb.take(done, 10_000_000) else {
            continue;
        };
        if let Some((addr, op)) = post {
            // SAFETY: a post taken (not withdrawn) has its poster, the
            // goroutine's own thread, waiting in its trap handler for this
            // answer: the goroutine exists (the runtime holds it while it
            // runs) and stays put meanwhile.
            let g = unsafe { &*(addr as *const G) };
            // Both complete the request the handler made with the guard
            // alone (the protocol's re-request, R4): the mechanism's part
            // applied, or moved to the function the goroutine runs now.
            let _ = op;
            g.stop
                .rerequest(&rt.arming.fx(g, &rt.obs.stats.sched, &rt.obs.tracer));
        }
        done = n;
        mb.answer(done);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_nobody_takes_is_withdrawn() {
        let mb = Mailbox::default();
        assert!(!mb.post(0x1000, ArmerJob::Arm, Duration::from_millis(5)));
        assert_eq!(mb.timeouts.load(Ordering::Relaxed), 1);
        // An armer that comes late finds the post withdrawn: it must not
        // touch the address, only answer.
        assert_eq!(mb.take(0, 0), Some((1, None)));
        mb.answer(1);
        assert_eq!(mb.take(1, 1_000_000), None, "nothing more was posted");
    }

    #[test]
    fn the_armer_answers_each_post_once() {
        let mb = Arc::new(Mailbox::default());
        let armer = {
            let mb = mb.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut done = 0;
                while seen.len() < 3 {
                    if let Some((n, post)) = mb.take(done, 10_000_000) {
                        seen.push(post);
                        done = n;
                        mb.answer(n);
                    }
                }
                seen
            })
        };
        // Generous: the armer thread answers in microseconds; the bound
        // only turns a lost wake-up into a failure instead of a hang.
        let within = Duration::from_secs(10);
        assert!(mb.post(0x10, ArmerJob::Arm, within));
        assert!(mb.post(0x20, ArmerJob::Follow, within));
        assert!(mb.post(0x30, ArmerJob::Arm, within));
        assert_eq!(
            armer.join().unwrap(),
            vec![
                Some((0x10, ArmerJob::Arm)),
                Some((0x20, ArmerJob::Follow)),
                Some((0x30, ArmerJob::Arm))
            ]
        );
        assert_eq!(mb.timeouts.load(Ordering::Relaxed), 0);
    }
}
