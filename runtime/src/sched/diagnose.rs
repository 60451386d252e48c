//! Saying why a program hangs: what each goroutine is doing and, for one
//! that will not stop, why, as far as the compiler's tables know it.
//!
//! Go's runtime prints stacks when asked (SIGQUIT) but never explains why a
//! goroutine ignores preemption requests. Here the monitor and the
//! watchdog sample the thread's PC with a signal, find the function, block
//! and loop it is in, and give the reasons:
//!
//! - "loop @f:loop has no preemption point in coop mode": its body has no
//!   call and no runtime operation, so no stack check ever runs in it;
//! - "the value of @g was hoisted into a register at -O1 (plain load)": the
//!   loop tests a register no other goroutine can change;
//! - "in foreign code (ccall spin)": no mechanism stops foreign code;
//! - in async mode, what became of the signals: the handler replaced
//!   (SIG_IGN), the signal blocked on the thread, or the handler's last
//!   reason for not redirecting (an unsafe region, a shallow stack);
//! - under `poll`, `trap` and `patch`, what the arming did to the
//!   goroutine (its poll word, its poll-page pointer or the global page,
//!   the function whose back-edges are patched and the one it runs), that
//!   every loop of JIT code stops at its back-edge once armed (so a loop
//!   that runs on is not waiting for preemption), and, for `trap`, a fault
//!   handler that foreign code replaced.
//!
//! A stop-the-world (the collector's) that waits for such a goroutine
//! says so too, once it has waited for the hang threshold, and the
//! watchdog's report names the stop: a program whose collector waits
//! forever for a spinner (the seed's Bug 2) is a hang with a reason, not a
//! silent deadlock.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use preempt_jit::code::place::Place;
use preempt_jit::ir::PreemptMode;
use preempt_jit::module::Module;

use super::{lock, monotonic_nanos, Runtime, M};
use crate::g::{Status, G};
use crate::preempt::asynchronous;
use crate::Outcome;

fn ms(ns: u64) -> String {
    format!("{:.1}ms", ns as f64 / 1e6)
}

/// A goroutine has not stopped `age` ns after a preemption request: the
/// report, or None when its thread is in the runtime serving it (it stops
/// when the runtime is done, which is not a hang of the program).
pub fn stuck(rt: &Runtime, m: usize, g: &G, age: u64) -> Option<String> {
    let where_ = running(rt, m, Some(g));
    if where_.starts_with("\tin the runtime") {
        return None;
    }
    Some(format!(
        "preempt: goroutine {} has not stopped {} after a preemption request ({} mode):\n{where_}",
        g.id,
        ms(age),
        rt.cfg.mode
    ))
}

/// A stop-the-world for `why` has waited `age` ns for goroutine `g`,
/// running on P `p` and M `m`: the report, or None when its thread is in
/// the runtime serving it (it stops when the runtime is done).
pub fn stw_stuck(rt: &Runtime, why: &str, p: usize, m: usize, g: &G, age: u64) -> Option<String> {
    let where_ = running(rt, m, Some(g));
    if where_.starts_with("\tin the runtime") {
        return None;
    }
    Some(format!(
        "preempt: stop-the-world for {} has waited {} for goroutine {} on P {p} ({} mode); the collector and every other goroutine wait with it:\n{where_}",
        why,
        ms(age),
        g.id,
        rt.cfg.mode
    ))
}

/// Samples of a running goroutine's PC taken, at most, to find it in JIT
/// code.
const SAMPLES: usize = 5;

