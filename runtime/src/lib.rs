//! preempt-runtime: runs compiled PIR programs as goroutines.
//!
//! [`sched`] is the M:N scheduler (goroutines, worker threads, processors,
//! the monitor); [`chan`] and [`timer`] are channels and timers; [`ffi`]
//! the foreign calls; [`preempt`] the preemption mechanisms; [`gc`] the
//! JIT heap and its concurrent collector; [`diagnose`] says why a program hangs; [`traceback`] turns a
//! parked goroutine's stack into Go-style frames; [`output`] is the
//! line-atomic stdout every `print` goes through; [`harness`] is the hook
//! through which the every-instruction harness (crate `preempt-stress`)
//! watches a run. [`g`] is the goroutine the scheduler, the channels and
//! the preemption mechanisms share, [`stack`] its stack. [`affinity`]
//! pins a run's threads to chosen CPUs (`--cpus`).

pub mod affinity;
pub mod chan;
pub mod ffi;
pub mod g;
pub mod gc;
pub mod interp;
pub mod output;
pub mod preempt;
pub mod sched;
pub mod stack;
pub mod stats;
pub mod sync;
pub mod timer;
pub mod trace;
pub mod traceback;

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use preempt_jit::ir::PreemptMode;

pub use output::Output;
pub use sched::run;
pub use sched::{diagnose, harness};

/// How to run a program.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The source file name, for tracebacks.
    pub file: String,
    /// Usable bytes of each goroutine stack.
    pub stack_size: usize,
    /// The watchdog ends a program still running after this long.
    pub timeout: Option<Duration>,
    /// What the timeout had used up before the program started (reading
    /// and compiling it, which the command line watches itself).
    pub timeout_spent: Duration,
    /// `procs` (GOMAXPROCS).
    pub procs: usize,
    /// How running goroutines are stopped.
    pub mode: PreemptMode,
    /// The time slice after which the monitor asks a goroutine to stop.
    pub quantum: Duration,
    /// The monitor's tick: its shortest, and longest after backing off.
    pub sysmon_min_tick: Duration,
    pub sysmon_max_tick: Duration,
    /// How the monitor times slices and foreign calls: precisely, or as
    /// Go's sysmon does (`--sched go`).
    pub sched: sched::sysmon::Model,
    /// A goroutine still running this long after a preemption request is
    /// reported on stderr, with why it does not stop (0: never).
    pub hang_threshold: Duration,
    /// The signal asynchronous preemption uses.
    pub preempt_signal: libc::c_int,
    /// When a goroutine does not stop because the preemption signal's
    /// handler was replaced, put the runtime's back.
    pub reinstall_handler: bool,
    /// Whether the signal handler honours the compiler's unsafe regions
    /// (`Ignore` is fault injection: see [`preempt::decide`]).
    pub unsafe_points: preempt::decide::UnsafePoints,
    /// How `--preempt trap` arms a goroutine (`--trap-arm`).
    pub trap_arm: preempt::trap::TrapArm,
    /// How the preemption signal's handler stops a goroutine
    /// (`--async-stop`).
    pub async_stop: preempt::asynchronous::AsyncStop,
    /// Who ends time slices: the monitor, or each worker's own timer
    /// (`--quantum-timer`).
    pub quantum_timer: preempt::qtimer::QuantumTimer,
    /// GOGC: the next collection starts when the heap has grown by this
    /// many percent over the live heap; negative turns automatic
    /// collections off (`set gc_percent`, `setgcpercent`).
    pub gc_percent: i64,
    /// Check every collection and poison freed objects (`--gc-verify`).
    pub gc_verify: bool,
    /// The concurrent marker waits for a store of the program after each
    /// object it scans (`gc::mark`'s interleaving).
    pub gc_interleave: bool,
    /// A bug injected into the collector, for tests of `gc_verify`.
    pub gc_inject: Option<gc::GcFault>,
    /// Live bytes of JIT heap beyond which `new` is out of memory (after
    /// a collection).
    pub heap_limit: u64,
    /// The CPUs every thread of the run pins itself to as it starts
    /// (`--cpus`); None: wherever the process may run.
    pub cpus: Option<affinity::CpuList>,
    /// `PREEMPTDEBUG=schedtrace=MS`: Go's scheduler trace on stderr this
    /// often; with `scheddetail` (`scheddetail=1`) its per-P, per-M and
    /// per-G lines too.
    pub schedtrace: Option<Duration>,
    pub scheddetail: bool,
    /// Where `procs` came from, for `--stats`.
    pub procs_from: ProcsFrom,
}

