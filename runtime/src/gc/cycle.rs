//! The collector of one run: when cycles start, the thread that runs
//! them, the phases of a cycle, and the goroutines waiting for one.
//!
//! The collector sits below the scheduler: it knows the run only as a
//! [`Host`] (the scheduler's `Runtime` is one), which stops the world for
//! it, hands it the roots and readies the goroutines it woke.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use preempt_jit::fault::Fault;

use super::heap::{Heap, SweepMode};
use super::mark::MarkState;
use super::roots::{self, Roots};
use super::{verify, GcFault};
use crate::g::{Resume, G};
use crate::stats::{monotonic_ns as monotonic_nanos, Stats};
use crate::trace::Tracer;
use crate::{Outcome, RunConfig};

/// The heap size below which no cycle starts by itself (Go's 4 MB minimum
/// heap goal; the interpreter uses the same).
pub const MIN_TRIGGER: u64 = 4 << 20;

/// Named figures in the stats.
pub const GC_CYCLES: &str = "gc cycles";
pub const GC_CYCLE_TIME: &str = "gc cycle (request to swept)";
/// `--gc-interleave`: concurrent phases in which the program made no store
/// for [`INTERLEAVE_WAIT`](super::mark::INTERLEAVE_WAIT), so the marker
/// went on alone.
pub const GC_INTERLEAVE_TIMEOUTS: &str = "gc interleave timeouts";

/// The two stops of the world in a cycle, as the stop is named in
/// reports.
pub const MARK_START: &str = "GC mark start";
pub const MARK_TERMINATION: &str = "GC mark termination";

/// Work done with the world stopped; false ends the cycle (the run ended).
pub type StoppedWork<H> = Arc<dyn Fn(&H) -> bool + Send + Sync>;

/// What the collector needs of the run it collects for.
pub trait Host: Send + Sync + Sized + 'static {
    /// The run's collector.
    fn collector(&self) -> &Collector;
    /// The program has ended: the collector's thread stops.
    fn ended(&self) -> bool;
    /// Runs `work` with every goroutine stopped (the stop named `why`);
    /// false, without running it, if the program ended first.
    fn with_world_stopped(&self, why: &'static str, work: StoppedWork<Self>) -> bool;
    /// The roots of every goroutine. The world must be stopped.
    fn roots(&self) -> Option<Roots<'_>>;
    /// Makes a goroutine the collector woke runnable.
    fn ready(&self, g: Arc<G>);
    /// Ends the program (verification found a lost object).
    fn finish(&self, outcome: Outcome);
    /// The collector went idle: is anything left that can run?
    fn check_dead(&self);
    /// Where cycle counts and times are recorded.
    fn stats(&self) -> &Stats;
    /// Where cycles and their phases are traced.
    fn tracer(&self) -> &Tracer;
}

/// A goroutine parked until a cycle completes.
#[derive(Debug)]
enum Waiter {
    /// `gc`, or an allocation past the hard goal: wake when cycle `after`
    /// has swept.
    Cycle { g: Arc<G>, after: u64 },
    /// An allocation that would pass the limit: retry it when cycle
    /// `after` has swept, and fail for good if it still does not fit.
    Alloc { g: Arc<G>, slots: i64, after: u64 },
}

impl Waiter {
    fn after(&self) -> u64 {
        match self {
            Waiter::Cycle { after, .. } | Waiter::Alloc { after, .. } => *after,
        }
    }
}

#[derive(Debug, Default)]
struct CycleState {
    /// Another cycle is wanted.
    requested: bool,
    running: bool,
    /// Cycles started and swept, by number (the first is 1).
    started: u64,
    completed: u64,
    waiters: Vec<Waiter>,
}

/// The collector: the heap and its marking state, and the cycles.
#[derive(Debug)]
pub struct Collector {
    /// Boxed: generated code holds the address of its barrier block.
    mark: Box<MarkState>,
    verify: bool,
    inject: Option<GcFault>,
    state: Mutex<CycleState>,
    wake: Condvar,
    gc_percent: AtomicI64,
    /// Live bytes at which the next cycle starts.
    trigger: AtomicU64,
    /// Live bytes after the last sweep.
    last_live: AtomicU64,
    /// A cycle is wanted or running, or goroutines wait for one: the
    /// program is not deadlocked while this holds.
    busy: AtomicBool,
}

impl Collector {
    pub fn new(cfg: &RunConfig) -> Collector {
        let mark = Box::new(MarkState::new(Heap::with_limit(cfg.heap_limit)));
        mark.set_skip_barrier(cfg.gc_inject == Some(GcFault::SkipBarrier));
        mark.set_interleave(cfg.gc_interleave);
        let c = Collector {
            mark,
            verify: cfg.gc_verify,
            inject: cfg.gc_inject,
            state: Mutex::default(),
            wake: Condvar::new(),
            gc_percent: AtomicI64::new(cfg.gc_percent),
            trigger: AtomicU64::new(0),
            last_live: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        };
        c.set_trigger();
        c
    }