/// What the goroutine on M `m` is doing, with the reasons it may not stop:
/// `g` when the caller knows which goroutine it is (the M may be between
/// two of its slices, its own `current` cleared), else the M's current.
pub fn running(rt: &Runtime, m: usize, g: Option<&G>) -> String {
    let Some(m) = lock(&rt.ms).get(m).cloned() else {
        return "\t(no thread)\n".into();
    };
    if let Some(f) = *lock(&m.in_foreign) {
        return in_foreign(f, rt.cfg.mode);
    }
    let Some(module) = rt.module() else {
        // One interpreted goroutine runs at a time; the interpreter says
        // where it last entered a block.
        return match rt.engine.interp_position() {
            Some(at) => {
                format!("{at} (interpreted; the last block an interpreted goroutine entered)\n")
            }
            None => "\t(interpreted)\n".into(),
        };
    };
    let tid = m.tid.load(Ordering::Acquire);
    // A goroutine that runs passes through the runtime now and then (each
    // preemption, each runtime call): a sample that lands there says
    // little, so up to a few more are taken, a millisecond apart, for one
    // in JIT code.
    let mut last = None;
    for attempt in 0..SAMPLES {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        match preempt_signals::sampler::sample(tid, Duration::from_secs(1)) {
            Some(sample) => {
                let in_jit = module.tables.function_at(sample.pc).is_some();
                last = Some(sample.pc);
                if in_jit {
                    break;
                }
            }
            None => break,
        }
    }
    let mut s = match last {
        Some(pc) => describe_pc(module, &rt.cfg.file, pc, rt.cfg.mode),
        None => "\t(its thread did not answer the sampling signal)\n".into(),
    };
    if m.writing.load(Ordering::Relaxed) {
        s.push_str("\tin its runtime call for `print`, writing the program's output: a write blocks while the output's reader does not read (a full pipe)\n");
    }
    // Every sample in the runtime (a loaded machine can keep the thread
    // off a CPU for all of them): where the handler last stopped it.
    let current = rt.g_by_id(m.current.load(Ordering::Acquire));
    let g = g.or(current.as_deref());
    let stopped = g
        .as_ref()
        .map_or(0, |g| g.redirected_pc.load(Ordering::Relaxed)) as usize;
    if last.is_none_or(|pc| module.tables.function_at(pc).is_none())
        && module.tables.function_at(stopped).is_some()
    {
        s.push_str("\tlast stopped by the preemption signal at ");
        s.push_str(describe_pc(module, &rt.cfg.file, stopped, rt.cfg.mode).trim_start());
    }
    if rt.signals_preempt() {
        s.push_str(&signal_reasons(rt, &m, tid));
    }
    if let Some(g) = g {
        s.push_str(&arming_reasons(rt, module, g, last));
    }
    s
}

/// A goroutine in foreign function `f`, under `mode`.
fn in_foreign(f: impl std::fmt::Display, mode: PreemptMode) -> String {
    format!(
        "\tin foreign code (ccall {f}): {}; no preemption mechanism can stop foreign code\n",
        reach(mode)
    )
}

/// What `mode` can stop: the reach of its mechanism.
fn reach(mode: PreemptMode) -> &'static str {
    match mode {
        PreemptMode::Coop => {
            "coop mode stops a goroutine only at a function entry or a runtime call of JIT code"
        }
        PreemptMode::Async => "the preemption signal's handler redirects only JIT code",
        PreemptMode::Poll => "poll mode reads the poll word only at back-edges of JIT code",
        PreemptMode::Trap => "trap mode loads from the poll page only at back-edges of JIT code",
        PreemptMode::Patch => "patch mode rewrites only back-edges of JIT code",
    }
}

