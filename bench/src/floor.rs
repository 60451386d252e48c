//! The floor under every signal-based preemption figure: how long a
//! thread-directed signal takes from `tgkill` to the first instruction of
//! the handler on a thread spinning in user code, measured here, in this
//! process, on this machine.
//!
//! The set-up copies the runtime's: the target spins in a loop with no
//! system call, on an alternate signal stack, with a `SA_SIGINFO |
//! SA_ONSTACK | SA_RESTART` handler; the sender is another thread that
//! reads the monotonic clock, sends, and waits for the handler's own
//! reading of the same clock. Samples are spaced out (the sender sleeps
//! between them, as the runtime's monitor does between requests).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use preempt_runtime::stats::monotonic_ns;
use preempt_signals::handler::{self, gettid, AltStack};

/// When the handler ran (monotonic ns; 0: not yet).
static HANDLED_AT: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    HANDLED_AT.store(monotonic_ns(), Ordering::Release);
}

/// Send-to-handler latencies in nanoseconds, `n` samples of signal
/// `signo` (whose disposition is restored afterwards).
pub fn measure(signo: libc::c_int, n: usize, gap: Duration) -> Result<Vec<u64>, String> {
    let previous = handler::install(signo, on_signal)
        .map_err(|e| format!("cannot install a handler for signal {signo}: {e}"))?;
    let tid = Arc::new(AtomicI32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let target = {
        let (tid, stop) = (tid.clone(), stop.clone());
        std::thread::spawn(move || {
            let _alt = AltStack::install();
            tid.store(gettid(), Ordering::Release);
            let mut x = 1u64;
            while !stop.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            x
        })
    };
    while tid.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    let tid = tid.load(Ordering::Acquire);
    let mut samples = Vec::with_capacity(n);
    let mut failure = None;
    for _ in 0..n {
        std::thread::sleep(gap);
        HANDLED_AT.store(0, Ordering::Release);
        let t0 = monotonic_ns();
        if let Err(e) = handler::tgkill(tid, signo) {
            failure = Some(format!("tgkill: {e}"));
            break;
        }
        let deadline = t0 + 1_000_000_000;
        let t1 = loop {
            let t = HANDLED_AT.load(Ordering::Acquire);
            if t != 0 {
                break t;
            }
            if monotonic_ns() > deadline {
                failure = Some("a signal was not handled within 1 s".into());
                break 0;
            }
            std::hint::spin_loop();
        };
        if failure.is_some() {
            break;
        }
        samples.push(t1.saturating_sub(t0));
    }
    stop.store(true, Ordering::Release);
    let _ = target.join();
    let _ = handler::restore(&previous);
    match failure {
        Some(f) => Err(f),
        None => Ok(samples),
    }
}
