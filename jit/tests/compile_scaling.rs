//! Regression tests for compile time and memory that grew with the square
//! of a program's size: per-loop block lists and a depth count that asked
//! every loop about every header (10,000 nested loops took 165 s), and
//! dense per-block liveness sets in the register allocator (100,000 blocks
//! each defining a register took 5 GB, and died under a 3 GiB limit).
//!
//! Each program is parsed, verified, optimised and assembled for both
//! architectures (and one is listed by the disassembler) in a child
//! process: the test binary again, running only that test, under an
//! address-space limit of 1 GiB. Time is no test's business (a loaded
//! machine or an emulator may be slow), so the watchdog only turns a hang
//! into a failure; what is asserted is that the work fits in the memory.
//! The child prints how long each phase took and its peak RSS, which
//! `--nocapture` shows.

use std::fmt::Write as _;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use preempt_jit::code::disasm;
use preempt_jit::ir;
use preempt_jit::module::Arch;

/// Set in the child, to the name of the test it runs.
const CHILD: &str = "PREEMPT_JIT_SCALING_CHILD";
const ADDRESS_SPACE: u64 = 1 << 30;
const WATCHDOG: Duration = Duration::from_secs(60);

/// `depth` loops, each the whole body of the one around it; each level's
/// counter is incremented on its latch, after the loop inside it.
fn nested_loops(depth: usize) -> String {
    let mut s = String::from("func @main() {\n    %i0 = const 0\n");
    for k in 0..depth {
        writeln!(s, "l{k}:\n    %i{} = const 0", k + 1).unwrap();
    }
    writeln!(
        s,
        "l{depth}:\n    %i{depth} = add %i{depth}, 1\n    %c{depth} = lt %i{depth}, 1\n    br %c{depth}, l{depth}, e{depth}"
    )
    .unwrap();
    for k in (0..depth).rev() {
        writeln!(
            s,
            "e{}:\n    %i{k} = add %i{k}, 1\n    %c{k} = lt %i{k}, 1\n    br %c{k}, l{k}, e{k}",
            k + 1
        )
        .unwrap();
    }
    s.push_str("e0:\n    print \"{}\", %i0\n    ret\n}\n");
    s
}

/// `n` blocks falling through into each other, each defining a register
/// from the previous one.
fn register_per_block(n: usize) -> String {
    let mut s = String::from("func @main() {\n    %r0 = const 1\n");
    for k in 1..n {
        writeln!(s, "b{k}:\n    %r{k} = add %r{}, 1", k - 1).unwrap();
    }
    writeln!(s, "    print \"{{}}\", %r{}\n    ret\n}}", n - 1).unwrap();
    s
}

/// The peak resident set of this process, from /proc/self/status.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// In the child: compiles `src` under the address-space limit, printing
/// each phase's time. Returns the program and the host-architecture
/// listing when `list` is set, for the test's own checks.
fn compile(src: &str, list: bool) -> (ir::Program, Option<String>) {
    let limit = libc::rlimit {
        rlim_cur: ADDRESS_SPACE,
        rlim_max: ADDRESS_SPACE,
    };
    // SAFETY: `limit` is a valid rlimit that outlives the call.
    let set = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(set, 0, "setrlimit: {}", std::io::Error::last_os_error());
    let phase = |name: &str, start: Instant| println!("  {name}: {:?}", start.elapsed());
    println!("  source: {} bytes", src.len());
    let t = Instant::now();
    let mut prog = ir::parse(src).unwrap_or_else(|e| panic!("{}", e.render("gen.pir", src)));
    phase("parse", t);
    let t = Instant::now();
    ir::verify(&mut prog).unwrap_or_else(|e| panic!("{}", e.render("gen.pir", src)));
    phase("verify", t);
    let t = Instant::now();
    preempt_jit::opt::optimize(&mut prog, 1);
    phase("optimise", t);
    let globals: Vec<usize> = (0..prog.globals.len())
        .map(|i| 0x7fab_0000_0000 + 8 * i)
        .collect();
    let mut listing = None;
    let listed = Arch::host().unwrap_or(Arch::X86_64);
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let t = Instant::now();
        let asm = preempt_jit::isa::assemble(arch, &prog, &globals);
        phase(&format!("assemble {}", arch.name()), t);
        if list && arch == listed {
            let t = Instant::now();
            listing = Some(disasm::listing(&prog, &asm, 1));
            phase(&format!("listing {}", arch.name()), t);
        }
    }
    println!("  peak RSS (VmHWM): {}", peak_rss());
    (prog, listing)
}

/// Runs `test` (this file's test of that name) in a child process, which
/// calls `body`, and fails unless the child succeeds.
fn in_child(test: &str, body: impl FnOnce()) {
    if std::env::var(CHILD).is_ok_and(|t| t == test) {
        body();
        return;
    }
    // Under qemu-user (the aarch64 lane) the child runs through the same
    // emulator.
    let wrapper = std::env::var("PREEMPT_EXEC_WRAPPER").unwrap_or_default();
    let mut words: Vec<String> = wrapper.split_whitespace().map(str::to_string).collect();
    words.push(
        std::env::current_exe()
            .expect("the test binary")
            .display()
            .to_string(),
    );
    let mut child = Command::new(&words[0])
        .args(&words[1..])
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the test binary");
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    println!("{test} (child, address space limited to 1 GiB):\n{out}");
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("{test}: the child failed ({s}):\n{out}\n{err}"),
        None => panic!("{test}: the child still ran after {WATCHDOG:?}:\n{out}\n{err}"),
    }
}

#[test]
fn ten_thousand_nested_loops_compile_without_per_loop_block_lists() {
    in_child(
        "ten_thousand_nested_loops_compile_without_per_loop_block_lists",
        || {
            let depth = 10_000;
            let (prog, listing) = compile(&nested_loops(depth), true);
            let cfg = ir::cfg::Cfg::new(&prog.funcs[0]);
            assert_eq!(cfg.loops.len(), depth + 1);
            assert_eq!(cfg.loops[0].depth, depth as u32 + 1);
            let listing = listing.expect("listed");
            let back_edges = listing
                .lines()
                .filter(|l| !l.starts_with(';') && l.contains("<== BACK-EDGE"))
                .count();
            assert_eq!(back_edges, depth + 1);
        },
    );
}

#[test]
fn a_hundred_thousand_blocks_each_defining_a_register_compile_without_dense_liveness() {
    in_child(
        "a_hundred_thousand_blocks_each_defining_a_register_compile_without_dense_liveness",
        || {
            let (prog, _) = compile(&register_per_block(100_000), false);
            assert_eq!(prog.funcs[0].blocks.len(), 100_000);
        },
    );
}
