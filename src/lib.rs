//! The `preempt` command line: argument parsing, output formats, exit codes.
//!
//! Exit statuses (IR.md): 0 success; 1 panic, assertion or fatal error;
//! 2 bad usage or a file that does not parse or verify; 3 the watchdog
//! ended a program that did not finish in time.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use preempt_jit::ir::PreemptMode;
use preempt_jit::ir::{self, Program};
use preempt_jit::module::{Arch, Module};
use preempt_runtime::affinity::{self, CpuList};
use preempt_runtime::gc::GcFault;
use preempt_runtime::preempt::asynchronous::AsyncStop;
use preempt_runtime::preempt::decide::UnsafePoints;
use preempt_runtime::preempt::qtimer::QuantumTimer;
use preempt_runtime::{Observers, Outcome, Output, RunConfig};

use console::{errln, out, outln};
pub(crate) use values::parse_duration;
pub use values::Timeout;
use values::{parse_signal, parse_size, parse_timeout};

pub mod alloc;
mod bench;
pub mod bugs;
pub mod compare;
pub mod console;
mod debugvars;
mod demo;
mod dist_docs;
pub mod embedded;
pub mod expect;
mod outputs;
mod soak;
mod stats;
mod stress;
mod values;

const EXAMPLES: &str = "\
Examples:
  preempt run examples/sum.pir                 run on the JIT (opt 1)
  preempt run examples/hoist.pir -O0           the spinner sees the store and ends
  preempt run examples/hoist.pir --timeout 2   the hoisted load hangs; the watchdog says where
  preempt run examples/sum.pir --engine interp run on the reference interpreter
  preempt check examples/hoist.pir             parse and verify only
  preempt disasm examples/hoist.pir -O1        annotated machine code: the load left the loop
  preempt stress examples/stress/calls.pir     preempt at every instruction boundary, compare
  preempt soak                                 every checked program under every mechanism, many times
  preempt bugs 1                               the seed's bug 1 on preempt and Go, claim by claim
  preempt dist-docs ~/.local/share/preempt     shell completions and man pages
  preempt compare old.json new.json            two `bench --json` results, benchstat-style

Exit status: 0 ok, 1 panic or fatal error, 2 bad usage or a file that does not
parse or verify, 3 the watchdog ended the program.";

#[derive(Parser, Debug)]
#[command(
    name = "preempt",
    version,
    about = "A laboratory for goroutine preemption: PIR, JIT-compiled, run as goroutines",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum EngineArg {
    /// Compile to machine code.
    Jit,
    /// The reference interpreter.
    Interp,
}

/// `--sched`: how the monitor times slices.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum SchedArg {
    Precise,
    Go,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum ArchArg {
    #[value(name = "x86_64", alias = "amd64")]
    X86_64,
    #[value(name = "aarch64", alias = "arm64")]
    Aarch64,
}

impl From<ArchArg> for Arch {
    fn from(a: ArchArg) -> Arch {
        match a {
            ArchArg::X86_64 => Arch::X86_64,
            ArchArg::Aarch64 => Arch::Aarch64,
        }
    }
}

