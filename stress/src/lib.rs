//! Preemption at every instruction: run a program, preempt it at one
//! instruction boundary, and check that its output and exit status are
//! those of a run that was not preempted; do it for every boundary.
//!
//! # What is compared
//!
//! The program is compiled once; every run uses the same code (so a PC
//! means the same instruction in every run) with its globals reset to
//! their initial values. A reference run, with no harness, gives the
//! expected stdout and exit status; every other run must give the same.
//! The runs use one P unless told otherwise, and neither the monitor nor
//! the hang diagnosis interferes with them (the quantum is out of reach,
//! the hang report off), so that "the k-th instruction the program
//! executes" names the same instruction in every run.
//!
//! # Every instruction, on x86-64: single-stepping
//!
//! With EFLAGS.TF set the processor traps after each instruction, and
//! Linux delivers the trap as `SIGTRAP` (`TRAP_TRACE`) to the thread. The
//! handler ([`step`]) sees the PC of the next instruction: if it lies in a
//! JIT function it is an *instruction boundary*, counted from 1 over the
//! whole run (all goroutines: with one P, one runs at a time). Boundary k
//! is the point just before the k-th JIT instruction the program executes.
//!
//! Only JIT code is stepped. Stepping the scheduler would take thousands
//! of traps per runtime call and prove nothing (the preemption handler
//! never redirects there: `decide` answers "not JIT code"). So:
//!
//! - **arming**: the scheduler switches into a goroutine through
//!   [`step::switch_into`], which, while the run's probe wants stepping,
//!   calls the `switch_to` stub with TF set
//!   (`preempt_signals::context::call_single_stepped`: `pushfq; or; popfq;
//!   call`). The first trap comes at `switch_to`'s first instruction, not
//!   in Rust code;
//! - **stubs on the way in** (`switch_to`, a fresh goroutine's entry, the
//!   return half of the async-preemption stub) are stepped through without
//!   counting: they lead into JIT code;
//! - **disarming**: a trap whose PC is in `rt_call` (the goroutine calls
//!   the runtime) or anywhere else outside JIT code clears TF in the
//!   context it returns to, and the thread runs on at full speed until the
//!   next switch into a goroutine arms it again. The kernel clears TF
//!   while a handler runs, and a preemption-signal handler that redirects
//!   a stepped goroutine leaves TF set in what the stub saves and
//!   restores, so stepping follows the goroutine through the stub.
//!
//! # The trial at boundary k
//!
//! One run per k. At boundary k the handler does what the monitor and the
//! preemption signal's handler would do at that PC: it makes a stop
//! request for the running goroutine (the request word and the poisoned
//! stack guard, [`Fx::guard_only`]: atomics only) and asks [`decide`] with it.
//!
//! - `Redirect`: `push_call` into the `preempt_stub` stub, exactly as the
//!   signal handler does ([`worker::redirect`]); TF is cleared, so the rest
//!   of the run is not stepped. The goroutine saves every register, parks
//!   through the scheduler (other goroutines may run meanwhile) and
//!   resumes at the instruction it was stopped before.
//! - `Retry(reason)`: boundary k is *unsafe*, counted by reason. The
//!   request stays pending, as in the runtime, and the handler asks again
//!   at every following boundary (a monitor that re-signals at once) until
//!   a redirect happens or the goroutine honours the request by itself (a
//!   function entry's stack check, a runtime call).
//!
//! With `--request-lead L` the request is made L boundaries earlier than
//! the question, as the monitor's request always precedes its signal: the
//! instructions in between run with the request pending, so a prologue's
//! stack check sees the poisoned guard and calls the runtime, and a
//! function entry or a runtime call may honour the request before the
//! boundary is reached ("stopped before the boundary").
//!
//! # The trial under the other modes
//!
//! Under `coop`, `poll`, `trap` and `patch` the stop at boundary k is the
//! mode's own, as the monitor makes it: the request (flag and guard) and
//! then the arming (the request's effect, [`Fx`]: the poll word, the poll page or the
//! global page, the function's back-edges patched; nothing more in
//! `coop`). The handler does not arm by itself: arming takes a lock and,
//! for `patch` and `--trap-arm mprotect`, makes system calls whose effect
//! other cores must see (and patching never happens in a handler); the
//! run's armer thread does it while the handler waits on a futex
//! ([`armer`]). The goroutine then runs on, still stepped, until it enters
//! the stub through its yield path (counted "at a back-edge"), is found
//! with its request cleared at a later boundary (it stopped by itself at
//! a function entry or a runtime call), or the run ends ("never"). Under
//! `patch`, a boundary in another function than the patched one has the
//! patch moved, as the monitor's re-request does ([`rerequest`] with
//! [`Again::Follow`]).
//!
//! A counting run first steps the program without preempting it, records
//! the PC of each boundary and checks that stepping alone changes nothing.
//! Each trial checks that its boundary k was at the same PC ("diverged"
//! counts those that were not: a program whose instruction stream depends
//! on time, such as `now`, `sleep` or `ccall`, is not deterministic).
//!
//! With more than one P (`--procs`), boundaries of several goroutines
//! interleave in an order that depends on timing: "boundary k" is then a
//! different instruction from run to run (the summary counts them as
//! diverged), and a boundary of another goroutine, which has no request,
//! ends the follow-up of a declined one as if it had stopped by itself.
//!
//! The cost is quadratic: trial k steps k boundaries, each a trap and a
//! `sigreturn` (some 20 µs in the development VM, nearly all of it in the
//! kernel). `--limit` bounds k; `--first` starts further in.
//!
//! # The signal storm (aarch64, and `--storm`)
//!
//! aarch64 has no user-mode single-step (PSTATE.SS needs MDSCR_EL1.SS,
//! which only ptrace sets). There, `--every-instruction` runs the program
//! many times under a storm instead ([`storm`]): a thread of the runtime
//! requests a stop of whatever runs (the flag and the poisoned guard) and
//! signals its worker back to back, to the runtime's own handler. Which
//! boundaries the signals land on is up to the hardware; the report says
//! how many of the program's instruction boundaries saw a redirect, and
//! how many a declining handler. Under qemu-user, signals are only taken
//! between translated blocks; `QEMU_SINGLESTEP=1` makes every instruction
//! a block, so that a signal can land on every boundary.
//!
//! # Fault injection
//!
//! `--inject-fault flags` makes every redirect invert the interrupted
//! condition flags before the stub saves them, as a stub that clobbered
//! them first would: the harness must then report mismatches at the
//! boundaries between a compare and its branch or `setcc`, and does.
//! `--unsafe-points ignore` makes `decide` take every PC of a JIT function
//! as safe. Today that breaks nothing this harness can see: the stub
//! saves everything wherever it lands, and the frame regions protect what
//! only a stack walk needs (the GC's, to come).
//!
//! # What it found
//!
//! - A stop request pending at a function entry sends the prologue's check
//!   to its out-of-line path, which no unsafe region covered: a redirect
//!   there honoured the request, and the runtime call that followed found
//!   an unpoisoned guard and reported a stack overflow (stepping, x86-64,
//!   the first run). The path is now frame set-up.
//! - aarch64 LL/SC regions ran past the store-exclusive: a goroutine
//!   stopped after a successful store restarted the sequence, and
//!   `cas.atomic` then failed and its retry loop swapped again (the storm
//!   under qemu-user). The regions now end with the store.
//! - The monitor withdraws a request whose slice ended while it was made;
//!   a goroutine already in its next slice could see the poisoned guard
//!   first, and the withdrawal turned its stack check into a reported
//!   overflow (the storm under qemu-user). The runtime now compares the
//!   goroutine's SP with the real guard before it reports an overflow.
//!
//! A fault that crashes the process (a corrupted pointer) ends the
//! harness with it: runs share the process.
//!
//! [`Fx::guard_only`]: preempt_runtime::preempt::effect::Fx::guard_only
//! [`Fx`]: preempt_runtime::preempt::effect::Fx
//! [`rerequest`]: preempt_runtime::preempt::Requester::rerequest
//! [`Again::Follow`]: preempt_runtime::preempt::Again::Follow
//! [`decide`]: preempt_runtime::preempt::decide::decide
//! [`worker::redirect`]: preempt_runtime::preempt::worker::redirect

