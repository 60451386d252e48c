//! A recursion that accumulator recursion elimination turned into a loop
//! (`preempt_jit::opt::tailrec`) is preemptible as any loop is: its
//! back-edge carries what every mechanism puts on a back-edge, and a
//! goroutine running it gives up its P under every mechanism.
//!
//! No verdict depends on timing: the worker's recursion takes hundreds of
//! milliseconds, so @main, which wakes from a 1 ms sleep, can only print
//! first if the worker was stopped; the 60 s watchdog only turns a hang
//! into a failure.

use std::sync::Arc;
use std::time::Duration;

use preempt_jit::ir::{self, FuncId, PreemptMode};
use preempt_jit::module::Module;
use preempt_runtime::{Observers, Output, RunConfig};

const PROGRAM: &str = "\
func @fib(%n: i64) -> i64 {
    %small = lt %n, 2
    br %small, base, step
base:
    ret %n
step:
    %a = sub %n, 1
    %b = sub %n, 2
    %x = call @fib(%a)
    %y = call @fib(%b)
    %r = add %x, %y
    ret %r
}

func @worker(%done: chan) {
    %r = call @fib(36)
    print \"fib {}\", %r
    send %done, 1
    ret
}

func @main() {
    %done = chan 0
    spawn @worker(%done)
    sleep 1000
    print \"main\"
    %v = recv %done
    ret
}
";

fn compile(level: u8, mode: PreemptMode) -> Module {
    let mut p = ir::parse(PROGRAM).unwrap();
    ir::verify(&mut p).unwrap();
    preempt_jit::opt::optimize(&mut p, level);
    p.settings.preempt = Some(mode);
    Module::compile(&p).unwrap()
}

#[test]
fn the_new_back_edge_carries_what_every_mechanism_puts_on_one() {
    let fib = FuncId::new(0);
    for mode in PreemptMode::ALL.iter().copied() {
        let (before, after) = (compile(0, mode), compile(1, mode));
        let count = |m: &Module| {
            let t = &m.tables;
            (
                t.back_edges.iter().filter(|b| b.func == fib).count(),
                t.poll_sites.iter().filter(|s| s.func == fib).count(),
                t.patch_sites.iter().filter(|s| s.func == fib).count(),
            )
        };
        let (b0, p0, s0) = count(&before);
        let (b1, p1, s1) = count(&after);
        assert_eq!((b0, b1), (0, 1), "{mode}: back-edges of @fib");
        let edge = after
            .tables
            .back_edges
            .iter()
            .find(|b| b.func == fib)
            .unwrap();
        assert_eq!(after.names.block(fib, edge.from), "step", "{mode}");
        assert_eq!(after.names.block(fib, edge.to), "tailrec", "{mode}");
        match mode {
            PreemptMode::Poll | PreemptMode::Trap => {
                assert_eq!(p1, p0 + 1, "{mode}: poll sites of @fib");
                assert_eq!(s1, s0, "{mode}");
            }
            PreemptMode::Patch => {
                assert_eq!(s1, s0 + 1, "{mode}: patch sites of @fib");
                assert_eq!(p1, p0, "{mode}");
            }
            PreemptMode::Coop | PreemptMode::Async => assert_eq!((p1, s1), (p0, s0), "{mode}"),
        }
    }
}

#[test]
fn a_goroutine_in_the_loop_is_preempted_under_every_mechanism() {
    for (mode, trap_arm) in preempt_tests::MODES {
        let module = Arc::new(compile(1, mode));
        let cfg = RunConfig {
            mode,
            trap_arm,
            procs: 1,
            quantum: Duration::from_millis(1),
            timeout: Some(Duration::from_secs(60)),
            ..RunConfig::default()
        };
        let (out, captured) = Output::capture();
        let o = preempt_runtime::run(module, &cfg, &Observers::default(), out);
        assert_eq!(o.status, 0, "{mode:?} ({trap_arm:?}): {o:?}");
        assert_eq!(
            captured.text(),
            "main\nfib 14930352\n",
            "{mode:?} ({trap_arm:?}): the worker was not stopped"
        );
    }
}
