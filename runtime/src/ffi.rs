//! Foreign code: the stand-ins for cgo that `ccall` names.
//!
//! `ccall sleep` and `ccall spin` run on the calling thread, outside the
//! scheduler's control (the scheduler marks the thread as in foreign code,
//! and the monitor may hand its P to another thread meanwhile). The signal
//! calls change how the preemption signal reaches this thread or the
//! process, which is what seed bugs 5 and 13 do to Go.

use std::time::{Duration, Instant};

use preempt_jit::ir::ForeignFn;

use crate::PreemptMode;

/// Runs a blocking foreign call on this thread.
pub fn run(f: ForeignFn, micros: i64) {
    let d = Duration::from_micros(micros.max(0) as u64);
    match f {
        ForeignFn::Sleep => std::thread::sleep(d),
        ForeignFn::Spin => {
            let end = Instant::now() + d;
            while Instant::now() < end {
                std::hint::spin_loop();
            }
        }
        _ => {}
    }
}

/// The calls that change how the preemption signal `sig` of a run in
/// `mode` is delivered.
pub fn signal_call(mode: PreemptMode, sig: libc::c_int, f: ForeignFn) {
    // SAFETY: sigset operations on a local set, and pthread_sigmask on the
    // calling thread, have no other preconditions.
    let mask = |how: libc::c_int| unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    };
    match f {
        ForeignFn::BlockPreemptSignal => mask(libc::SIG_BLOCK),
        ForeignFn::UnblockPreemptSignal => mask(libc::SIG_UNBLOCK),
        ForeignFn::IgnorePreemptSignal => {
            // SAFETY: installs SIG_IGN, as the C code of seed bug 13 does.
            unsafe {
                libc::signal(sig, libc::SIG_IGN);
            }
        }
        ForeignFn::RestorePreemptSignal => crate::preempt::asynchronous::restore_handler(mode, sig),
        ForeignFn::Sleep | ForeignFn::Spin => {}
    }
}