pub(crate) mod armer;
pub mod probe;
pub(crate) mod step;
pub(crate) mod storm;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use preempt_jit::code::disasm;
use preempt_jit::ir::PreemptMode;
use preempt_jit::module::Module;
use preempt_signals::context::SINGLE_STEP;

pub use probe::{Fault, Probe, ProbeMode, Stop, Verdict};

use preempt_runtime::{Observers, Output, RunConfig, RunStats};

/// How to stress a program.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Single-step where the hardware allows it; a storm elsewhere.
    EveryInstruction,
    /// A storm of preemption signals.
    Storm,
}

/// What the harness does.
#[derive(Clone, Debug)]
pub struct Options {
    pub mode: Mode,
    /// The first boundary tried, and how many.
    pub first: u64,
    pub limit: u64,
    /// Make the stop request this many boundaries before asking `decide`.
    pub request_lead: u64,
    /// Storm runs, and the pause between two signals.
    pub runs: u64,
    pub interval: Duration,
    pub fault: Fault,
    /// Stop after this many mismatches.
    pub max_mismatches: usize,
    /// The report's first line.
    pub title: String,
    /// Told what the harness is doing before each run (the boundary or
    /// the storm run, of how many): `preempt stress` shows it on a
    /// terminal.
    pub progress: fn(&str),
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mode: Mode::EveryInstruction,
            first: 1,
            limit: 2000,
            request_lead: 0,
            runs: 20,
            interval: Duration::from_micros(5),
            fault: Fault::None,
            max_mismatches: 10,
            title: String::from("preempt stress"),
            progress: |_| {},
        }
    }
}

