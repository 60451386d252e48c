//! A signal handler redirects a spinning JIT loop into the
//! asynchronous-preemption stub through `MachineContext::push_call`; the
//! stub records the visit (a runtime call) and returns to the exact
//! instruction, with every register the JIT uses preserved.
//!
//! The loop keeps 24 values live (more than the allocatable registers on
//! either architecture, so some live in callee-saved registers, some in
//! spill slots), uses the scratch registers (shifts by a register count,
//! division) and ends in a fused compare-and-branch, so a redirect can land
//! while a scratch register holds a partial result or between a
//! flag-setting instruction and its branch. The values it
//! prints are recomputed here for the same number of iterations: any
//! register, flag or PC the redirect got wrong shows as a mismatch, or as
//! the loop leaving before it is told to.
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

const VALUES: usize = 24;

fn program() -> String {
    let mut s = String::from("global @stop: i64\n\nfunc @main() {\n");
    for i in 0..VALUES {
        s.push_str(&format!("    %a{i} = const {}\n", i * 7 + 1));
    }
    s.push_str("    %n = const 0\nloop:\n");
    for i in 0..VALUES {
        let prev = (i + VALUES - 1) % VALUES;
        match i % 6 {
            4 => s.push_str(&format!(
                "    %a{i} = shl %a{i}, %a{prev}\n    %a{i} = add %a{i}, 5\n"
            )),
            5 => s.push_str(&format!(
                "    %a{i} = div %a{prev}, 3\n    %a{i} = add %a{i}, %a{prev}\n"
            )),
            k => {
                let op = ["add", "xor", "sub", "mul"][k];
                s.push_str(&format!("    %a{i} = {op} %a{i}, %a{prev}\n"));
                if k == 3 {
                    s.push_str(&format!("    %a{i} = or %a{i}, 1\n"));
                }
                if k == 2 {
                    // A compare whose flags feed a setcc, not a branch (the
                    // pair is not fused, so a signal can land between them).
                    s.push_str(&format!(
                        "    %t = lt %a{i}, %a{prev}\n    %a{i} = add %a{i}, %t\n"
                    ));
                }
            }
        }
    }
    s.push_str("    %n = add %n, 1\n    %s = load.atomic @stop\n    %c = eq %s, 0\n    br %c, loop, out\nout:\n");
    let holes: Vec<String> = (0..=VALUES).map(|_| "{}".to_string()).collect();
    let regs: Vec<String> = std::iter::once("%n".to_string())
        .chain((0..VALUES).map(|i| format!("%a{i}")))
        .collect();
    s.push_str(&format!(
        "    print \"{}\", {}\n    ret\n}}\n",
        holes.join(" "),
        regs.join(", ")
    ));
    s
}

/// The loop of `program()`, run `n` times in Rust.
fn expected(n: u64) -> String {
    let mut a: Vec<i64> = (0..VALUES).map(|i| (i * 7 + 1) as i64).collect();
    for _ in 0..n {
        for i in 0..VALUES {
            let prev = a[(i + VALUES - 1) % VALUES];
            a[i] = match i % 6 {
                0 => a[i].wrapping_add(prev),
                1 => a[i] ^ prev,
                2 => {
                    let x = a[i].wrapping_sub(prev);
                    x.wrapping_add(i64::from(x < prev))
                }
                3 => a[i].wrapping_mul(prev) | 1,
                4 => a[i].wrapping_shl(prev as u32).wrapping_add(5),
                _ => (prev / 3).wrapping_add(prev),
            };
        }
    }
    let mut parts = vec![n.to_string()];
    parts.extend(a.iter().map(i64::to_string));
    parts.join(" ") + "\n"
}

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
