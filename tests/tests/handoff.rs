//! The preemption signal's handler stops a goroutine either by a redirect
//! into the preemption stub (and `sigreturn`) or, on x86-64, by writing
//! the stub's frame itself and leaving for the scheduler without
//! returning (`--async-stop handoff`, the default). Both must resume the
//! goroutine at the exact instruction with every register, flag and
//! vector register as it was: the register-heavy loop of
//! `preempt_tests::registers` runs under the runtime's own asynchronous
//! preemption at a 20 us quantum until it has been stopped a few hundred
//! times, and what it prints is recomputed here.
//!
//! The monitor asks each slice to stop once: a goroutine stopped by its
//! request is not asked again before its slice ends (it was, and every
//! such signal found it in the scheduler).

use std::sync::Arc;
use std::time::{Duration, Instant};

use preempt_jit::ir::{self, PreemptMode};
use preempt_jit::module::Module;
use preempt_runtime::preempt::asynchronous::{AsyncStop, HANDED_OFF};
use preempt_runtime::preempt::qtimer::{self, QuantumTimer};
use preempt_runtime::stats::PreemptKind;
use preempt_runtime::{Observers, Output, RunConfig, RunStats};
use preempt_tests::registers::{expected, program};

/// Stops the loop must go through before it is told to end.
const STOPS: u64 = 300;

fn loop_under(stop: AsyncStop) -> Arc<RunStats> {
    loop_with(stop, QuantumTimer::Monitor)
}

/// One run at a time: a run that ends puts the preemption signal's
/// previous disposition back, under any other run of the process.
static ONE_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn loop_with(stop: AsyncStop, timer: QuantumTimer) -> Arc<RunStats> {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let mut prog = ir::parse(&program()).unwrap();
    ir::verify(&mut prog).unwrap();
    preempt_jit::opt::optimize(&mut prog, 1);
    let module = Arc::new(Module::compile(&prog).unwrap());
    let stats = Arc::new(RunStats::default());
    let cfg = RunConfig {
        mode: PreemptMode::Async,
        procs: 1,
        quantum: Duration::from_micros(20),
        async_stop: stop,
        quantum_timer: timer,
        // The test ends the loop itself; the runtime's watchdog and hang
        // report stay out of it.
        timeout: None,
        hang_threshold: Duration::ZERO,
        ..RunConfig::default()
    };
    let (out, captured) = Output::capture();
    let runner = {
        let (m, obs) = (
            module.clone(),
            Observers {
                stats: stats.clone(),
                ..Observers::default()
            },
        );
        std::thread::spawn(move || preempt_runtime::run(m, &cfg, &obs, out))
    };
    // The deadline only turns a broken stop into a failure instead of a
    // hang: hardware needs milliseconds, emulated runs a few seconds.
    let deadline = Instant::now() + Duration::from_secs(120);
    while stats.sched.counters().preemptions < STOPS {
        assert!(
            Instant::now() < deadline,
            "{stop:?}: only {} stops",
            stats.sched.counters().preemptions
        );
        // The loop only ends when told to: ending by itself means a stop
        // corrupted the flags or the PC of its exit test.
        assert!(
            !runner.is_finished(),
            "{stop:?}: the loop ended by itself: {:?}",
            captured.text()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    module.globals.words()[0].store(1, std::sync::atomic::Ordering::SeqCst);
    let outcome = runner.join().unwrap();
    assert_eq!(outcome.status, 0, "{stop:?}: {}", outcome.stderr);
    let got = captured.text();
    let n: u64 = got.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(got, expected(n), "{stop:?}: after {n} iterations");
    stats
}

#[test]
fn both_ways_of_stopping_keep_every_register() {
    for stop in [AsyncStop::Handoff, AsyncStop::Redirect] {
        let stats = loop_under(stop);
        let c = stats.sched.counters();
        let handed = stats.sched.counts().get(HANDED_OFF).copied().unwrap_or(0);
        let by_signal = stats
            .sched
            .preemptions(PreemptKind::Quantum, PreemptMode::Async);
        // A few hundred stops by the signal (the last request may instead
        // be honoured by the print's runtime call, cooperatively).
        assert!(by_signal + 1 >= STOPS, "{stop:?}: {c:?}");
        let expect_handoff = stop == AsyncStop::Handoff && cfg!(target_arch = "x86_64");
        if expect_handoff {
            // Every stop by the signal is a hand-off (a redirect happens
            // only under the stepping harness's trap flag).
            assert_eq!(handed, by_signal, "{stop:?}: {c:?}");
        } else {
            assert_eq!(handed, 0, "{stop:?}: {c:?}");
        }
        // Each stop passed through the stub's runtime call exactly once.
        assert_eq!(stats.preempt_stub_entries(), by_signal, "{stop:?}");
    }
}

#[test]
fn a_stopped_slice_is_not_asked_again() {
    let stats = loop_under(AsyncStop::Handoff);
    // Between a goroutine's stop and the end of its slice the P still shows
    // the slice. The monitor asked it again there, and the request was
    // withdrawn unhonoured when the slice ended, every signal of it
    // declined ("not in JIT code"): it asks each slice once.
    let key = preempt_runtime::stats::withdrawn_key("stopped for an earlier request");
    let counts = stats.sched.counts();
    assert_eq!(counts.get(key), None, "{}", stats.sched.report());
}

#[test]
fn the_workers_own_timer_ends_slices_and_keeps_every_register() {
    for stop in [AsyncStop::Handoff, AsyncStop::Redirect] {
        let stats = loop_with(stop, QuantumTimer::Thread);
        let c = stats.sched.counts();
        let fired = c.get(qtimer::FIRED).copied().unwrap_or(0);
        let by_timer = stats
            .sched
            .histogram(qtimer::DEADLINE_TO_STOP)
            .map_or(0, |h| h.len());
        // The monitor asks only after two quanta: nearly every stop is
        // the timer's (the monitor's backstop may take a few when the
        // machine is busy), and each took at least one timer signal.
        let all = stats.sched.counters().preemptions;
        assert!(by_timer * 2 > all, "{stop:?}: {}", stats.sched.report());
        assert!(fired >= by_timer, "{stop:?}: {}", stats.sched.report());
        assert!(c.get(qtimer::ARMS).copied().unwrap_or(0) > 0);
    }
}