/// What a run printed and how it ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RunResult {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A run whose result was not the reference's.
#[derive(Clone, Debug)]
pub struct Mismatch {
    /// "boundary 123", "run 4", "stepping only".
    pub label: String,
    /// Where the preemption was, and what the handler did.
    pub place: Vec<String>,
    pub got: RunResult,
}

impl Mismatch {
    /// The watchdog ended the run: its goroutine may still be running on
    /// a thread of this process, so the harness stops there.
    fn timed_out(&self) -> bool {
        self.got.status == 3
    }
}

/// What the stepping harness saw.
#[derive(Clone, Debug, Default)]
pub struct StepSummary {
    pub first: u64,
    pub last: u64,
    /// Boundaries the program has (when `more` is false), or at least.
    pub boundaries: u64,
    pub more: bool,
    pub tried: u64,
    pub redirected: u64,
    /// Declined at the boundary itself, by reason.
    pub unsafe_by_reason: BTreeMap<&'static str, u64>,
    /// After a declined boundary: redirected later, stopped by itself,
    /// request still pending at the end.
    pub later_redirect: u64,
    pub later_cooperative: u64,
    pub never_stopped: u64,
    /// The request (made `lead` boundaries early) was honoured before the
    /// boundary.
    pub stopped_before: u64,
    pub lead: u64,
    /// Boundary k not at the PC the counting run saw there.
    pub diverged: u64,
    pub traps: u64,
    /// The runs' mode; the fields below are for modes other than `async`.
    pub mechanism: PreemptMode,
    /// Armed through the mode's mechanism at the boundary.
    pub armed: u64,
    /// Then: stopped through the yield path (a back-edge), stopped by
    /// itself (a function entry, a runtime call), or not at all before
    /// the run ended.
    pub armed_yield: u64,
    pub armed_cooperative: u64,
    pub armed_never: u64,
    /// Runs in which the armer did not answer the handler in time.
    pub arm_timeouts: u64,
}

impl StepSummary {
    pub fn unsafe_total(&self) -> u64 {
        self.unsafe_by_reason.values().sum()
    }
}

/// What the storm harness saw.
#[derive(Clone, Debug, Default)]
pub struct StormSummary {
    pub runs: u64,
    pub interval: Duration,
    /// The runs' mode: `async` signals; the others arm.
    pub mechanism: PreemptMode,
    pub signals_sent: u64,
    /// Arms made (modes other than `async`).
    pub arms: u64,
    /// Stub entries: a handler redirected the goroutine.
    pub redirected: u64,
    /// Handlers that declined, by reason.
    pub declined: BTreeMap<&'static str, u64>,
    /// Requests the goroutine honoured by itself.
    pub cooperative: u64,
    /// `QEMU_SINGLESTEP` was set (emulated runs deliver signals at every
    /// instruction boundary only then).
    pub qemu_singlestep: bool,
}