    fn lock(&self) -> MutexGuard<'_, CycleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn heap(&self) -> &Heap {
        &self.mark.heap
    }

    /// What every JIT goroutine's `ctx.gc` points at.
    pub fn barrier_address(&self) -> u64 {
        self.mark.barrier_address()
    }

    /// Whether the barrier is on (a cycle is marking).
    pub fn is_marking(&self) -> bool {
        self.mark.is_marking()
    }

    /// A cycle is wanted or running, or a goroutine waits for one.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Cycles swept so far.
    pub fn cycles(&self) -> u64 {
        self.lock().completed
    }

    fn set_trigger(&self) {
        let pct = self.gc_percent.load(Ordering::Acquire);
        let t = if pct < 0 {
            u64::MAX
        } else {
            let live = u128::from(self.last_live.load(Ordering::Acquire));
            let goal = live + live * pct as u128 / 100;
            (goal.min(u128::from(u64::MAX)) as u64).max(MIN_TRIGGER)
        };
        self.trigger.store(t, Ordering::Release);
    }

    /// `setgcpercent`: takes effect at once (a cycle starts if the heap
    /// is already past the new trigger).
    pub fn set_gc_percent(&self, percent: i64) {
        self.gc_percent.store(percent, Ordering::Release);
        self.set_trigger();
        self.allocated();
    }

    /// After an allocation: starts a cycle if the heap reached the trigger.
    pub fn allocated(&self) {
        if self.heap().bytes_allocated() >= self.trigger.load(Ordering::Acquire) {
            let mut s = self.lock();
            if !s.running && !s.requested {
                self.request(&mut s);
            }
        }
    }

    /// Whether an allocating goroutine should wait for the running cycle
    /// (the heap passed twice its trigger while marking could not keep up).
    pub fn over_hard_goal(&self) -> bool {
        let t = self.trigger.load(Ordering::Acquire);
        t != u64::MAX && self.heap().bytes_allocated() >= t.saturating_mul(2)
    }

    /// Starts the collector's thread (the runtime starts it with the
    /// program, for JIT code); it sleeps until a cycle is requested.
    pub fn start<H: Host>(host: &Arc<H>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let rt = host.clone();
        std::thread::Builder::new()
            .name("preempt-gc".into())
            .spawn(move || run(&*rt))
    }

    fn request(&self, s: &mut CycleState) {
        s.requested = true;
        self.busy.store(true, Ordering::Release);
        self.wake.notify_all();
    }

    /// `gc`: `g` (already marked as parking) waits for a whole cycle that
    /// starts after now.
    pub fn wait_for_cycle(&self, g: Arc<G>) {
        let mut s = self.lock();
        let after = s.started + 1;
        s.waiters.push(Waiter::Cycle { g, after });
        self.request(&mut s);
    }

    /// If a cycle runs, `park(g)` and make `g` wait for the cycle to
    /// sweep; false (and no `park`) if none runs.
    pub fn wait_for_running(&self, g: &Arc<G>, park: impl FnOnce()) -> bool {
        let mut s = self.lock();
        if !s.running {
            return false;
        }
        park();
        let after = s.started;
        s.waiters.push(Waiter::Cycle {
            g: g.clone(),
            after,
        });
        true
    }

    /// An allocation of `slots` did not fit: `g` (parking) waits for a
    /// whole cycle, then the allocation is tried once more.
    pub fn wait_to_allocate(&self, g: Arc<G>, slots: i64) {
        let mut s = self.lock();
        let after = s.started + 1;
        s.waiters.push(Waiter::Alloc { g, slots, after });
        self.request(&mut s);
    }

    /// Program end: the collector's thread stops at its next look.
    pub fn shutdown(&self) {
        let _s = self.lock();
        self.wake.notify_all();
    }

    /// Wakes the goroutines whose cycle has swept.
    fn wake_waiters<H: Host>(&self, rt: &H) {
        let ready: Vec<Waiter> = {
            let mut s = self.lock();
            let done = s.completed;
            let (ready, waiting) = std::mem::take(&mut s.waiters)
                .into_iter()
                .partition(|w| w.after() <= done);
            s.waiters = waiting;
            ready
        };
        for w in ready {
            match w {
                Waiter::Cycle { g, .. } => rt.ready(g),
                Waiter::Alloc { g, slots, .. } => {
                    let r = match self.heap().alloc(slots) {
                        Ok(addr) => Resume {
                            value: Some(addr as u64),
                            ..Resume::default()
                        },
                        Err(_) => Resume {
                            fault: Some(Fault::OutOfMemory),
                            ..Resume::default()
                        },
                    };
                    g.deliver(r);
                    rt.ready(g);
                }
            }
        }
        // Busy until the woken are runnable: the deadlock check must not
        // see them parked with nothing left to wake them.
        let s = self.lock();
        self.busy.store(
            s.requested || s.running || !s.waiters.is_empty(),
            Ordering::Release,
        );
    }
}