/// Under `poll`, `trap` and `patch`: what the arming did to `g`, whose
/// thread was last seen at `pc`, and why it may not have stopped.
fn arming_reasons(rt: &Runtime, module: &Module, g: &G, pc: Option<usize>) -> String {
    let mut s = String::new();
    let Some(state) = rt.arming.describe(g, module) else {
        return s;
    };
    writeln!(s, "\tarming ({} mode): {state}", rt.cfg.mode).unwrap();
    if rt.cfg.mode == PreemptMode::Trap && !crate::preempt::trap::installed() {
        writeln!(
            s,
            "\treason: the runtime's poll-page fault handler for SIGSEGV was replaced by {}: an armed goroutine's poll load faults into it",
            disposition(libc::SIGSEGV)
        )
        .unwrap();
    }
    let t = &module.tables;
    let in_loop = pc
        .and_then(|pc| t.block_at(pc))
        .and_then(|b| t.innermost_loop(b.func, b.block));
    if let Some(l) = in_loop {
        writeln!(
            s,
            "\tnote: every loop back-edge {} in {} mode, so once armed the goroutine stops at the next one ({} stops at back-edges in this run so far): a loop that runs on regardless is not waiting for preemption (loop @{}:{})",
            match rt.cfg.mode {
                PreemptMode::Poll => "reads the poll word",
                PreemptMode::Trap => "loads from the poll page",
                _ => "can be patched to its yield trampoline",
            },
            rt.cfg.mode,
            rt.obs.stats.preempt_stub_entries(),
            module.names.functions.get(l.func.index()).map_or("?", String::as_str),
            module.names.block(l.func, l.header)
        )
        .unwrap();
    }
    s
}

/// What the signal's limits do not touch.
const NO_SIGNAL: &str = "--preempt poll, trap and patch stop loops without the signal";

/// In async mode: what became of the preemption signals sent to `m`.
fn signal_reasons(rt: &Runtime, m: &M, tid: libc::pid_t) -> String {
    let sig = rt.cfg.preempt_signal;
    let name = signal_name(sig);
    let sent = m.sig.sent.load(Ordering::Acquire);
    let seen = m.sig.seen.load(Ordering::Acquire);
    let mut s = String::new();
    if !asynchronous::installed(sig) {
        let mut what = disposition(sig);
        if what == "SIG_IGN" {
            what.push_str(" (ccall ignore_preempt_signal?): the kernel discards it");
        }
        writeln!(
            s,
            "\treason: the runtime's handler for {name} was replaced by {what}; asynchronous preemption cannot reach any goroutine ({NO_SIGNAL})"
        )
        .unwrap();
    }
    if blocked_on(tid, sig) {
        writeln!(
            s,
            "\treason: {name} is blocked on this thread (ccall block_preempt_signal?): {sent} sent, the handler ran for {seen}; the signal stays pending until it is unblocked ({NO_SIGNAL})"
        )
        .unwrap();
    }
    if let Some((r, pc)) = m.sig.last_retry() {
        let at = match rt.module() {
            Some(module) => format!("{pc:#x} = {}", module.describe_pc(pc)),
            None => format!("{pc:#x}"),
        };
        writeln!(
            s,
            "\tnote: {sent} {name} sent to this thread; at the last one the handler declined to redirect ({}) at pc {at}",
            r.name()
        )
        .unwrap();
    }
    s
}

/// What `sig` is bound to now: `SIG_IGN`, `SIG_DFL` or a handler's address.
fn disposition(sig: libc::c_int) -> String {
    match preempt_signals::handler::current_handler(sig) {
        Ok(h) if h == libc::SIG_IGN => "SIG_IGN".to_string(),
        Ok(h) if h == libc::SIG_DFL => "SIG_DFL".to_string(),
        Ok(h) => format!("another handler ({h:#x})"),
        Err(e) => format!("unknown ({e})"),
    }
}

/// `SIGURG` for 23, and so on (a number for signals without a name here).
pub fn signal_name(sig: libc::c_int) -> String {
    let names = [
        (libc::SIGURG, "SIGURG"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGPWR, "SIGPWR"),
    ];
    names
        .iter()
        .find(|(n, _)| *n == sig)
        .map_or_else(|| format!("signal {sig}"), |(_, name)| (*name).to_string())
}

/// Whether thread `tid` of this process blocks `sig` (its `SigBlk` in
/// /proc).
fn blocked_on(tid: libc::pid_t, sig: libc::c_int) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|mask| sig >= 1 && mask & (1 << (sig - 1)) != 0)
}