/// The harness's findings.
#[derive(Clone, Debug)]
pub struct Report {
    pub title: String,
    /// What ran, and why that (e.g. no single-step on this architecture).
    pub mode: String,
    pub reference: RunResult,
    pub step: Option<StepSummary>,
    pub storm: Option<StormSummary>,
    /// Static instruction boundaries of the program's functions, and
    /// those at which a redirect, or a declining handler, happened.
    pub static_boundaries: usize,
    pub redirected_at: BTreeSet<usize>,
    pub declined_at: BTreeSet<usize>,
    pub mismatches: Vec<Mismatch>,
    pub stopped_early: bool,
    pub elapsed: Duration,
}

/// Stresses `module` (whose globals start as `inits`) under `cfg`. An
/// error is a program that cannot be stressed (it does not end), or a
/// harness that cannot be set up.
///
/// The runs use `cfg.mode` (and `cfg.trap_arm`), which the module must have
/// been compiled for. `async` stops the goroutine as the signal's handler
/// does (`decide`, then a redirect); the other modes through their own
/// mechanism, as the monitor does: `poll`, `trap` and `patch` arm the
/// goroutine at the boundary and it stops at its next back-edge (or by
/// itself first); `coop` makes the request alone.
pub fn run(
    module: &Arc<Module>,
    inits: &[i64],
    cfg: &RunConfig,
    opts: &Options,
) -> Result<Report, String> {
    let start = Instant::now();
    let cfg = RunConfig {
        quantum: Duration::from_secs(1 << 20),
        hang_threshold: Duration::ZERO,
        ..cfg.clone()
    };
    let harness = Trials {
        module,
        inits,
        cfg: &cfg,
        starts: instruction_starts(module),
    };
    let (reference, _) = harness.run(None);
    if reference.status == 3 {
        // Every run would time out too, and leave its thread spinning.
        return Err(format!(
            "preempt stress: {}: the reference run did not finish in time (--timeout): \
             only a program that ends can be compared",
            cfg.file
        ));
    }
    let stepping = opts.mode == Mode::EveryInstruction && SINGLE_STEP;
    let arch = module.arch.name();
    let mut report = Report {
        title: opts.title.clone(),
        mode: String::new(),
        reference,
        step: None,
        storm: None,
        static_boundaries: harness.starts.len(),
        redirected_at: BTreeSet::new(),
        declined_at: BTreeSet::new(),
        mismatches: Vec::new(),
        stopped_early: false,
        elapsed: Duration::ZERO,
    };
    if stepping {
        report.mode = format!(
            "every instruction: single-stepped with the trap flag ({arch}), one preemption per run"
        );
        step::install()
            .map_err(|e| format!("preempt stress: cannot install the SIGTRAP handler: {e}"))?;
        harness.every_instruction(opts, &mut report);
    } else {
        report.mode = match opts.mode {
            Mode::EveryInstruction => format!(
                "signal storm: {arch} has no user-mode single-step, so the preemption signal is sent back to back instead"
            ),
            Mode::Storm => format!("signal storm ({arch})"),
        };
        harness.storm(opts, &mut report);
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

/// The counting run records the PCs of this many boundaries at most (for
/// the divergence check).
const RECORDED_PCS: usize = 1 << 22;

struct Trials<'a> {
    module: &'a Arc<Module>,
    inits: &'a [i64],
    cfg: &'a RunConfig,
    starts: Arc<[usize]>,
}

impl Trials<'_> {
    /// One run of the program, watched by `probe`.
    fn run(&self, probe: Option<Arc<Probe>>) -> (RunResult, Arc<RunStats>) {
        for (w, &v) in self.module.globals.words().iter().zip(self.inits) {
            w.store(v as u64, std::sync::atomic::Ordering::SeqCst);
        }
        let stats = Arc::new(RunStats::default());
        let obs = Observers {
            stats: stats.clone(),
            harness: probe.map(|p| p as Arc<dyn preempt_runtime::harness::Harness>),
            ..Observers::default()
        };
        let (out, captured) = Output::capture();
        let o = preempt_runtime::sched::run(self.module.clone(), self.cfg, &obs, out);
        let r = RunResult {
            status: o.status,
            stdout: captured.text(),
            stderr: o.stderr,
        };
        (r, stats)
    }

    fn every_instruction(&self, opts: &Options, report: &mut Report) {
        let first = opts.first.max(1);
        let last = first.saturating_add(opts.limit.max(1) - 1);
        // The counting run: stepped, never preempted, one boundary past
        // the last to know whether the program goes on.
        let counting = Arc::new(Probe::new(
            ProbeMode::Step {
                target: u64::MAX,
                request_at: u64::MAX,
                stop_after: last.saturating_add(1),
            },
            Fault::None,
            self.starts.clone(),
            usize::try_from(last)
                .unwrap_or(usize::MAX)
                .min(RECORDED_PCS),
        ));
        let (counted, _) = self.run(Some(counting.clone()));
        let boundaries = counting.boundaries();
        let pcs = counting.pcs();
        let mut s = StepSummary {
            first,
            last: last.min(boundaries),
            boundaries: boundaries.min(last),
            more: boundaries > last,
            lead: opts.request_lead,
            traps: counting.traps(),
            mechanism: self.cfg.mode,
            ..StepSummary::default()
        };
        if counted != report.reference {
            report.mismatches.push(Mismatch {
                label: "stepping only".into(),
                place: vec!["single-stepped, never preempted".into()],
                got: counted,
            });
        }
        for k in first..=s.last {
            if report.mismatches.len() >= opts.max_mismatches {
                report.stopped_early = true;
                break;
            }
            (opts.progress)(&format!("boundary {k} of {first}..={}", s.last));
            let probe = Arc::new(
                Probe::new(
                    ProbeMode::Step {
                        target: k,
                        request_at: k.saturating_sub(opts.request_lead).max(1),
                        stop_after: u64::MAX,
                    },
                    opts.fault,
                    self.starts.clone(),
                    0,
                )
                .with_mechanism(self.cfg.mode),
            );
            let (got, _) = self.run(Some(probe.clone()));
            s.tried += 1;
            s.traps += probe.traps();
            let (pc, verdict) = probe.target();
            let stop = probe.stop();
            match verdict {
                Verdict::Redirected => s.redirected += 1,
                Verdict::Declined(r) => {
                    *s.unsafe_by_reason.entry(r.name()).or_default() += 1;
                    match stop {
                        Stop::Redirected { .. } => s.later_redirect += 1,
                        Stop::Cooperative { .. } => s.later_cooperative += 1,
                        Stop::Never => s.never_stopped += 1,
                    }
                }
                Verdict::StoppedBefore => s.stopped_before += 1,
                Verdict::Armed => {
                    s.armed += 1;
                    match stop {
                        Stop::Redirected { .. } => s.armed_yield += 1,
                        Stop::Cooperative { .. } => s.armed_cooperative += 1,
                        Stop::Never => s.armed_never += 1,
                    }
                }
                Verdict::NotReached => {}
            }
            let timed_out = probe.arm_timeouts() > 0;
            s.arm_timeouts += u64::from(timed_out);
            let seen = pcs.get((k - 1) as usize);
            if verdict == Verdict::NotReached || seen.is_some_and(|&p| p != pc) {
                s.diverged += 1;
            }
            report.redirected_at.extend(probe.redirected_pcs());
            report.declined_at.extend(probe.declined_pcs());
            if got != report.reference || timed_out {
                let mut place = vec![match verdict {
                    Verdict::NotReached => "not reached in this run".to_string(),
                    _ => format!("pc {pc:#x} = {}", self.module.describe_pc(pc)),
                }];
                if timed_out {
                    place.push(format!(
                        "the armer did not answer the trap handler within {} s: the boundary was not armed",
                        armer::ANSWER_WITHIN.as_secs()
                    ));
                }
                place.push(match (verdict, stop) {
                    (Verdict::Redirected, _) => "redirected into the stub there".into(),
                    (Verdict::Declined(r), Stop::Redirected { boundary, pc }) => format!(
                        "{}: declined; redirected at boundary {boundary}, pc {pc:#x} = {}",
                        r.name(),
                        self.module.describe_pc(pc)
                    ),
                    (Verdict::Declined(r), Stop::Cooperative { boundary }) => format!(
                        "{}: declined; the goroutine stopped by itself (seen at boundary {boundary})",
                        r.name()
                    ),
                    (Verdict::Declined(r), Stop::Never) => {
                        format!("{}: declined; the request was still pending at the end", r.name())
                    }
                    (Verdict::StoppedBefore, _) => {
                        "the request was honoured before the boundary".into()
                    }
                    (Verdict::Armed, Stop::Redirected { boundary, pc }) => format!(
                        "armed ({}); it took its yield path after boundary {boundary}, pc {pc:#x} = {}",
                        self.cfg.mode,
                        self.module.describe_pc(pc)
                    ),
                    (Verdict::Armed, Stop::Cooperative { boundary }) => format!(
                        "armed ({}); the goroutine stopped by itself (seen at boundary {boundary})",
                        self.cfg.mode
                    ),
                    (Verdict::Armed, Stop::Never) => format!(
                        "armed ({}); the request was still pending at the end",
                        self.cfg.mode
                    ),
                    (Verdict::NotReached, _) => "the run ended before it".into(),
                });
                let m = Mismatch {
                    label: format!("boundary {k}"),
                    place,
                    got,
                };
                if report.record(m) {
                    break;
                }
            }
        }
        report.step = Some(s);
    }

    fn storm(&self, opts: &Options, report: &mut Report) {
        let interval_ns = u64::try_from(opts.interval.as_nanos()).unwrap_or(u64::MAX);
        let mut s = StormSummary {
            interval: opts.interval,
            mechanism: self.cfg.mode,
            qemu_singlestep: std::env::var("QEMU_SINGLESTEP").is_ok_and(|v| v != "0"),
            ..StormSummary::default()
        };
        for i in 1..=opts.runs.max(1) {
            if report.mismatches.len() >= opts.max_mismatches {
                report.stopped_early = true;
                break;
            }
            (opts.progress)(&format!("storm run {i} of {}", opts.runs.max(1)));
            let probe = Arc::new(
                Probe::new(
                    ProbeMode::Storm { interval_ns },
                    opts.fault,
                    self.starts.clone(),
                    0,
                )
                .with_mechanism(self.cfg.mode),
            );
            let (got, stats) = self.run(Some(probe.clone()));
            s.runs += 1;
            let c = stats.sched.counters();
            s.signals_sent += c.signals_sent;
            if let Some((arm, _)) = preempt_runtime::stats::arm_names(self.cfg.mode) {
                s.arms += stats.sched.samples(arm);
            }
            s.redirected += stats.preempt_stub_entries();
            for (reason, n) in stats.sched.retries() {
                *s.declined.entry(reason).or_default() += n;
            }
            s.cooperative += stats.sched.preemptions(
                preempt_runtime::stats::PreemptKind::Quantum,
                PreemptMode::Coop,
            );
            let here = probe.redirected_pcs();
            report.redirected_at.extend(here.iter().copied());
            report.declined_at.extend(probe.declined_pcs());
            if got != report.reference {
                let mut place = vec![format!(
                    "{} redirects in this run, at {} distinct instruction boundaries:",
                    stats.preempt_stub_entries(),
                    here.len()
                )];
                place.extend(
                    here.iter()
                        .take(12)
                        .map(|&pc| format!("  {}", self.module.describe_pc(pc))),
                );
                if here.len() > 12 {
                    place.push("  ...".into());
                }
                let m = Mismatch {
                    label: format!("run {i}"),
                    place,
                    got,
                };
                if report.record(m) {
                    break;
                }
            }
        }
        report.storm = Some(s);
    }
}

