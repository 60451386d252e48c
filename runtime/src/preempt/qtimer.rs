//! `--quantum-timer thread`: each worker's own POSIX timer ends its
//! goroutine's time slice, instead of the monitor.
//!
//! **Why.** The monitor learns that a quantum has ended on its own CPU and
//! then sends the preemption signal to the worker's: a wake-up of the
//! monitor and a cross-CPU interrupt. The quantum's end is known when the
//! slice starts, so a per-thread timer (`timer_create` with
//! `SIGEV_THREAD_ID`, `CLOCK_MONOTONIC`, an absolute deadline) can make the
//! kernel raise the same signal on the worker itself, on its own CPU, at
//! the deadline.
//!
//! **Arming lazily.** Setting a timer is a system call; a worker that
//! switches goroutines every few hundred nanoseconds cannot pay one per
//! slice. A worker arms its timer at a slice's start only when the timer is
//! not armed already; a slice never moves an armed timer. When the timer
//! fires, the handler reads when the current slice started: before its
//! quantum has run, it re-arms for the slice's own deadline and returns;
//! after, it stops the goroutine where it is (the decision and the way
//! back of an asynchronous stop, [`super::asynchronous`]), or, where the
//! goroutine cannot stop yet (an unsafe region, a runtime call), re-arms a
//! short retry. A worker without a goroutine lets the timer lapse. So a
//! busy worker makes about one `timer_settime` and takes one timer signal
//! per quantum, however often it switches; `--stats` counts both.
//!
//! **The stop.** The handler needs no request: it marks the goroutine with
//! the deadline it stopped for (`G::timer_stop_at`) and sends it to the
//! scheduler, which counts a quantum preemption and records the time from
//! the deadline to the stop (`quantum timer: deadline to stop`). Requests
//! (a stop of the world, the collector) work as under the monitor. The
//! monitor stays, as a backstop: it asks a slice to stop after two quanta
//! instead of one, so that a goroutine the timer cannot stop (its thread
//! has the signal blocked) is still asked, and reported if it hangs.
//!
//! Every function a handler calls here (`clock_gettime`, `timer_settime`,
//! atomics) is async-signal-safe.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

/// Who ends time slices (`--quantum-timer`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum QuantumTimer {
    /// The monitor's look at every P (Go's sysmon).
    #[default]
    Monitor,
    /// Each worker's own timer (`--preempt async` only).
    Thread,
}

impl QuantumTimer {
    pub fn name(self) -> &'static str {
        match self {
            QuantumTimer::Monitor => "monitor",
            QuantumTimer::Thread => "thread",
        }
    }
}

/// Counted once per `timer_settime` that arms a worker's timer.
pub const ARMS: &str = "quantum timer: arms";
/// Counted once per timer signal that reached a worker's handler.
pub const FIRED: &str = "quantum timer: signals";
/// The histogram of the time from a quantum's end to its goroutine's stop
/// on the scheduler.
pub const DEADLINE_TO_STOP: &str = "quantum timer: deadline to stop";
/// The histogram of the time from a quantum's end to the handler.
pub const DEADLINE_TO_HANDLER: &str = "quantum timer: deadline to handler";

/// After a timer signal found the goroutine where it cannot stop, the next
/// try.
pub const RETRY_NS: u64 = 20_000;

/// What every quantum timer's signal carries in `si_value`, so that the
/// handler tells them from any other timer's (one could still arrive after
/// its worker stopped running goroutines, on a thread that is no worker).
static COOKIE: u8 = 0;

fn cookie() -> *mut libc::c_void {
    (&COOKIE as *const u8).cast_mut().cast()
}

/// Whether a signal's `siginfo_t` is a quantum timer's expiry.
///
/// # Safety
///
/// `info` is null or the kernel's `siginfo_t` for a delivery.
pub unsafe fn is_quantum_timer(info: *const libc::siginfo_t) -> bool {
    // SAFETY: valid per the caller; si_value is meaningful for SI_TIMER.
    !info.is_null()
        && unsafe { (*info).si_code } == libc::SI_TIMER
        && unsafe { (*info).si_value() }.sival_ptr == cookie()
}

/// One worker's timer (absent until [`ThreadTimer::create`]).
#[derive(Debug, Default)]
pub struct ThreadTimer {
    /// The kernel timer (`timer_t`; the first one a process creates is
    /// 0, a null pointer, so whether there is one is a flag of its own).
    id: AtomicPtr<libc::c_void>,
    created: AtomicBool,
    /// The timer is set and has not fired.
    armed: AtomicBool,
    /// When the worker's current slice started (monotonic ns).
    slice_start: AtomicU64,
}

impl ThreadTimer {
    /// Creates the calling thread's timer, which raises `signo` on this
    /// thread. Called once by the worker itself.
    pub fn create(&self, signo: libc::c_int) -> std::io::Result<()> {
        // SAFETY: a zeroed sigevent is valid; the fields that matter are set.
        let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = signo;
        sev.sigev_notify_thread_id = preempt_signals::handler::gettid();
        sev.sigev_value = libc::sigval {
            sival_ptr: cookie(),
        };
        let mut id: libc::timer_t = std::ptr::null_mut();
        // SAFETY: both pointers are valid for the call.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut id) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.id.store(id, Ordering::Release);
        self.created.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the worker has a timer.
    pub fn exists(&self) -> bool {
        self.created.load(Ordering::Acquire)
    }

    /// Sets the timer to fire at `deadline` (monotonic ns). Async-signal-safe.
    /// Returns whether it was set.
    pub fn arm_at(&self, deadline: u64) -> bool {
        if !self.exists() {
            return false;
        }
        let id = self.id.load(Ordering::Acquire);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (deadline / 1_000_000_000) as libc::time_t,
                tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
            },
        };
        self.armed.store(true, Ordering::Release);
        // SAFETY: id is this worker's live timer; spec is valid.
        let ok =
            unsafe { libc::timer_settime(id, libc::TIMER_ABSTIME, &spec, std::ptr::null_mut()) }
                == 0;
        if !ok {
            self.armed.store(false, Ordering::Release);
        }
        ok
    }

    /// A slice starts at `now` on this worker: arms the timer for the
    /// slice's deadline unless it is armed already. Returns whether a
    /// system call was made.
    pub fn slice_started(&self, now: u64, quantum: u64) -> bool {
        self.slice_start.store(now, Ordering::Release);
        if self.armed.load(Ordering::Acquire) {
            return false;
        }
        self.arm_at(now.saturating_add(quantum))
    }

    /// The timer fired (it is one-shot: no longer armed). Returns when the
    /// current slice started.
    pub fn fired(&self) -> u64 {
        self.armed.store(false, Ordering::Release);
        self.slice_start.load(Ordering::Acquire)
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        if *self.created.get_mut() {
            // SAFETY: the timer was created by `create` and is deleted once.
            unsafe { libc::timer_delete(*self.id.get_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_arms_only_an_unarmed_timer() {
        let t = ThreadTimer::default();
        // No kernel timer: nothing is armed, and no call is made.
        assert!(!t.slice_started(1_000, 10));
        t.create(libc::SIGURG).expect("timer_create");
        // An hour away: the test thread is never signalled.
        let far = crate::stats::monotonic_ns() + 3_600_000_000_000;
        assert!(t.slice_started(far, 10), "the first slice arms");
        assert!(!t.slice_started(far + 5, 10), "an armed timer is left");
        assert_eq!(t.fired(), far + 5, "the current slice's start");
        assert!(t.slice_started(far + 9, 10), "after firing, armed again");
        t.arm_at(0);
    }
}
