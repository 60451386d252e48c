//! A signal handler redirects a spinning JIT loop into the
//! asynchronous-preemption stub through `MachineContext::push_call`; the
//! stub records the visit (a runtime call) and returns to the exact
//! instruction, with every register the JIT uses preserved.
//!
//! The loop is `preempt_tests::registers`' (24 live values, scratch
//! registers, flags between a compare and its use): the values it prints
//! are recomputed for the same number of iterations, so any register, flag
//! or PC the redirect got wrong shows as a mismatch, or as the loop
//! leaving before it is told to.
//!
//! Under qemu-user, signals are delivered only between translated blocks,
//! so an emulated run interrupts block boundaries only; the aarch64 lane
//! runs this test with `QEMU_SINGLESTEP=1` (one instruction per block) so
//! that every instruction boundary can be hit, as on hardware.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use preempt_jit::code::CodeTables;
use preempt_jit::ir;
use preempt_jit::module::Module;
use preempt_runtime::{Observers, Output, RunConfig, RunStats};
use preempt_signals::handler::{install, tgkill};
use preempt_signals::MachineContext;
use preempt_tests::registers::{expected, program};

static TABLES: AtomicUsize = AtomicUsize::new(0);
static STUB: AtomicUsize = AtomicUsize::new(0);
static REDIRECTS: AtomicU64 = AtomicU64::new(0);

/// Async-signal-safe: table lookups (binary searches, no allocation) and
/// atomic counters.
extern "C" fn on_signal(_: libc::c_int, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let tables = TABLES.load(Ordering::Acquire) as *const CodeTables;
    if tables.is_null() {
        return;
    }
    // SAFETY: the pointer is to the module's tables, alive for the test;
    // `uc` is the kernel's ucontext for this SA_SIGINFO handler.
    let (tables, mut mc) = unsafe { (&*tables, MachineContext::from_raw(uc)) };
    let pc = mc.pc();
    // Redirect only inside a block of JIT code, outside unsafe regions:
    // not in stubs, runtime code, prologues or epilogues.
    if tables.block_at(pc).is_some() && tables.unsafe_region_at(pc).is_none() {
        // SAFETY: JIT code keeps its stack 16-byte aligned and far above the
        // guard (the loop makes no calls), and uses no red zone.
        unsafe { mc.push_call(STUB.load(Ordering::Relaxed), pc) };
        REDIRECTS.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn redirected_loop_keeps_every_register_and_resumes_exactly() {
    let text = program();
    let mut prog = ir::parse(&text).unwrap();
    ir::verify(&mut prog).unwrap();
    preempt_jit::opt::optimize(&mut prog, 1);
    let module = Arc::new(Module::compile(&prog).unwrap());
    TABLES.store(
        &module.tables as *const CodeTables as usize,
        Ordering::Release,
    );
    STUB.store(module.stubs.preempt_stub, Ordering::Release);
    install(libc::SIGURG, on_signal).expect("install the handler");

    let stats = Arc::new(RunStats::default());
    let cfg = RunConfig {
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

    // Signal the worker until it has been redirected often enough, then
    // stop the loop. The deadline only turns a broken redirect into a
    // failure instead of a hang; emulated runs take a few seconds.
    let deadline = Instant::now() + Duration::from_secs(120);
    while stats.preempt_stub_entries.load(Ordering::Relaxed) < 200 {
        assert!(
            Instant::now() < deadline,
            "only {} visits",
            stats.preempt_stub_entries.load(Ordering::Relaxed)
        );
        // The loop only ends when told to: ending by itself means a redirect
        // corrupted the flags or the PC of its exit test.
        assert!(
            !runner.is_finished(),
            "the loop ended by itself: {:?}",
            captured.text()
        );
        let tid = stats.worker_tid.load(Ordering::SeqCst);
        if tid != 0 {
            let _ = tgkill(tid, libc::SIGURG);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    module.globals.words()[0].store(1, Ordering::SeqCst);
    let outcome = runner.join().unwrap();
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);

    let got = captured.text();
    let n: u64 = got.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(got, expected(n), "after {n} iterations");
    assert_eq!(
        stats.preempt_stub_entries.load(Ordering::Relaxed),
        REDIRECTS.load(Ordering::Relaxed),
        "every redirect enters the stub once"
    );
}