/// The start of every machine instruction of the module's functions,
/// sorted.
pub fn instruction_starts(module: &Module) -> Arc<[usize]> {
    let base = module.code.base();
    let code = module.code.bytes();
    let mut starts: Vec<usize> = module
        .tables
        .functions
        .iter()
        .flat_map(|f| disasm::decode(module.arch, code, f.start - base, f.end - base))
        .map(|d| d.offset + base)
        .collect();
    starts.sort_unstable();
    starts.into()
}

/// The lines in which `got` differs from `expected`, at most a few.
fn diff(expected: &str, got: &str) -> Vec<String> {
    let e: Vec<&str> = expected.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let mut out = Vec::new();
    for i in 0..e.len().max(g.len()) {
        let (a, b) = (e.get(i), g.get(i));
        if a == b {
            continue;
        }
        if out.len() == 4 {
            out.push("...".to_string());
            break;
        }
        let show = |l: Option<&&str>| l.map_or("(no line)".to_string(), |l| format!("{l:?}"));
        out.push(format!(
            "line {}: expected {}, got {}",
            i + 1,
            show(a),
            show(b)
        ));
    }
    out
}

fn count_lines(s: &str) -> usize {
    s.lines().count()
}

impl Report {
    pub fn mismatch_count(&self) -> usize {
        self.mismatches.len()
    }