/// Where the number of Ps came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ProcsFrom {
    /// `--procs`.
    Flag,
    /// The file's `set procs` (the program's `runtime.GOMAXPROCS` call).
    File,
    /// The `GOMAXPROCS` environment variable.
    Env,
    /// The default: the CPUs this process may run on.
    #[default]
    Default,
}

impl ProcsFrom {
    /// A stable key for result files: `--procs`, `set procs`,
    /// `GOMAXPROCS` or `cpu_count`.
    pub fn key(self) -> &'static str {
        match self {
            ProcsFrom::Flag => "--procs",
            ProcsFrom::File => "set procs",
            ProcsFrom::Env => "GOMAXPROCS",
            ProcsFrom::Default => "cpu_count",
        }
    }
}

impl std::fmt::Display for ProcsFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProcsFrom::Flag => "--procs",
            ProcsFrom::File => "the file's set procs",
            ProcsFrom::Env => "GOMAXPROCS",
            ProcsFrom::Default => "the CPU count",
        })
    }
}

/// Who watches a run: what its caller reads while and after it runs, and
/// a harness. Owned by the caller and shared with the run, apart from its
/// configuration ([`RunConfig`], plain data).
#[derive(Clone, Debug)]
pub struct Observers {
    /// Counters a caller may watch while the program runs.
    pub stats: Arc<RunStats>,
    /// The scheduling timeline (`--trace`) and the stop log
    /// (`--log-stops`); both off by default.
    pub tracer: Arc<trace::Tracer>,
    /// The harness watching the run (`preempt stress`), if any.
    pub harness: Option<Arc<dyn harness::Harness>>,
}

impl Default for Observers {
    fn default() -> Self {
        Observers {
            stats: Arc::default(),
            tracer: Arc::new(trace::Tracer::disabled()),
            harness: None,
        }
    }
}

/// What a run exposes while it goes on.
#[derive(Debug, Default)]
pub struct RunStats {
    /// The kernel thread id of the first worker (0 until it starts).
    pub worker_tid: AtomicI32,
    /// Goroutine entries into the preemption stub (from a signal's redirect,
    /// a poll, a poll-page fault or a patched back-edge).
    pub preempt_stub_entries: AtomicU64,
    /// Everything `--stats` prints.
    pub sched: stats::Stats,
}

impl RunStats {
    pub fn preempt_stub_entries(&self) -> u64 {
        self.preempt_stub_entries.load(Ordering::Relaxed)
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            file: "<input>".to_string(),
            stack_size: 64 << 20,
            timeout: Some(Duration::from_secs(10)),
            timeout_spent: Duration::ZERO,
            procs: 1,
            mode: PreemptMode::Coop,
            quantum: Duration::from_millis(10),
            sysmon_min_tick: Duration::from_micros(20),
            sysmon_max_tick: Duration::from_millis(10),
            sched: sched::sysmon::Model::Precise,
            hang_threshold: Duration::from_millis(100),
            preempt_signal: libc::SIGURG,
            unsafe_points: preempt::decide::UnsafePoints::Honour,
            trap_arm: preempt::trap::TrapArm::Page,
            async_stop: preempt::asynchronous::AsyncStop::Handoff,
            quantum_timer: preempt::qtimer::QuantumTimer::Monitor,
            reinstall_handler: false,
            gc_percent: 100,
            gc_verify: false,
            gc_interleave: false,
            gc_inject: None,
            heap_limit: preempt_jit::abi::DEFAULT_HEAP_LIMIT,
            cpus: None,
            schedtrace: None,
            scheddetail: false,
            procs_from: ProcsFrom::Default,
        }
    }
}

/// How a run ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Outcome {
    /// The process exit status IR.md gives: 0 success, 1 panic or fatal
    /// error, 2 a program this build cannot run, 3 the watchdog fired.
    pub status: i32,
    /// What goes to stderr: the panic report, fatal error or diagnosis.
    pub stderr: String,
}

impl Outcome {
    pub fn success() -> Outcome {
        Outcome {
            status: 0,
            stderr: String::new(),
        }
    }
}