/// The collector's thread: runs a cycle whenever one is requested, until
/// the program ends.
fn run<H: Host>(rt: &H) {
    let c = rt.collector();
    loop {
        let n = {
            let mut s = c.lock();
            while !s.requested && !rt.ended() {
                s = c.wake.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if rt.ended() {
                return;
            }
            s.requested = false;
            s.running = true;
            s.started += 1;
            s.started
        };
        let ok = cycle(rt, n);
        {
            let mut s = c.lock();
            s.running = false;
            if ok {
                s.completed = n;
            }
        }
        if !ok {
            return;
        }
        c.wake_waiters(rt);
        c.allocated();
        if !c.busy() {
            rt.check_dead();
        }
    }
}

/// One whole cycle, number `n`; false if the program ended meanwhile (or
/// verification ended it).
fn cycle<H: Host>(rt: &H, n: u64) -> bool {
    let c = rt.collector();
    let m = &*c.mark;
    let stats = rt.stats();
    let start = monotonic_nanos();
    let stop = || rt.ended();

    // Mark start.
    let epoch = Arc::new(AtomicU64::new(0));
    let start_epoch = epoch.clone();
    let mark_start: StoppedWork<H> = Arc::new(move |rt: &H| {
        let c = rt.collector();
        let m = &*c.mark;
        start_epoch.store(m.heap.begin_cycle(), Ordering::Release);
        m.reserve_for_cycle();
        let classes = roots::Classes {
            globals: c.inject != Some(GcFault::SkipGlobalRoots),
        };
        if let Some(roots) = rt.roots() {
            if c.verify && c.inject != Some(GcFault::KeepDeadStackWords) {
                // SAFETY: the world is stopped.
                unsafe { roots::clear_dead_stacks(&roots) };
            }
            roots::scan(&roots, classes, |_, v| {
                m.shade(v);
            });
        }
        m.set_marking(true);
        true
    });
    if !rt.with_world_stopped(MARK_START, mark_start) {
        return false;
    }
    let epoch = epoch.load(Ordering::Acquire);
    let tracer = rt.tracer();
    let marking = monotonic_nanos();
    tracer.gc_phase(n, "mark start", start, marking);

    // Concurrent mark.
    let (done, timeouts) = m.drain_concurrent(stop);
    let terminating = monotonic_nanos();
    tracer.gc_phase(n, "concurrent mark", marking, terminating);
    if timeouts > 0 {
        stats.count(GC_INTERLEAVE_TIMEOUTS);
    }
    if !done {
        return false;
    }

    // Mark termination.
    let mark_termination: StoppedWork<H> = Arc::new(move |rt: &H| {
        let c = rt.collector();
        let m = &*c.mark;
        m.drain(|| false);
        if c.verify {
            let report = match rt.roots() {
                Some(_) if m.barrier_grew() > 0 => Err(format!(
                    "fatal error: gc-verify: the write barrier grew the grey queue on a goroutine's stack {} times by GC cycle {n} (the queue's room is the heap's object count at mark start)\n",
                    m.barrier_grew()
                )),
                Some(roots) => verify::check(&roots, m, epoch, n),
                None => Ok(()),
            };
            if let Err(report) = report {
                rt.finish(Outcome {
                    status: 1,
                    stderr: report,
                });
                return false;
            }
        }
        m.set_marking(false);
        true
    });
    if !rt.with_world_stopped(MARK_TERMINATION, mark_termination) {
        return false;
    }
    let sweeping = monotonic_nanos();
    tracer.gc_phase(n, "mark termination", terminating, sweeping);

    // Sweep.
    let mode = SweepMode {
        poison: c.verify,
        free_marked: c.inject == Some(GcFault::FreeMarked),
    };
    match m.heap.sweep(epoch, mode) {
        Ok(s) => {
            c.last_live.store(s.live_bytes, Ordering::Release);
            stats.count(GC_CYCLES);
        }
        Err(w) => {
            rt.finish(Outcome {
                status: 1,
                stderr: format!(
                    "fatal error: gc-verify: freed object {:#x} was written after it was freed (slot {} holds tag {:#x}, value {:#x}); found by the sweep of GC cycle {n}\n",
                    w.object, w.slot, w.tag, w.value
                ),
            });
            return false;
        }
    }
    c.set_trigger();
    let end = monotonic_nanos();
    tracer.gc_phase(n, "sweep", sweeping, end);
    tracer.gc_cycle(n, start, end);
    stats.record(GC_CYCLE_TIME, end.saturating_sub(start));
    true
}