/// How the runtime runs a program (flags override the file's `set` lines).
#[derive(clap::Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// Ps (GOMAXPROCS): goroutines running at once. Default: the file's
    /// `set procs`, else $GOMAXPROCS, else the number of CPUs.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub procs: Option<u64>,
    /// How running goroutines are stopped. Default: the file's `set
    /// preempt`, else async; PREEMPTDEBUG=asyncpreemptoff=1 gives coop
    /// unless this flag is given (the flag wins, and a line says so).
    #[arg(long, value_enum)]
    pub preempt: Option<ModeArg>,
    /// The time slice before the monitor asks a goroutine to stop (e.g.
    /// 10ms, 500us; a bare number is microseconds). Default: `set
    /// quantum_us`, else 10ms.
    #[arg(long, value_parser = parse_duration)]
    pub quantum: Option<Duration>,
    /// The monitor's tick, shortest and longest (Go: 20us, backing off to 10ms).
    #[arg(long, default_value = "20us", value_parser = parse_duration)]
    pub sysmon_tick: Duration,
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub sysmon_max_tick: Duration,
    /// How the monitor times slices and foreign calls: `precise` (a
    /// request within 1.1 quanta; entering foreign code wakes it) or `go`
    /// (as Go's sysmon and retake: slices seen on a backed-off tick, 10-20
    /// ms under a busy goroutine; only a deep-sleeping monitor is woken by
    /// foreign code).
    #[arg(long, value_enum, default_value_t = SchedArg::Precise)]
    pub sched: SchedArg,
    /// Report a goroutine still running this long after a preemption
    /// request, with why it does not stop (0 turns it off).
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub hang_threshold: Duration,
    #[command(flatten)]
    pub limits: RunLimits,
    /// When a goroutine does not stop because something replaced the
    /// preemption signal's handler (SIG_IGN from foreign code, say), put the
    /// runtime's handler back once the hang is reported.
    #[arg(long)]
    pub reinstall_preempt_handler: bool,
    /// Pin the process and every thread of the run (the Ms, the monitor,
    /// the timers, the collector) to these CPUs, as `taskset -c LIST`
    /// would: a list such as 0, 0-1 or 0,2-3. The default number of Ps is
    /// then the number of CPUs listed (as Go under taskset).
    #[arg(long, value_name = "LIST", value_parser = CpuList::parse)]
    pub cpus: Option<CpuList>,
    /// Print scheduler statistics to stderr at the end.
    #[arg(long)]
    pub stats: bool,
    /// Also write the statistics as JSON to FILE (durations in ns).
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Write the scheduling timeline as Chrome trace-event JSON (open it in
    /// Perfetto or chrome://tracing): a track per M, per P and per
    /// goroutine, GC and stop-the-world spans, every request, signal,
    /// handler decision and stop.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// A line on stderr per stop, as the JVM's -Xlog:safepoint: each
    /// preemption (goroutine, mechanism, request-to-stop time, where it
    /// stopped, signals and declines) and each stop of the world.
    #[arg(long)]
    pub log_stops: bool,
}