    /// Records a mismatch; true if the harness must stop here (the
    /// watchdog ended the run).
    fn record(&mut self, m: Mismatch) -> bool {
        self.stopped_early = m.timed_out();
        self.mismatches.push(m);
        self.stopped_early
    }

    /// The summary, as `preempt stress` prints it.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let r = &self.reference;
        let _ = writeln!(o, "{}", self.title);
        let _ = writeln!(o, "mode: {}", self.mode);
        let _ = writeln!(
            o,
            "reference run: exit {}, {} line(s) of stdout",
            r.status,
            count_lines(&r.stdout)
        );
        if let Some(s) = &self.step {
            let _ = writeln!(
                o,
                "JIT instruction boundaries executed: {}{}",
                s.boundaries,
                if s.more { " or more" } else { "" }
            );
            let _ = writeln!(
                o,
                "boundaries tried: {} ({}..={}), in {} runs{}",
                s.tried,
                s.first,
                s.last,
                s.tried + 2,
                if s.lead > 0 {
                    format!("; the request made {} boundaries before", s.lead)
                } else {
                    String::new()
                }
            );
            if s.mechanism == PreemptMode::Async {
                let _ = writeln!(
                    o,
                    "  redirected:  {:>7}  (parked through the scheduler, resumed at the same instruction)",
                    s.redirected
                );
                let _ = writeln!(o, "  unsafe:      {:>7}", s.unsafe_total());
                for (reason, n) in &s.unsafe_by_reason {
                    let _ = writeln!(
                        o,
                        "    {:<34} {n:>7}",
                        reason.trim_start_matches("unsafe: ")
                    );
                }
            } else {
                let how = match s.mechanism {
                    PreemptMode::Poll => "its poll word set",
                    PreemptMode::Trap => "its poll page made to fault",
                    PreemptMode::Patch => "its function's back-edges patched",
                    PreemptMode::Coop | PreemptMode::Async => {
                        "the request alone, as coop has no more"
                    }
                };
                let _ = writeln!(
                    o,
                    "  armed:       {:>7}  (through --preempt {}'s own mechanism, as the monitor arms: {how})",
                    s.armed, s.mechanism
                );
                let _ = writeln!(
                    o,
                    "    at a back-edge:  {:>7}  (took the yield path into the stub; parked, resumed there)",
                    s.armed_yield
                );
                let _ = writeln!(
                    o,
                    "    by itself:       {:>7}  (a function entry's stack check or a runtime call first)",
                    s.armed_cooperative
                );
                let _ = writeln!(
                    o,
                    "    never:           {:>7}  (the run ended first)",
                    s.armed_never
                );
                if s.arm_timeouts > 0 {
                    let _ = writeln!(
                        o,
                        "  ARM TIMEOUTS: {:>7}  (the armer did not answer the trap handler)",
                        s.arm_timeouts
                    );
                }
            }
            if s.unsafe_total() > 0 {
                let _ = writeln!(
                    o,
                    "    then: redirected at a later boundary {}, stopped by itself {}, never {}",
                    s.later_redirect, s.later_cooperative, s.never_stopped
                );
            }
            if s.lead > 0 {
                let _ = writeln!(
                    o,
                    "  stopped before the boundary: {:>7}  (the early request was honoured first)",
                    s.stopped_before
                );
            }
            let _ = writeln!(
                o,
                "  diverged:    {:>7}  (boundary not at the counting run's PC)",
                s.diverged
            );
            let _ = writeln!(o, "single-step traps: {}", s.traps);
        }
        if let Some(s) = &self.storm {
            let _ = writeln!(
                o,
                "runs: {}, {} every {} us at most{}",
                s.runs,
                if s.mechanism == PreemptMode::Async {
                    "a signal"
                } else {
                    "a request"
                },
                s.interval.as_secs_f64() * 1e6,
                if s.qemu_singlestep {
                    " (QEMU_SINGLESTEP set: under qemu-user, signals land between any two instructions)"
                } else {
                    ""
                }
            );
            if s.mechanism == PreemptMode::Async {
                let _ = writeln!(o, "  signals sent: {:>9}", s.signals_sent);
            } else {
                let _ = writeln!(
                    o,
                    "  arms:         {:>9}  (through --preempt {}'s own mechanism; no signal)",
                    s.arms, s.mechanism
                );
            }
            let _ = writeln!(
                o,
                "  {:<13} {:>9}  (parked through the scheduler, resumed at the same instruction)",
                if s.mechanism == PreemptMode::Async {
                    "redirected:"
                } else {
                    "at back-edges:"
                },
                s.redirected
            );
            if s.mechanism == PreemptMode::Async {
                let declined: u64 = s.declined.values().sum();
                let _ = writeln!(o, "  declined:     {declined:>9}");
                for (reason, n) in &s.declined {
                    let _ = writeln!(o, "    {reason:<34} {n:>7}");
                }
            }
            let _ = writeln!(
                o,
                "  stopped by themselves: {:>9}  (a request honoured at a function entry or runtime call)",
                s.cooperative
            );
        }
        let async_mode = self.step.as_ref().map(|s| s.mechanism) == Some(PreemptMode::Async)
            || self.storm.as_ref().map(|s| s.mechanism) == Some(PreemptMode::Async);
        if async_mode {
            let _ = writeln!(
                o,
                "instruction boundaries of the program's functions: {}; redirected at {} of them, declined at {}",
                self.static_boundaries,
                self.redirected_at.len(),
                self.declined_at.len()
            );
        } else {
            let _ = writeln!(
                o,
                "instruction boundaries of the program's functions: {}; the yield path taken after {} of them",
                self.static_boundaries,
                self.redirected_at.len()
            );
        }
        let _ = writeln!(o, "time: {:.1} s", self.elapsed.as_secs_f64());
        let _ = writeln!(
            o,
            "mismatches: {}{}",
            self.mismatches.len(),
            match self.mismatches.last() {
                Some(m) if self.stopped_early && m.timed_out() => {
                    " (stopped there: a run did not finish, and its thread may still be running)"
                }
                _ if self.stopped_early => " (stopped there)",
                _ => "",
            }
        );
        for m in &self.mismatches {
            let _ = writeln!(o, "MISMATCH at {}:", m.label);
            for p in &m.place {
                let _ = writeln!(o, "  {p}");
            }
            if m.got.status != r.status {
                let _ = writeln!(o, "  exit status {}, expected {}", m.got.status, r.status);
            }
            for d in diff(&r.stdout, &m.got.stdout) {
                let _ = writeln!(o, "  stdout {d}");
            }
            if m.got.stderr != r.stderr {
                for l in m.got.stderr.lines().take(2) {
                    let _ = writeln!(o, "  stderr: {l}");
                }
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_the_lines_that_differ() {
        assert!(diff("a\nb\n", "a\nb\n").is_empty());
        assert_eq!(
            diff("a\nb\n", "a\nc\nd\n"),
            vec![
                "line 2: expected \"b\", got \"c\"".to_string(),
                "line 3: expected (no line), got \"d\"".to_string()
            ]
        );
        let many = diff("1\n2\n3\n4\n5\n6\n", "");
        assert_eq!(many.len(), 5);
        assert_eq!(many[4], "...");
    }
}