/// Names the function, block and instruction at `pc`, and why a goroutine
/// there cannot be preempted in `mode`, as far as the tables say.
pub fn describe_pc(module: &Module, file: &str, pc: usize, mode: PreemptMode) -> String {
    let t = &module.tables;
    let (f, block, span) = match module.place(pc) {
        Place::Stub(s) => return format!("\tin the runtime stub {} (pc {pc:#x})\n", s.name),
        Place::Outside => {
            let native = preempt_jit::code::place::native_place(pc);
            return format!("\tin the runtime (pc {pc:#x}, outside JIT code{native})\n");
        }
        Place::Function {
            func, block, span, ..
        } => (func, block, span),
    };
    let mut s = format!("@{}", f.name);
    match block {
        Some(b) => write!(s, " in block {}", module.names.block(b.func, b.block)).unwrap(),
        None => s.push_str(" in its prologue or out-of-line code"),
    }
    writeln!(s, " (pc {pc:#x} = @{}+{:#x})", f.name, pc - f.start).unwrap();
    writeln!(s, "\t{file}:{}:{}", span.line, span.col).unwrap();
    let Some(b) = block else {
        return s;
    };
    if let Some(l) = t.innermost_loop(b.func, b.block) {
        let header = module.names.block(l.func, l.header);
        if !l.has_call && !l.has_runtime_op && mode == PreemptMode::Coop {
            writeln!(
                s,
                "\treason: loop @{}:{header} has no preemption point in coop mode (no call and no runtime operation in its body)",
                f.name
            )
            .unwrap();
        }
        for h in t.hoisted_into(l.func, l.header) {
            let global = module
                .names
                .globals
                .get(h.global.index())
                .map_or("?", String::as_str);
            writeln!(
                s,
                "\treason: the value of @{global} was hoisted into a register at -O1 (plain load): this loop cannot see other goroutines' stores"
            )
            .unwrap();
        }
    }
    if let Some(r) = t.unsafe_region_at(pc) {
        writeln!(
            s,
            "\tnote: the pc is in an unsafe region ({})",
            r.kind.name()
        )
        .unwrap();
    }
    s
}

/// The most goroutines a dump lists. Go's lists every one; a million
/// goroutines made a 38 MB report here, written as the program ended, so
/// the dump stops here and says how many it left out.
pub const DUMP_MAX: usize = 100;

/// Goroutines that are not running, with their state and frames: the
/// first [`DUMP_MAX`] by id, and how many more there are.
pub fn goroutine_dump(rt: &Runtime) -> String {
    let mut out = String::new();
    let mut gs = rt
        .allgs
        .filter(|g| !matches!(g.status(), Status::Running | Status::Dead));
    gs.sort_unstable_by_key(|g| g.id);
    let left_out = gs.len().saturating_sub(DUMP_MAX);
    gs.truncate(DUMP_MAX);
    for g in gs {
        let status = g.status();
        let state = match status {
            Status::Runnable => "runnable".to_string(),
            _ => g.reason().name().to_string(),
        };
        write!(out, "\ngoroutine {} [{state}]:\n", g.id).unwrap();
        // SAFETY: the program is ending: parked goroutines are not resumed
        // any more (shutdown is set before dumps are taken).
        let (stopped, frames) = unsafe { (rt.engine.stopped_in_stub(&g), rt.engine.traceback(&g)) };
        let mut frames = frames.into_iter();
        // One stopped by a mechanism: where, and why it may not go on
        // there, as for a running one (a hang report taken while the
        // goroutine waits between two of its slices says as much).
        if let (Some((pc, _)), Some(module)) = (stopped, rt.module()) {
            out.push_str(&describe_pc(module, &rt.cfg.file, pc, rt.cfg.mode));
            frames.next();
        }
        for fr in frames {
            write!(
                out,
                "@{} in block {}\n\t{}:{}:{}\n",
                fr.func, fr.block, rt.cfg.file, fr.line, fr.col
            )
            .unwrap();
        }
    }
    if left_out > 0 {
        write!(
            out,
            "\n... and {left_out} more goroutine(s) not shown (the report lists {DUMP_MAX} at most, by id)\n"
        )
        .unwrap();
    }
    out
}