/// The run settings `run` and `stress` share.
#[derive(clap::Args, Debug, Clone)]
pub struct RunLimits {
    /// End the program (exit 3, with a diagnosis) after this long: seconds
    /// (a bare number), a duration with its unit (2s, 500ms), or `none`.
    #[arg(long, default_value = "10", value_parser = parse_timeout)]
    pub timeout: Timeout,
    /// How far a goroutine stack may grow (suffixes k, m, g): stacks start at 1,920 bytes and double by copying up to this size; past it, `fatal error: stack overflow`.
    #[arg(long, default_value = "64m", value_parser = parse_size)]
    pub stack_size: usize,
    /// The signal asynchronous preemption sends (a name such as SIGURG or
    /// USR1, or a number).
    #[arg(long, default_value = "SIGURG", value_parser = parse_signal)]
    pub preempt_signal: libc::c_int,
    /// Whether the preemption-signal handler honours the compiler's unsafe
    /// regions. `ignore` is fault injection: every PC of a JIT function is
    /// taken as safe, to show what the tables prevent.
    #[arg(long, value_enum, default_value = "honour")]
    pub unsafe_points: UnsafePointsArg,
    /// How `--preempt trap` arms a goroutine: `page` swaps its poll-page
    /// pointer to a page that faults (JEP 312's thread-local handshake);
    /// `mprotect` protects the one global poll page every goroutine loads
    /// from (every looping goroutine faults; the others go on).
    #[arg(long, value_enum, default_value = "page")]
    pub trap_arm: TrapArmArg,
    /// How `--preempt async`'s signal handler stops a goroutine: `handoff`
    /// writes the preemption stub's frame itself and leaves for the
    /// scheduler without returning (x86-64; aarch64 redirects);
    /// `redirect` sends the thread into the stub and returns, as Go's
    /// handler does (a `sigreturn`, then the stub's saves).
    #[arg(long, value_enum, default_value = "handoff")]
    pub async_stop: AsyncStopArg,
    /// Who ends time slices under `--preempt async`: `monitor` (its look
    /// at every P, as Go's sysmon) or `thread` (each worker's own POSIX
    /// timer raises the preemption signal on its own CPU at the quantum's
    /// end; the monitor then asks only after two quanta, as a backstop)
    #[arg(long, value_enum, default_value = "monitor")]
    pub quantum_timer: QuantumTimerArg,
    /// Check every garbage collection: every object reachable from the
    /// roots must be marked, and freed objects are poisoned so that a later
    /// use is a fatal error (JIT engine).
    #[arg(long)]
    pub gc_verify: bool,
    /// Interleave marking with the program: 64 times a mark phase, spread
    /// over the heap's objects, the concurrent marker waits (up to 100 ms)
    /// for the program's next pointer store, so that stores land between
    /// the marker's scans in every cycle, whatever the OS scheduler does
    /// (for testing write barriers; JIT engine; slows collections down).
    #[arg(long)]
    pub gc_interleave: bool,
    /// Inject a bug into the collector (to test --gc-verify).
    #[arg(long, value_enum, hide = true)]
    pub gc_inject: Option<GcFaultArg>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum GcFaultArg {
    /// The write barrier shades nothing.
    SkipBarrier,
    /// Mark start greys nothing from the ref globals.
    SkipGlobalRoots,
    /// The sweep frees marked objects too.
    FreeMarked,
    /// Mark start leaves the dead part of the stacks unzeroed.
    KeepDeadStackWords,
}

impl From<GcFaultArg> for GcFault {
    fn from(f: GcFaultArg) -> GcFault {
        match f {
            GcFaultArg::SkipBarrier => GcFault::SkipBarrier,
            GcFaultArg::SkipGlobalRoots => GcFault::SkipGlobalRoots,
            GcFaultArg::FreeMarked => GcFault::FreeMarked,
            GcFaultArg::KeepDeadStackWords => GcFault::KeepDeadStackWords,
        }
    }
}

impl RunLimits {
    /// These settings over `cfg`.
    pub fn apply(&self, file: &std::path::Path, cfg: RunConfig) -> RunConfig {
        RunConfig {
            file: file.display().to_string(),
            stack_size: self.stack_size,
            timeout: self.timeout.0,
            preempt_signal: self.preempt_signal,
            unsafe_points: self.unsafe_points.into(),
            trap_arm: match self.trap_arm {
                TrapArmArg::Page => preempt_runtime::preempt::trap::TrapArm::Page,
                TrapArmArg::Mprotect => preempt_runtime::preempt::trap::TrapArm::Mprotect,
            },
            quantum_timer: match self.quantum_timer {
                QuantumTimerArg::Monitor => QuantumTimer::Monitor,
                QuantumTimerArg::Thread => QuantumTimer::Thread,
            },
            async_stop: match self.async_stop {
                AsyncStopArg::Handoff => AsyncStop::Handoff,
                AsyncStopArg::Redirect => AsyncStop::Redirect,
            },
            gc_verify: self.gc_verify,
            gc_interleave: self.gc_interleave,
            gc_inject: self.gc_inject.map(GcFault::from),
            ..cfg
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum ModeArg {
    Coop,
    Async,
    Poll,
    Trap,
    Patch,
}

impl From<ModeArg> for PreemptMode {
    fn from(m: ModeArg) -> PreemptMode {
        match m {
            ModeArg::Coop => PreemptMode::Coop,
            ModeArg::Async => PreemptMode::Async,
            ModeArg::Poll => PreemptMode::Poll,
            ModeArg::Trap => PreemptMode::Trap,
            ModeArg::Patch => PreemptMode::Patch,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum QuantumTimerArg {
    Monitor,
    Thread,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum AsyncStopArg {
    Handoff,
    Redirect,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum TrapArmArg {
    Page,
    Mprotect,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum UnsafePointsArg {
    Honour,
    Ignore,
}

impl From<UnsafePointsArg> for UnsafePoints {
    fn from(u: UnsafePointsArg) -> UnsafePoints {
        match u {
            UnsafePointsArg::Honour => UnsafePoints::Honour,
            UnsafePointsArg::Ignore => UnsafePoints::Ignore,
        }
    }
}

impl RuntimeArgs {
    /// The run configuration for `prog` from these flags, the file's
    /// settings and the environment.
    pub fn config(&self, prog: &Program, file: &std::path::Path) -> Result<RunConfig, String> {
        let s = &prog.settings;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let flag = self.preempt.map(PreemptMode::from);
        let debug = std::env::var("PREEMPTDEBUG").unwrap_or_default();
        let (debug, said) = debugvars::parse(&debug, flag);
        for line in said {
            errln!("{line}");
        }
        let mode = match (flag, debug.coop) {
            (Some(m), _) => m,
            (None, true) => PreemptMode::Coop,
            (None, false) => s.preempt.unwrap_or(PreemptMode::Async),
        };
        // As Go: GOMAXPROCS from the environment when nothing else says;
        // the program's own `set procs` is its runtime.GOMAXPROCS call.
        let env_procs = std::env::var("GOMAXPROCS").ok().map(|v| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .ok_or_else(|| format!("GOMAXPROCS={v}: not a number of Ps from 1 to 1024"))
        });
        let env_procs = env_procs.transpose()?;
        use preempt_runtime::ProcsFrom;
        let (procs, procs_from) = match (self.procs, s.procs, env_procs) {
            (Some(n), _, _) => (n as usize, ProcsFrom::Flag),
            (None, Some(n), _) => (n as usize, ProcsFrom::File),
            (None, None, Some(n)) => (n, ProcsFrom::Env),
            (None, None, None) => (cpus, ProcsFrom::Default),
        };
        Ok(self.limits.apply(
            file,
            RunConfig {
                procs,
                procs_from,
                schedtrace: debug.schedtrace,
                scheddetail: debug.scheddetail,
                mode,
                quantum: self
                    .quantum
                    .or(s.quantum_us.map(|us| Duration::from_micros(us as u64)))
                    .unwrap_or(Duration::from_millis(10)),
                sysmon_min_tick: self.sysmon_tick,
                sysmon_max_tick: self.sysmon_max_tick.max(self.sysmon_tick),
                sched: match self.sched {
                    SchedArg::Precise => preempt_runtime::sched::sysmon::Model::Precise,
                    SchedArg::Go => preempt_runtime::sched::sysmon::Model::Go,
                },
                hang_threshold: self.hang_threshold,
                gc_percent: s.gc_percent.unwrap_or(100),
                reinstall_handler: self.reinstall_preempt_handler,
                cpus: self.cpus.clone(),
                ..RunConfig::default()
            },
        ))
    }

    /// `--stats-json` and `--trace` can be written: checked before the run,
    /// not after it.
    pub fn check_outputs(&self) -> Result<(), String> {
        for (flag, path) in [("--stats-json", &self.stats_json), ("--trace", &self.trace)] {
            if let Some(p) = path {
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(p)
                    .map_err(|e| format!("preempt: {flag}: cannot write {}: {e}", p.display()))?;
            }
        }
        Ok(())
    }

    /// Who watches a run of `prog`: fresh statistics, and the tracer if
    /// `--trace` asks for one.
    pub fn observers(&self, prog: &Program) -> Observers {
        use preempt_runtime::trace::Tracer;
        let tracer = match self.trace {
            Some(_) => Tracer::new(),
            None => Tracer::disabled(),
        };
        let tracer = if self.log_stops {
            tracer.with_stop_log()
        } else {
            tracer
        };
        tracer.set_function_names(prog.funcs.iter().map(|f| f.name.clone()).collect());
        Observers {
            tracer: Arc::new(tracer),
            ..Observers::default()
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a PIR program.
    #[command(after_help = EXAMPLES)]
    Run {
        /// The .pir file.
        file: PathBuf,
        /// Optimisation level: 0 none, 1 LICM (default, or the file's `set opt`).
        #[arg(short = 'O', value_parser = clap::value_parser!(u8).range(0..=1))]
        opt: Option<u8>,
        /// What runs the program.
        #[arg(long, value_enum, default_value_t = EngineArg::Jit)]
        engine: EngineArg,
        /// As Go's compiler: small leaf functions (no calls, no runtime
        /// operations, a frame under 128 bytes) get no stack check, so
        /// their entry is no cooperative preemption point (the file's `set
        /// nosplit_leaves = 1` does the same; JIT only).
        #[arg(long)]
        nosplit_leaves: bool,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// The showcase: the hoisted load of examples/hoist.pir at -O0 and -O1.
    Demo {
        /// The program to show (its `@spinner`, or its first function). An
        /// `examples/...` path that is not on disk is read from the copy
        /// built into preempt, so the default works from any directory.
        #[arg(default_value = "examples/hoist.pir")]
        file: PathBuf,
    },
    /// Measure and print figures (compile throughput, kernels, runtime vs
    /// Go, preemption, the mechanisms side by side).
    Bench(bench::BenchArgs),
    /// Parse and verify a PIR program.
    Check { file: PathBuf },
    /// Two result files side by side, benchstat-style: every figure, the
    /// change, and whether it is beyond the run-to-run noise
    /// (Mann-Whitney U test on the samples, alpha 0.05).
    Compare(compare::CompareArgs),
    /// Preempt a program at every instruction boundary (x86-64: single
    /// stepping; aarch64: a signal storm) and compare each run's stdout
    /// and exit status with an unpreempted run's. Exit 1 on any mismatch.
    #[command(after_help = stress::HELP)]
    Stress(stress::StressArgs),
    /// Run every program that states what it does, many times, under
    /// every mechanism and arming, at 1 and 2 Ps, two quanta and both
    /// optimisation levels; print runs, failures and hangs per
    /// configuration. Exit 1 on any failure.
    #[command(after_help = soak::HELP)]
    Soak(soak::SoakArgs),
    /// The seed's sixteen bugs, run on preempt and on Go side by side: each
    /// claim of the seed's diagnosis with what both measured and a verdict.
    /// With no bug named, list them.
    Bugs(bugs::BugsArgs),
    /// Write shell completions (bash, zsh, fish) and man pages, generated
    /// from this command line, to DIR/completions/ and DIR/man/ (`make
    /// dist-docs` writes them under target/).
    DistDocs {
        /// Where to write them.
        #[arg(default_value = "target")]
        dir: PathBuf,
    },
    /// Show the annotated machine code of a PIR program.
    Disasm {
        file: PathBuf,
        #[arg(short = 'O', value_parser = clap::value_parser!(u8).range(0..=1))]
        opt: Option<u8>,
        /// Target architecture (any host can show either).
        #[arg(long, value_enum)]
        arch: Option<ArchArg>,
        /// Also show the runtime stubs (context switch, runtime-call entry).
        #[arg(long)]
        stubs: bool,
        /// The preemption mode to compile for (what loop back-edges carry:
        /// poll, trap and patch put code or padding there); by default the
        /// file's `set preempt`, else async.
        #[arg(long, value_enum)]
        preempt: Option<ModeArg>,
        /// As Go's compiler: small leaf functions (no calls, no runtime
        /// operations, a frame under 128 bytes) get no stack check, so
        /// their entry is no cooperative preemption point (the file's `set
        /// nosplit_leaves = 1` does the same; JIT only).
        #[arg(long)]
        nosplit_leaves: bool,
    },
}

/// A usage or input error: printed, exit status 2.
pub(crate) fn fail(msg: String) -> ExitCode {
    let mut msg = msg;
    if !msg.ends_with('\n') {
        msg.push('\n');
    }
    console::stderr(&msg);
    console::exit(2)
}

/// The largest PIR source file preempt reads (64 MiB: a hundred times the
/// largest program in the tests; `/dev/zero` as the input used to be read
/// until memory ran out).
pub const MAX_SOURCE: u64 = 64 << 20;

/// Reads a PIR source file, up to [`MAX_SOURCE`] bytes; a relative
/// `examples/...` path that is not on disk reads the copy built into
/// preempt ([`embedded`]).
pub fn read_source(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let name = path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return embedded::example(path)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("preempt: cannot read {name}: {e}"));
        }
        Err(e) => return Err(format!("preempt: cannot read {name}: {e}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("preempt: cannot read {name}: {e}"))?;
    if bytes.len() as u64 > MAX_SOURCE {
        return Err(format!(
            "preempt: {name} is larger than {} MiB, the largest PIR source preempt reads",
            MAX_SOURCE >> 20
        ));
    }
    Ok(bytes)
}

/// Reads, parses and verifies a file; errors are rendered for stderr.
pub fn load(path: &std::path::Path) -> Result<Program, String> {
    load_watched(path, &|_| {})
}

/// [`load`], saying which phase it is in to `phase`.
fn load_watched(path: &std::path::Path, phase: &dyn Fn(&'static str)) -> Result<Program, String> {
    let name = path.display().to_string();
    phase("reading");
    let bytes = read_source(path)?;
    let render = |e: ir::Error| {
        let text = String::from_utf8_lossy(&bytes);
        e.render(&name, &text)
    };
    phase("parsing");
    let mut prog = ir::parser::parse_bytes(&bytes).map_err(render)?;
    phase("verifying");
    ir::verify(&mut prog).map_err(render)?;
    Ok(prog)
}

/// The watchdog of a run before the program starts: reading, checking and
/// compiling count against `--timeout` too (a program of 10,000 nested
/// loops once took a minute to compile, outside any watchdog).
struct CompileWatch {
    state: Arc<(std::sync::Mutex<Watched>, std::sync::Condvar)>,
    started: std::time::Instant,
}

/// What the compile watchdog knows.
#[derive(Default)]
struct Watched {
    phase: &'static str,
    /// The program's size, once it has been read.
    what: Option<String>,
    done: bool,
}

impl CompileWatch {
    /// Starts the watch of `file`: past `timeout`, it reports the phase and
    /// ends the process with status 3.
    fn start(file: &std::path::Path, timeout: Option<Duration>) -> CompileWatch {
        let state = Arc::new((
            std::sync::Mutex::new(Watched {
                phase: "starting",
                ..Watched::default()
            }),
            std::sync::Condvar::new(),
        ));
        let started = std::time::Instant::now();
        let (st, name) = (state.clone(), file.display().to_string());
        // `--timeout none`: nothing watches.
        let Some(timeout) = timeout else {
            return CompileWatch { state, started };
        };
        std::thread::spawn(move || {
            let (m, cv) = &*st;
            let mut w = m.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if w.done {
                    return;
                }
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break;
                }
                w = cv
                    .wait_timeout(w, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            let what = w
                .what
                .as_deref()
                .map_or(String::new(), |s| format!(" ({s})"));
            console::stderr(&format!(
                "preempt: watchdog: {name} did not finish within {} (--timeout): the program never started; preempt was still {} it{what}\n",
                seconds(timeout),
                w.phase
            ));
            std::process::exit(3);
        });
        CompileWatch { state, started }
    }

    fn phase(&self, phase: &'static str, what: Option<String>) {
        let mut w = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
        w.phase = phase;
        if what.is_some() {
            w.what = what;
        }
    }

    /// The program is about to start: the watch ends; returns how much
    /// of the timeout it used (the rest is the run's).
    fn done(self) -> Duration {
        self.state.0.lock().unwrap_or_else(|e| e.into_inner()).done = true;
        self.state.1.notify_all();
        self.started.elapsed()
    }
}

/// `2s`, or `1.500s`.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// What a program is, for the compile watchdog: its size and its largest
/// function.
fn program_size(p: &Program) -> String {
    let largest = p
        .funcs
        .iter()
        .max_by_key(|f| f.blocks.iter().map(|b| b.insts.len() + 1).sum::<usize>());
    format!(
        "{} functions, {} instructions{}",
        p.funcs.len(),
        p.inst_count(),
        largest.map_or(String::new(), |f| format!(
            ", the largest @{} with {} blocks",
            f.name,
            f.blocks.len()
        ))
    )
}

/// Runs the command line `args` (without the program name at index 0
/// removed: `args[0]` is the program name, as `std::env::args`).
pub fn main_with(args: impl IntoIterator<Item = String>) -> ExitCode {
    let args: Vec<String> = args.into_iter().collect();
    // The benchmarks' spawner (preempt_bench::process::run_measured).
    if args.get(1).map(String::as_str) == Some(preempt_bench::process::SPAWNER) {
        return preempt_bench::process::spawner_main(&args[2..]);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Check { file } => match load(&file) {
            Ok(p) => {
                outln!(
                    "{}: ok ({} functions, {} globals, {} instructions)",
                    file.display(),
                    p.funcs.len(),
                    p.globals.len(),
                    p.inst_count()
                );
                console::exit(0)
            }
            Err(msg) => fail(msg),
        },
        Command::Bench(args) => bench::main(&args),
        Command::Demo { file } => match load(&file) {
            Ok(p) => {
                out!("{}", demo::hoisting(&p, &file.display().to_string()));
                console::exit(0)
            }
            Err(msg) => fail(msg),
        },
        Command::Disasm {
            file,
            opt,
            arch,
            stubs,
            preempt,
            nosplit_leaves,
        } => {
            let mut prog = match load(&file) {
                Ok(p) => p,
                Err(msg) => return fail(msg),
            };
            let level = opt_level(&prog, opt);
            preempt_jit::opt::optimize(&mut prog, level);
            if let Some(m) = preempt {
                prog.settings.preempt = Some(m.into());
            }
            if nosplit_leaves {
                prog.settings.nosplit_leaves = Some(1);
            }
            let arch = arch
                .map(Arch::from)
                .or_else(Arch::host)
                .unwrap_or(Arch::X86_64);
            let globals = preempt_jit::module::Globals::new(&prog);
            let asm = preempt_jit::isa::assemble(arch, &prog, &globals.addresses());
            out!("{}", preempt_jit::code::disasm::listing(&prog, &asm, level));
            if stubs {
                out!("\n{}", preempt_jit::code::disasm::stubs_listing(&asm));
            }
            console::exit(0)
        }
        Command::DistDocs { dir } => match dist_docs::write(&dir) {
            Ok(files) => {
                for f in files {
                    outln!("{}", f.display());
                }
                console::exit(0)
            }
            Err(e) => fail(format!(
                "preempt dist-docs: cannot write under {}: {e}",
                dir.display()
            )),
        },
        Command::Stress(args) => stress::main(&args),
        Command::Soak(args) => soak::main(&args),
        Command::Bugs(args) => bugs::main(&args),
        Command::Compare(args) => compare::main(&args),
        Command::Run {
            file,
            opt,
            engine,
            nosplit_leaves,
            runtime,
        } => {
            if let Err(msg) = runtime.check_outputs() {
                return fail(msg);
            }
            // First, as taskset: the compile watch, the main thread and
            // the default number of Ps follow.
            if let Err(msg) = pin(runtime.cpus.as_ref()) {
                return fail(msg);
            }
            let watch = CompileWatch::start(&file, runtime.limits.timeout.0);
            let mut prog = match load_watched(&file, &|phase| watch.phase(phase, None)) {
                Ok(p) => p,
                Err(msg) => return fail(msg),
            };
            watch.phase("optimising", Some(program_size(&prog)));
            let level = opt_level(&prog, opt);
            let mut cfg = match runtime.config(&prog, &file) {
                Ok(c) => c,
                Err(msg) => return fail(msg),
            };
            let obs = runtime.observers(&prog);
            let out = Output::stdout();
            let outcome = match engine {
                EngineArg::Jit => {
                    preempt_jit::opt::optimize(&mut prog, level);
                    // The mode decides what loop back-edges carry.
                    prog.settings.preempt = Some(cfg.mode);
                    if nosplit_leaves {
                        prog.settings.nosplit_leaves = Some(1);
                    }
                    watch.phase("compiling", None);
                    match Module::compile(&prog) {
                        Ok(m) => {
                            cfg.timeout_spent = watch.done();
                            preempt_runtime::run(Arc::new(m), &cfg, &obs, out.clone())
                        }
                        Err(e) => Outcome {
                            status: 2,
                            stderr: format!("preempt: cannot compile {}: {e}\n", file.display()),
                        },
                    }
                }
                EngineArg::Interp => {
                    cfg.timeout_spent = watch.done();
                    preempt_runtime::interp::run(&prog, level, &cfg, &obs, out.clone())
                }
            };
            if runtime.stats {
                out.flush();
                console::stderr(&stats::report(&cfg, &obs));
            }
            if let Some(path) = &runtime.stats_json {
                let settings = outputs::RunSettings {
                    cfg: &cfg,
                    engine,
                    opt: level,
                };
                if let Err(e) = outputs::run_document(&settings, &obs).write(path) {
                    errln!("preempt: the stats: {e}");
                }
            }
            if let Some(path) = &runtime.trace {
                if let Err(e) = obs.tracer.write(path) {
                    errln!("preempt: cannot write the trace to {}: {e}", path.display());
                }
            }
            finish(outcome, &out)
        }
    }
}

/// `--cpus LIST`: pins this process (its threads and children to come).
pub(crate) fn pin(cpus: Option<&CpuList>) -> Result<(), String> {
    match cpus {
        Some(c) => affinity::pin_process(c).map_err(|e| format!("preempt: --cpus {c}: {e}")),
        None => Ok(()),
    }
}

/// The optimisation level: the flag, else the file's `set opt`, else 1.
pub(crate) fn opt_level(prog: &Program, flag: Option<u8>) -> u8 {
    flag.or(prog.settings.opt.map(|v| v as u8)).unwrap_or(1)
}

/// Flushes program output, prints the report and ends the process with the
/// outcome's status (1 if the program's output was lost; quietly, as
/// `SIGPIPE` would, if its reader went away). A timed-out program's thread
/// may still be spinning, so the process exits here rather than
/// unwinding.
fn finish(outcome: Outcome, out: &Output) -> ExitCode {
    out.flush();
    if let Some((kind, msg)) = out.failure() {
        console::lost_stdout(&std::io::Error::new(kind, msg));
    }
    console::stderr(&outcome.stderr);
    let code = console::exit(outcome.status.clamp(0, 255) as u8);
    if outcome.status == 3 {
        std::process::exit(if console::stdout_lost() { 1 } else { 3 });
    }
    code
}
