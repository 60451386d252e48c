//! The runtime's preemption-signal handler and the handler that was there
//! before it: signals the runtime did not send (here `kill` of the whole
//! process, `si_code` SI_USER) reach the previous handler, exactly once
//! each, wherever they land; the runtime's own `tgkill`s never do.
//!
//! A call-free spinner runs under `--preempt async` with a 1 ms quantum,
//! so the runtime sends its own signals all along. The deadline below only
//! turns a lost signal into a failure instead of a hang.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use preempt_jit::ir::{self, PreemptMode};
use preempt_jit::module::Module;
use preempt_runtime::{Observers, Output, RunConfig, RunStats};
use preempt_signals::handler::install;

const PROGRAM: &str = "
global @stop: i64 = 0
func @spin() {
    %i = const 0
loop:
    %i = add %i, 1
    %s = load.atomic @stop
    br %s, out, loop
out:
    ret
}
func @main() {
    spawn @spin()
wait:
    sleep 1000
    %s = load.atomic @stop
    br %s, done, wait
done:
    print \"stopped\"
    ret
}
";

static MINE: AtomicU64 = AtomicU64::new(0);

extern "C" fn previous(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    MINE.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn foreign_signals_reach_the_previous_handler_and_the_runtimes_do_not() {
    install(libc::SIGURG, previous).expect("install the first handler");
    let mut prog = ir::parse(PROGRAM).unwrap();
    ir::verify(&mut prog).unwrap();
    let module = Arc::new(Module::compile(&prog).unwrap());
    let stats = Arc::new(RunStats::default());
    let cfg = RunConfig {
        procs: 1,
        mode: PreemptMode::Async,
        quantum: Duration::from_millis(1),
        timeout: None,
        ..RunConfig::default()
    };
    let (out, captured) = Output::capture();
    let m = module.clone();
    let runner = {
        let obs = Observers {
            stats: stats.clone(),
            ..Observers::default()
        };
        std::thread::spawn(move || preempt_runtime::run(m, &cfg, &obs, out))
    };

    let deadline = Instant::now() + Duration::from_secs(120);
    // Let the runtime preempt the spinner a few times first.
    while stats.preempt_stub_entries() < 5 {
        assert!(Instant::now() < deadline, "no asynchronous preemption");
        std::thread::sleep(Duration::from_millis(1));
    }
    const FOREIGN: u64 = 20;
    for i in 1..=FOREIGN {
        // SAFETY: kill sends a signal to this process; nothing else.
        unsafe { libc::kill(libc::getpid(), libc::SIGURG) };
        // One at a time: standard signals coalesce while pending.
        while MINE.load(Ordering::SeqCst) < i {
            assert!(Instant::now() < deadline, "signal {i} never reached it");
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let own_before = stats.sched.counters().signals_sent;
    // More of the runtime's own signals, none of which may be forwarded.
    while stats.sched.counters().signals_sent < own_before + 10 {
        assert!(Instant::now() < deadline, "the runtime stopped signalling");
        std::thread::sleep(Duration::from_millis(1));
    }
    module.globals.words()[0].store(1, Ordering::SeqCst);
    let outcome = runner.join().unwrap();
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert_eq!(captured.text(), "stopped\n");
    assert_eq!(
        MINE.load(Ordering::SeqCst),
        FOREIGN,
        "exactly the foreign signals were forwarded ({} of the runtime's own sent)",
        stats.sched.counters().signals_sent
    );
    assert!(stats.preempt_stub_entries() >= 5);
}
