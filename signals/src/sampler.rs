//! Reading another thread's PC and frame pointer with a signal.
//!
//! The watchdog uses it to say which function and block a hung program is
//! in. One sample at a time: [`sample`] sends the sampling signal to a
//! thread and waits until the handler has published what it saw.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::handler::{install, tgkill};
use crate::MachineContext;

static SEQ: AtomicU64 = AtomicU64::new(0);
static PC: AtomicUsize = AtomicUsize::new(0);
static SP: AtomicUsize = AtomicUsize::new(0);
static FP: AtomicUsize = AtomicUsize::new(0);

/// What a thread was doing when sampled.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sample {
    pub pc: usize,
    pub sp: usize,
    pub fp: usize,
}

/// The signal the sampler uses.
pub const SAMPLE_SIGNAL: libc::c_int = libc::SIGPROF;

/// Async-signal-safe: three relaxed stores and a release increment.
extern "C" fn on_sample(_: libc::c_int, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: installed with SA_SIGINFO, so `uc` is the kernel's ucontext.
    let mc = unsafe { MachineContext::from_raw(uc) };
    PC.store(mc.pc(), Ordering::Relaxed);
    SP.store(mc.sp(), Ordering::Relaxed);
    FP.store(mc.fp(), Ordering::Relaxed);
    SEQ.fetch_add(1, Ordering::Release);
}

/// Samples thread `tid`, waiting at most `timeout` for it to answer (a
/// thread with the signal blocked never does).
pub fn sample(tid: libc::pid_t, timeout: Duration) -> Option<Sample> {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    if !*INSTALLED.get_or_init(|| install(SAMPLE_SIGNAL, on_sample).is_ok()) {
        return None;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = SEQ.load(Ordering::Acquire);
    tgkill(tid, SAMPLE_SIGNAL).ok()?;
    let deadline = Instant::now() + timeout;
    while SEQ.load(Ordering::Acquire) == before {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Some(Sample {
        pc: PC.load(Ordering::Relaxed),
        sp: SP.load(Ordering::Relaxed),
        fp: FP.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn samples_a_busy_thread() {
        let stop = Arc::new(AtomicBool::new(false));
        let tid = Arc::new(AtomicUsize::new(0));
        let (s2, t2) = (stop.clone(), tid.clone());
        let h = std::thread::spawn(move || {
            t2.store(crate::handler::gettid() as usize, Ordering::SeqCst);
            while !s2.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        while tid.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // Generous: the busy thread may be descheduled on a loaded machine.
        let s = sample(
            tid.load(Ordering::SeqCst) as libc::pid_t,
            Duration::from_secs(5),
        )
        .expect("sampled");
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
        assert_ne!(s.pc, 0);
        assert_ne!(s.sp, 0);
    }
}
