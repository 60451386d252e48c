//! Code memory is never writable and executable at once: while JIT code
//! runs, no mapping of the process is both.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use preempt_jit::code::writable_and_executable_mappings;
use preempt_jit::ir;
use preempt_jit::module::Module;
use preempt_runtime::{Observers, Output, RunConfig};

#[test]
fn no_mapping_is_writable_and_executable_while_jit_code_runs() {
    let mut prog = ir::parse(
        "global @started: i64\nglobal @stop: i64\nfunc @main() {\n    store.atomic @started, 1\nloop:\n    %s = load.atomic @stop\n    br %s, out, loop\nout:\n    ret\n}\n",
    )
    .unwrap();
    ir::verify(&mut prog).unwrap();
    let module = Arc::new(Module::compile(&prog).unwrap());
    let (out, _) = Output::capture();
    let m = module.clone();
    let runner = std::thread::spawn(move || {
        preempt_runtime::run(m, &RunConfig::default(), &Observers::default(), out)
    });
    // Wait for the goroutine to be inside its loop (bounded generously: a
    // loaded CI machine may start the worker late).
    let deadline = Instant::now() + Duration::from_secs(30);
    while module.globals.words()[0].load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the program never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    let wx = writable_and_executable_mappings().unwrap();
    module.globals.words()[1].store(1, Ordering::SeqCst);
    let outcome = runner.join().unwrap();
    assert_eq!(outcome.status, 0, "{outcome:?}");
    assert!(wx.is_empty(), "writable and executable mappings: {wx:#?}");
    // The check is not vacuous: the code's executable view is mapped.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let base = module.code.base();
    let exec = maps.lines().any(|l| {
        let mut parts = l.split_whitespace();
        let range = parts.next().unwrap_or("");
        let perms = parts.next().unwrap_or("");
        let (lo, hi) = range.split_once('-').unwrap_or(("0", "0"));
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).unwrap_or(0),
            usize::from_str_radix(hi, 16).unwrap_or(0),
        );
        perms.starts_with("r-x") && lo <= base && base < hi
    });
    assert!(exec, "the JIT code's mapping is read+execute");
}