/// How long the watchdog waits for goroutines between states to settle.
const SETTLE: Duration = Duration::from_millis(200);

/// Waits (up to [`SETTLE`]) until every goroutine marked running is some
/// P's or some M's current goroutine, and no goroutine waits in a run
/// queue while a P runs nothing. A goroutine whose slice has just ended
/// is still marked running, on no P, until its M queues or parks it: a
/// report taken in that window, and dumped after its M has run it again,
/// would show it nowhere. The window is a few instructions on hardware and
/// far wider under an emulator. And a goroutine stopped at the end of its
/// slice waits in a queue until a P takes it, a window a loaded machine
/// widens too: the report would show a spinning goroutine as runnable,
/// not sampled where it spins.
fn settle(rt: &Runtime) {
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let mut placed: Vec<u64> = rt
            .ps
            .iter()
            .map(|p| p.current.load(Ordering::Acquire))
            .collect();
        placed.extend(
            lock(&rt.ms)
                .iter()
                .map(|m| m.current.load(Ordering::Acquire)),
        );
        let p_free = rt.ps.iter().any(|p| p.current.load(Ordering::Acquire) == 0);
        let between = rt.allgs.any(|g| match g.status() {
            Status::Running => !placed.contains(&g.id),
            Status::Runnable => p_free,
            _ => false,
        });
        if !between || std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The watchdog ends a program that ran past its timeout.
pub fn watchdog(rt: &Runtime, timeout: Duration) -> Outcome {
    let secs = if timeout.subsec_nanos() == 0 {
        format!("{}s", timeout.as_secs())
    } else {
        format!("{:.3}s", timeout.as_secs_f64())
    };
    rt.out.abandon();
    let mut msg =
        format!("preempt: watchdog: the program did not finish within {secs} (--timeout)\n");
    if let Some((why, since)) = rt.world.current() {
        let waiting: Vec<String> = rt
            .ps
            .iter()
            .filter_map(|p| {
                let id = p.current.load(Ordering::Acquire);
                (id != 0).then(|| format!("goroutine {id} (P {})", p.id))
            })
            .collect();
        writeln!(
            msg,
            "the stop-the-world for {} has waited {} for: {}",
            why,
            ms(monotonic_nanos().saturating_sub(since)),
            if waiting.is_empty() {
                "nothing (it is stopped)".to_string()
            } else {
                waiting.join(", ")
            }
        )
        .unwrap();
    }
    // Running goroutines first, sampled before anything stops, once none
    // is between a P and a run queue.
    settle(rt);
    for p in &rt.ps {
        let Some(g) = rt.running_on(p, p.current.load(Ordering::Acquire)) else {
            continue;
        };
        write!(msg, "\ngoroutine {} [running]:\n", g.id).unwrap();
        msg.push_str(&running(rt, p.m.load(Ordering::Acquire), Some(&g)));
    }
    for m in lock(&rt.ms).iter() {
        let g = m.current.load(Ordering::Acquire);
        if let (Some(f), true) = (*lock(&m.in_foreign), g != 0) {
            write!(
                msg,
                "\ngoroutine {g} [foreign code]:\n{}",
                in_foreign(f, rt.cfg.mode)
            )
            .unwrap();
        }
    }
    rt.finish(Outcome {
        status: 3,
        stderr: String::new(),
    });
    // Give the workers a moment to notice the shutdown before the parked
    // goroutines' stacks are read.
    std::thread::sleep(Duration::from_millis(20));
    msg.push_str(&goroutine_dump(rt));
    Outcome {
        status: 3,
        stderr: msg,
    }
}
