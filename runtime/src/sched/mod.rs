//! The M:N scheduler: goroutines (G) run on worker threads (M), each
//! holding a processor (P) while it runs Go code; `procs` Ps bound the
//! parallelism, as GOMAXPROCS does.
//!
//! Modelled on Go's `proc.go`:
//!
//! - each P has a lock-free local run queue ([`runq`]) and a `runnext`
//!   slot (a goroutine made runnable by the running one runs next, as in
//!   Go); there is one global queue; a spinning M steals half of another
//!   P's queue, and its `runnext` only when that P is not about to run it;
//! - every 61st schedule on a P looks at the global queue first, so it
//!   cannot starve;
//! - an M without work gives its P back and parks; making a goroutine
//!   runnable wakes an idle M with an idle P (`wakep`);
//! - a goroutine locked to its thread (`lockthread`) runs only on its M,
//!   and its M runs nothing else: when it parks, the M hands its P on and
//!   waits for it;
//! - a goroutine in foreign code (`ccall`) keeps its P until the monitor
//!   ([`sysmon`]) retakes it (after about 20 µs, as Go's `retake`) and hands
//!   it to another M;
//! - the monitor also enforces the time slice: a goroutine that has run for
//!   the quantum gets a preemption request (see [`crate::preempt`]).
//!
//! Program end: `@main` returning ends the program (other goroutines are
//! abandoned); a panic in any goroutine ends it with its report; when
//! every goroutine is parked and no timer is pending, it is a deadlock
//! (checked as Go's `checkdead`, when the last P goes idle).
//!
//! Its files: [`procs`] (the P and the M), [`queues`] and [`runq`] (where
//! runnable goroutines wait, and the order they are taken in), this file
//! (readying, waking, the scheduling loop, slices, hand-offs, the end of
//! the program), [`calls`] (the operations a goroutine asks for), [`stw`]
//! (stopping the world), [`sysmon`] (the monitor), [`idle`] (the wake-up
//! rules), [`engine`] (JIT or interpreter), [`start`] (a run from start
//! to end).
//!
//! The switch and hand-over paths take no lock and no shared
//! read-modify-write beyond the channel's own lock and the `runnext` and
//! run-queue exchanges; everything the monitor and diagnoses read there is
//! a plain store by the one thread that owns it.

mod allgs;
mod calls;
mod collect;
pub mod diagnose;
pub mod engine;
pub mod harness;
pub mod idle;
mod observe;
mod procs;
mod queues;
mod runq;
mod start;
pub mod stw;
pub mod sysmon;
#[cfg(test)]
mod tests;

use allgs::{AllGs, GFree};
use procs::Handoff;
pub use procs::{PStatus, M, P};
pub use start::{run, run_interp};

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use preempt_jit::fault::{report, Fault};
use preempt_jit::interp::Interp;
use preempt_jit::ir::{ForeignFn, PreemptMode, Program};
use preempt_jit::module::Module;
use preempt_signals::handler::{gettid, AltStack};

use crate::preempt::qtimer::{self, QuantumTimer};
use crate::preempt::request::Asked;
use crate::preempt::worker;
use crate::preempt::{asynchronous, coop, Again, Requester};
use crate::stats::PreemptKind;

use crate::chan::{self, Case, ChanTable, SelectStep, Step, Wake};
use crate::g::{Exec, Resume, Status, WaitReason, G, NO_M};
use crate::gc::Collector;
use crate::preempt::request::Request;
use crate::timer::{Action, Timers};
use crate::trace::BlockReason;
use crate::{Observers, Outcome, Output, RunConfig};
use engine::{ChanRef, Engine, Op, SelectCase, SpawnArgs};

pub use crate::stack::Stack;
use crate::stack::StackPool;

thread_local! {
    /// The M (and its P) serving the current operation, for the paths
    /// that record a preemption deep in the serving code.
    static SERVING: std::cell::Cell<(usize, Option<usize>)> = const { std::cell::Cell::new((0, None)) };
}

/// Monotonic nanoseconds (CLOCK_MONOTONIC), as `now` returns: the clock
/// of the stats and the tracer. Async-signal-safe.
pub use crate::stats::monotonic_ns as monotonic_nanos;

/// The monotonic time `us` microseconds from now (none if negative),
/// saturating rather than wrapping for huge values.
fn deadline_after_us(us: i64) -> u64 {
    monotonic_nanos().saturating_add((us.max(0) as u64).saturating_mul(1000))
}

/// How the trace shows a goroutine parked for `r`.
fn block_reason(r: WaitReason) -> BlockReason {
    match r {
        WaitReason::ChanSend => BlockReason::Send,
        WaitReason::ChanReceive => BlockReason::Recv,
        WaitReason::Select => BlockReason::Select,
        WaitReason::Sleep => BlockReason::Sleep,
        WaitReason::GarbageCollection => BlockReason::Other("GC"),
        WaitReason::LockedThread | WaitReason::None => BlockReason::Other("runtime"),
    }
}

/// How long a thief lets a running P's `runnext` be (Go: 3 us).
const STEAL_NEXT_GRACE: Duration = Duration::from_micros(3);

pub(crate) use crate::sync::lock;

/// State under the scheduler lock.
#[derive(Debug, Default)]
struct Sched {
    runq: VecDeque<Arc<G>>,
    pidle: Vec<usize>,
    midle: Vec<Arc<M>>,
}

/// One running program.
#[derive(Debug)]
pub struct Runtime {
    pub cfg: RunConfig,
    /// Who watches the run: its statistics, tracer and harness.
    pub obs: Observers,
    pub engine: Engine,
    pub out: Output,
    /// The JIT heap and its collector.
    pub gc: Collector,
    /// Stopping the world, for the collector.
    pub world: stw::World,
    chans: ChanTable,
    pub timers: Timers,
    sched: Mutex<Sched>,
    /// Idle Ps (the length of `sched.pidle`) and spinning Ms, readable
    /// without the lock: the wake-up protocol ([`idle`]).
    idle: idle::Idle,
    pub ps: Vec<P>,
    pub ms: Mutex<Vec<Arc<M>>>,
    /// Goroutines' stacks: dead goroutines' kept for new ones (mapping,
    /// guard and first pages already set up).
    stacks: StackPool,
    /// Every goroutine not yet dead.
    pub allgs: AllGs,
    /// Dead goroutines' records, for new goroutines.
    gfree: GFree,
    next_gid: AtomicU64,
    /// The program's outcome, once it has one.
    outcome: Mutex<Option<Outcome>>,
    outcome_ready: Condvar,
    pub shutdown: AtomicBool,
    main_goexit: AtomicBool,
    /// Channels `notify` registered (signals delivered in async mode).
    pub notify: Mutex<Vec<ChanRef>>,
    /// The monitor's sleep and its wake-up.
    pub sysmon: sysmon::Monitor,
    /// What the preemption-signal handler reads (async mode, JIT engine),
    /// and the poll-page fault handler (trap mode).
    pub signals: Option<Box<worker::Shared>>,
    /// Poll words, poll pages and back-edge patches (poll, trap, patch).
    pub arming: crate::preempt::effect::Arming,
}

/// What to do after serving an operation.
enum Next {
    /// Resume the same goroutine.
    Continue(Resume),
    /// It yielded: back to the global run queue.
    Yield,
    /// It stopped for a preemption request: back to the global run queue.
    Preempted,
    /// It parked (a channel, a timer): someone will ready it.
    Park(WaitReason),
    /// It finished.
    Dead,
    /// It is in a run queue already, or handed elsewhere (foreign call
    /// without a P to come back to).
    Gone,
}

impl Runtime {
    fn new(
        cfg: RunConfig,
        obs: Observers,
        engine: Engine,
        out: Output,
        arming: crate::preempt::effect::Arming,
    ) -> Runtime {
        let procs = cfg.procs.max(1);
        Runtime {
            gc: Collector::new(&cfg),
            world: stw::World::default(),
            chans: ChanTable::default(),
            timers: Timers::default(),
            sched: Mutex::new(Sched {
                pidle: (0..procs).rev().collect(),
                ..Sched::default()
            }),
            idle: idle::Idle::new(procs),
            ps: (0..procs).map(P::new).collect(),
            ms: Mutex::default(),
            allgs: AllGs::default(),
            gfree: GFree::new(procs),
            stacks: StackPool::new(cfg.stack_size, engine.max_frame())
                .clearing_reused(cfg.gc_verify),
            next_gid: AtomicU64::new(1),
            outcome: Mutex::default(),
            outcome_ready: Condvar::new(),
            shutdown: AtomicBool::new(false),
            main_goexit: AtomicBool::new(false),
            notify: Mutex::default(),
            sysmon: sysmon::Monitor::new(cfg.sched),
            arming,
            signals: match &engine {
                // Async: the preemption signal's handler; trap: the
                // poll-page fault handler; any mode under the stress
                // harness: its trap-flag handler.
                Engine::Jit { module, .. }
                    if matches!(cfg.mode, PreemptMode::Async | PreemptMode::Trap)
                        || obs.harness.is_some() =>
                {
                    // SAFETY: the module, the stats and the harness are
                    // held by the runtime (through `engine` and `obs`), which every
                    // worker thread holds while it runs.
                    Some(Box::new(unsafe {
                        worker::Shared::new(
                            &module.tables,
                            &module.stubs,
                            worker::HandlerSettings {
                                stop: cfg.async_stop,
                                quantum_timer: (cfg.mode == PreemptMode::Async
                                    && cfg.quantum_timer == QuantumTimer::Thread)
                                    .then_some(cfg.quantum.as_nanos() as u64),
                                points: cfg.unsafe_points,
                                records: obs.tracer.is_on(),
                            },
                            &obs.stats.sched,
                            obs.harness.as_deref().map(|h| h.as_watcher()),
                        )
                    }))
                }
                _ => None,
            },
            cfg,
            obs,
            engine,
            out,
        }
    }

    /// Whether this run stops goroutines with the preemption signal
    /// (async mode, JIT engine). `signals` alone also exists in trap mode,
    /// for the poll-page fault handler.
    pub fn signals_preempt(&self) -> bool {
        self.cfg.mode == PreemptMode::Async && self.signals.is_some()
    }

    pub fn module(&self) -> Option<&Arc<Module>> {
        self.engine.module()
    }

    /// Ends the program with `outcome` (the first outcome wins).
    pub fn finish(&self, outcome: Outcome) {
        let mut o = lock(&self.outcome);
        if o.is_none() {
            self.out.flush();
            *o = Some(outcome);
            self.outcome_ready.notify_all();
        }
        drop(o);
        self.stop_everything();
    }

    fn stop_everything(&self) {
        if self.shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        self.timers.stop();
        self.sysmon.wake();
        self.gc.shutdown();
        for m in lock(&self.ms).iter() {
            m.give(|h| h.exit = true);
        }
        self.close_requests();
    }

    /// The run's end in the stop-request protocol: every request ended
    /// and undone (nothing armed outlives the run: the global poll page is
    /// the process's, and a later run in this process would find it
    /// protected, or a function patched), none made from now on (the
    /// requesters see `shutdown`). Then every guard is poisoned for good,
    /// so that goroutines still running their code stop at their next
    /// function entry and find the run over. Idempotent; once it returns,
    /// nothing is armed.
    fn close_requests(&self) {
        let gs = self.allgs.all();
        let stats = &self.obs.stats.sched;
        for g in &gs {
            g.stop.close(&self.arming.fx(g, stats, &self.obs.tracer));
            g.poison_guard();
        }
    }

    /// Makes a parked (or new) goroutine runnable: into `p`'s `runnext`
    /// when given (the waker's P, as Go does), else the global queue; then
    /// wakes an idle P if there is one.
    pub fn ready(&self, g: Arc<G>, p: Option<usize>) {
        g.set_status(Status::Runnable);
        match p {
            Some(p) => {
                if let Some(old) = self.ps[p].q.put_next(g) {
                    self.push_local(p, old);
                }
            }
            None => lock(&self.sched).runq.push_back(g),
        }
        self.wakep();
    }

    /// Queues `g` on P `p`, which the calling M holds; a full ring spills
    /// half of itself into the global queue (Go's `runqputslow`).
    fn push_local(&self, p: usize, g: Arc<G>) {
        self.ps[p]
            .q
            .push(g, |spill| lock(&self.sched).runq.extend(spill));
    }

    fn wake_all(&self, wakes: &mut Vec<Wake>, p: Option<usize>) {
        // In order (the last one woken runs next), without `drain`'s
        // bookkeeping: this runs at every hand-over.
        wakes.reverse();
        while let Some(w) = wakes.pop() {
            let fault = w.closed().then_some(Fault::SendOnClosedChannel);
            w.g.deliver_parts(w.value(), w.arm().map(u64::from), fault);
            self.ready(w.g, p);
        }
    }

    /// The wake-up of the protocol's W1 (see [`idle`]), after a goroutine
    /// was queued: starts a spinning M on an idle P if there is one and no
    /// M is already looking.
    fn wakep(&self) {
        if !self.idle.wanted() || self.shutdown.load(Ordering::Acquire) {
            return;
        }
        let (p, m) = {
            let mut s = lock(&self.sched);
            let Some(p) = self.idle.claim_for_spinning(&mut s.pidle) else {
                return;
            };
            (p, s.midle.pop())
        };
        self.ps[p].spinning.store(true, Ordering::Release);
        self.start_m(p, m);
        // A worker starts running: the monitor must not be on a long sleep.
        self.sysmon.worker_started();
    }

    /// The M on P `p` stops looking for work (it found some, or parks).
    fn stop_spinning(&self, p: usize) -> bool {
        let was = self.ps[p].spinning.swap(false, Ordering::AcqRel);
        if was {
            self.idle.stop_spinning();
        }
        was
    }

    /// Puts P `p` on the idle list; true if every P is idle now (the
    /// caller then runs [`Runtime::check_dead`], after the lock).
    fn idle_p(&self, s: &mut Sched, p: usize) -> bool {
        if self.stop_p_if_wanted(p) {
            return false;
        }
        self.ps[p].set_status(PStatus::Idle);
        self.ps[p].m.store(usize::MAX, Ordering::Release);
        self.idle.idled(&mut s.pidle, p) == self.ps.len()
    }

    /// W2's re-check (see [`idle`]), after a P went idle and the lock was
    /// released: a goroutine queued on any P meanwhile gets an M.
    fn recheck_queues(&self) {
        if self
            .idle
            .recheck(|| self.ps.iter().any(|p| p.q.has_work_rmw()))
        {
            self.wakep();
        }
    }

    /// Runs P `p` on `m` (an idle one) or on a new thread.
    fn start_m(&self, p: usize, m: Option<Arc<M>>) {
        self.ps[p].set_status(PStatus::Running);
        match m {
            Some(m) => {
                self.ps[p].m.store(m.id, Ordering::Release);
                m.give(|h| h.p = Some(p));
            }
            None => self.new_m(Some(p)),
        }
    }

    /// Starts a worker thread, running P `p`, or idle (a spare, so that the
    /// first hand-off does not wait for a thread to be created).
    fn new_m(&self, p: Option<usize>) {
        let m = {
            let mut ms = lock(&self.ms);
            let m = Arc::new(M::new(ms.len()));
            *lock(&m.handoff) = Handoff {
                p,
                ..Handoff::default()
            };
            if let Some(s) = &self.signals {
                m.sig.set_shared(s);
            }
            ms.push(m.clone());
            m
        };
        match p {
            Some(p) => self.ps[p].m.store(m.id, Ordering::Release),
            None => lock(&self.sched).midle.push(m.clone()),
        }
        self.obs.stats.sched.thread_created();
        let (rt, id) = (self.arc(), m.id);
        let spawned = std::thread::Builder::new()
            .name(format!("preempt-m{id}"))
            .spawn(move || rt.m_main(id));
        if let Err(e) = spawned {
            self.finish(Outcome {
                status: 1,
                stderr: format!("fatal error: newosproc: cannot start a worker thread: {e}\n"),
            });
        }
    }

    /// The runtime as an `Arc` (it always lives in one).
    fn arc(&self) -> Arc<Runtime> {
        // SAFETY: every Runtime is created by `start` inside an Arc, whose
        // strong count the threads keep above zero while they run.
        unsafe {
            Arc::increment_strong_count(self as *const Runtime);
            Arc::from_raw(self as *const Runtime)
        }
    }

    // ---- workers -----------------------------------------------------------

    fn m_main(self: Arc<Runtime>, id: usize) {
        let m = lock(&self.ms)[id].clone();
        m.tid.store(gettid(), Ordering::Release);
        if !self.pin_thread("an M") {
            return;
        }
        self.obs
            .tracer
            .thread_created(monotonic_nanos(), id as u32, gettid());
        if id == 0 {
            self.obs.stats.worker_tid.store(gettid(), Ordering::SeqCst);
        }
        // The kernel's signal frames go here, not on goroutine stacks.
        let _alt = match AltStack::install() {
            Ok(a) => Some(a),
            Err(e) if self.signals.is_some() => {
                self.finish(Outcome {
                    status: 1,
                    stderr: format!("fatal error: sigaltstack: {e}\n"),
                });
                return;
            }
            Err(_) => None,
        };
        let _worker = worker::enter_worker(&m.sig);
        let qtimer = self.signals.as_ref().and_then(|s| s.quantum_timer());
        if qtimer.is_some() {
            if let Err(e) = m.sig.qtimer.create(self.cfg.preempt_signal) {
                self.finish(Outcome {
                    status: 1,
                    stderr: format!("fatal error: timer_create (--quantum-timer thread): {e}\n"),
                });
                return;
            }
        }
        // Goroutines to wake after a channel operation, reused so that the
        // operations allocate nothing.
        let mut wakes = Vec::with_capacity(8);
        loop {
            // Wait for a P (or the locked goroutine) to be handed over.
            let (p, handed) = {
                let mut h = lock(&m.handoff);
                loop {
                    if h.exit || self.shutdown.load(Ordering::Acquire) {
                        return;
                    }
                    if let Some(p) = h.p.take() {
                        break (p, h.g.take());
                    }
                    h = m.wake.wait(h).unwrap_or_else(|e| e.into_inner());
                }
            };
            m.set_p(Some(p));
            if let Some(g) = handed {
                self.execute(&m, g, &mut wakes);
            }
            self.schedule(&m, &mut wakes);
        }
    }

    /// Runs goroutines on `m` until it has no P.
    fn schedule(&self, m: &Arc<M>, wakes: &mut Vec<Wake>) {
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            if self.world.wants_ps() && self.park_for_world(m) {
                return;
            }
            if m.locked.load(Ordering::Acquire) {
                // Only the locked goroutine may run here, and it is not
                // running: give the P away and wait until someone hands the
                // goroutine back (Go's stoplockedm).
                self.handoff_p(m);
                return;
            }
            let Some(p) = m.p() else {
                return;
            };
            let Some(g) = self.find_runnable(m, p) else {
                return;
            };
            let locked_m = g.locked_m.load(Ordering::Acquire);
            if locked_m != NO_M && locked_m != m.id as u64 {
                // Go's startlockedm: the goroutine runs on its own M; hand
                // it our P and the goroutine, and stop.
                let target = lock(&self.ms)[locked_m as usize].clone();
                m.take_p();
                self.ps[p].m.store(target.id, Ordering::Release);
                target.give(|h| {
                    h.p = Some(p);
                    h.g = Some(g);
                });
                self.idle_m(m);
                return;
            }
            self.execute(m, g, wakes);
        }
    }

    /// A runnable goroutine for P `p`, or None after giving `p` back and
    /// parking `m` (it was idle).
    fn find_runnable(&self, m: &Arc<M>, p: usize) -> Option<Arc<G>> {
        let g = self.find_runnable_inner(m, p);
        if self.stop_spinning(p) && g.is_some() {
            // A spinning M found work while others may be waiting for a P:
            // look for more hands, as Go does.
            self.wakep();
        }
        g
    }

    /// The order of [`queues`], then parking.
    fn find_runnable_inner(&self, m: &Arc<M>, p: usize) -> Option<Arc<G>> {
        let pp = &self.ps[p];
        // Only the M holding the P writes its tick.
        let tick = pp.schedtick.load(Ordering::Relaxed);
        pp.schedtick.store(tick.wrapping_add(1), Ordering::Relaxed);
        if queues::global_first(tick) {
            if let Some(g) = lock(&self.sched).runq.pop_front() {
                return Some(g);
            }
        }
        if let Some(g) = pp.q.pop() {
            return Some(g);
        }
        {
            let mut s = lock(&self.sched);
            let ring = &pp.q;
            let got = queues::take_global(&mut s.runq, self.ps.len(), |global, g| {
                ring.push(g, |spill| global.extend(spill));
            });
            if got.is_some() {
                return got;
            }
        }
        // Steal, as Go's spinning M does: a few rounds over the other Ps,
        // taking a `runnext` only in the last.
        for round in 0..queues::STEAL_ROUNDS {
            let start = (m.random() as usize) % self.ps.len();
            let last = round + 1 == queues::STEAL_ROUNDS;
            let got = queues::steal(
                |v| &self.ps[v].q,
                self.ps.len(),
                p,
                start,
                last,
                |v| self.steal_next(&self.ps[v]),
                |g| self.push_local(p, g),
            );
            if got.is_some() {
                return got;
            }
        }
        // Nothing to do. Stop spinning before the last look, under the
        // lock that `ready` queues under: work queued after that look
        // finds no spinning M and starts one (Go's "delicate dance").
        let was_spinning = self.stop_spinning(p);
        let mut s = lock(&self.sched);
        if let Some(g) = s.runq.pop_front().or_else(|| pp.q.pop()) {
            drop(s);
            if was_spinning {
                self.wakep();
            }
            return Some(g);
        }
        m.take_p();
        let all_idle = self.idle_p(&mut s, p);
        s.midle.push(m.clone());
        drop(s);
        self.recheck_queues();
        if all_idle {
            self.check_dead();
        }
        None
    }

    /// Takes `victim`'s `runnext`. A goroutine just readied by the running
    /// one usually runs within a microsecond (a channel hand-over), so
    /// while the victim runs, first sleep as Go does (`usleep(3)`, which
    /// the kernel's timer slack stretches to some 50 us) and take it only
    /// if the victim is still in the same slice: taking it would turn a
    /// ping-pong on one P into one across threads. Sleeping rather than
    /// polling keeps this thread off the victim's cache lines, and while
    /// it is spinning nobody wakes another M: on a ping-pong, the idle M
    /// is woken once per sleep rather than once per hand-over.
    fn steal_next(&self, victim: &P) -> Option<Arc<G>> {
        let seen = victim.q.next_id();
        if seen == 0 {
            return None;
        }
        if victim.status() == PStatus::Running {
            let seq = victim.slice_seq.load(Ordering::Acquire);
            std::thread::sleep(STEAL_NEXT_GRACE);
            if victim.slice_seq.load(Ordering::Acquire) != seq {
                return None;
            }
        }
        victim.q.steal_next(seen)
    }

    /// `m` has nothing to run: it parks (in `m_main`) until handed a P.
    fn idle_m(&self, m: &Arc<M>) {
        lock(&self.sched).midle.push(m.clone());
    }

    /// Gives `m`'s P to another M if there is work, else to the idle list.
    fn handoff_p(&self, m: &Arc<M>) {
        let Some(p) = m.take_p() else {
            return;
        };
        self.release_p(p);
    }

    /// P `p`, just taken from its M: to another M if there is work for it,
    /// else idle.
    fn release_p(&self, p: usize) {
        let mut s = lock(&self.sched);
        if self.stop_p_if_wanted(p) {
            return;
        }
        if self.ps[p].queued() > 0 || !s.runq.is_empty() {
            let m = s.midle.pop();
            drop(s);
            self.obs.stats.sched.handoff();
            let from = self.ps[p].m.load(Ordering::Acquire);
            let to = m.as_ref().map_or(lock(&self.ms).len(), |m| m.id);
            self.obs
                .tracer
                .handoff(monotonic_nanos(), p as u32, from as u32, to as u32);
            self.start_m(p, m);
        } else {
            let all_idle = self.idle_p(&mut s, p);
            drop(s);
            self.recheck_queues();
            if all_idle {
                self.check_dead();
            }
        }
    }

    /// Runs `g` on `m` until it stops running.
    fn execute(&self, m: &Arc<M>, g: Arc<G>, wakes: &mut Vec<Wake>) {
        // SAFETY: this M owns g (see below), not yet published as running.
        if let Err(e) = unsafe { self.engine.bind_stack(&g, &self.stacks) } {
            self.finish(Outcome {
                status: 1,
                stderr: format!("fatal error: cannot allocate a goroutine stack: {e}\n"),
            });
            return;
        }
        g.set_status(Status::Running);
        let p = m.p().expect("an M runs goroutines with a P");
        m.current.store(g.id, Ordering::Release);
        self.begin_slice(p, &g);
        let n = m.switches.load(Ordering::Relaxed);
        m.switches.store(n + 1, Ordering::Relaxed);
        let started = if self.obs.tracer.is_enabled() {
            monotonic_nanos()
        } else {
            0
        };
        let mut resume = g.take_delivery();
        self.forget_select(&g);
        if let Some(s) = &self.signals {
            // SAFETY: this M owns g (see below).
            m.sig
                .set_running(unsafe { Engine::jit_context(&g) }, Arc::as_ptr(&g));
            if let Some(q) = s.quantum_timer() {
                if m.sig.qtimer.slice_started(monotonic_nanos(), q) {
                    self.obs.stats.sched.count(qtimer::ARMS);
                }
            }
        }
        let next = loop {
            // SAFETY: this M owns g: it took it from a run queue or was
            // handed it, and nothing else touches its execution state until
            // it is queued or parked again.
            let op = unsafe { self.engine.resume(&g, &mut resume) };
            SERVING.with(|s| s.set((m.id, m.p())));
            match self.serve(m, &g, op, wakes) {
                Next::Continue(r) => resume = r,
                other => break other,
            }
        };
        m.current.store(0, Ordering::Release);
        if self.signals.is_some() {
            m.sig.set_running(std::ptr::null_mut(), std::ptr::null());
        }
        let p_now = m.p();
        // A parked goroutine's slice ended as it parked.
        if let (Some(p), false) = (p_now, matches!(next, Next::Park(_))) {
            let req = self.end_slice(p, &g, || observe::slice_end(&next));
            if matches!(next, Next::Yield) {
                self.stopped_by_itself(req);
            }
        }
        if self.obs.tracer.is_on() {
            self.observe_run(m, &g, &next, p_now.or(Some(p)), started);
        }
        match next {
            Next::Continue(_) | Next::Gone => {}
            Next::Yield => {
                // As Go's Gosched: the global queue, behind goroutines that
                // a timer or foreign code readied there. (The P's own queue
                // would keep them waiting for the 61st look: a goroutine
                // yielding every millisecond delayed a timer's wake-up by
                // 40 ms.) A goroutine was made runnable: the wake-up
                // protocol's W1.
                g.set_status(Status::Runnable);
                lock(&self.sched).runq.push_back(g);
                self.wakep();
            }
            Next::Preempted => {
                g.set_status(Status::Runnable);
                lock(&self.sched).runq.push_back(g);
                self.wakep();
            }
            Next::Park(_) => {}
            Next::Dead => {
                g.set_status(Status::Dead);
                // SAFETY: this M owns g, which is dead: nothing will run it.
                let jit = if let Exec::Jit { stack, .. } = unsafe { g.exec() } {
                    self.stacks.put(stack.take());
                    true
                } else {
                    false
                };
                match p_now {
                    Some(p) if jit => self.gfree.retire(p, g, &self.allgs),
                    _ => self.allgs.deregister(&g),
                }
            }
        }
    }

    /// A goroutine starts running on P `p`. No clock is read: the monitor
    /// times the slice from when it first sees its sequence number.
    fn begin_slice(&self, p: usize, g: &G) {
        self.ps[p].current_slot.store(g.slot, Ordering::Release);
        self.ps[p].current.store(g.id, Ordering::Release);
        self.ps[p].next_slice();
    }

    /// `g`'s slice on P `p` ends (once per slice: it parked, yielded,
    /// stopped, exited, or went into foreign code: `how`). After the
    /// sequence number has moved on, any stop request of the slice is
    /// withdrawn (the protocol's E1): returned if it was in effect.
    #[inline]
    fn end_slice(&self, p: usize, g: &G, how: impl FnOnce() -> &'static str) -> Option<Request> {
        self.ps[p].current.store(0, Ordering::Release);
        self.ps[p].next_slice();
        let fx = self.arming.fx(g, &self.obs.stats.sched, &self.obs.tracer);
        let req = g.stop.withdraw(&fx);
        if let Some(r) = req {
            let how = how();
            self.obs.stats.sched.count(crate::stats::withdrawn_key(how));
            if self.obs.tracer.is_on() {
                self.observe_withdrawn(g, r, how);
            }
        }
        req
    }

    /// A goroutine with a request in effect stopped at a point of its own
    /// (a yield, a block) as its slice ended: counted as a cooperative
    /// stop.
    fn stopped_by_itself(&self, req: Option<Request>) {
        if let Some(req) = req {
            let ttp = monotonic_nanos().saturating_sub(req.at);
            self.obs
                .stats
                .sched
                .preempted(req.kind, PreemptMode::Coop, ttp);
        }
    }

    /// Called when every P has gone idle, and when the last timer fires:
    /// if no goroutine can ever run again, ends the program (Go's
    /// `checkdead`). Nothing on the scheduler's hot path counts goroutines
    /// for this; the check looks at everything, and only when it can
    /// matter. With every P idle and no timer pending, only an M in foreign
    /// code can still ready a goroutine, so the state looked at is stable.
    pub(crate) fn check_dead(&self) {
        let all_idle = || self.idle.npidle() == self.ps.len();
        if self.shutdown.load(Ordering::Acquire) || !all_idle() || self.timers.pending() != 0 {
            return;
        }
        // A collection will wake the goroutines waiting for it.
        if self.world.is_stopping() || self.gc.busy() {
            return;
        }
        if !lock(&self.sched).runq.is_empty() || !all_idle() {
            return;
        }
        if lock(&self.ms).iter().any(|m| lock(&m.in_foreign).is_some()) {
            return;
        }
        let stirring = self
            .allgs
            .any(|g| matches!(g.status(), Status::Runnable | Status::Running));
        if stirring || self.timers.pending() != 0 || !all_idle() {
            return;
        }
        let fault = if self.main_goexit.load(Ordering::Acquire) {
            Fault::MainGoexit
        } else {
            Fault::Deadlock
        };
        let mut text = report(&fault, 0, &[], &self.cfg.file);
        if fault == Fault::Deadlock {
            text.push_str(&diagnose::goroutine_dump(self));
        }
        self.finish(Outcome {
            status: 1,
            stderr: text,
        });
    }

    /// Sends the preemption signal to the M holding P `p`; returns whether
    /// one went out (not if one is still in flight to it).
    pub fn signal_p(&self, p: &P) -> bool {
        let m = p.m.load(Ordering::Acquire);
        let Some(m) = lock(&self.ms).get(m).cloned() else {
            return false;
        };
        let sent = m
            .sig
            .send(m.tid.load(Ordering::Acquire), self.cfg.preempt_signal);
        if sent {
            self.obs.stats.sched.signal_sent();
            if self.obs.tracer.is_on() {
                self.observe_signal(p, &m);
            }
        }
        sent
    }

    /// The requester's side of a stop request in this run.
    pub fn requester(&self) -> Requester<'_> {
        Requester {
            arming: &self.arming,
            stats: &self.obs.stats.sched,
            tracer: &self.obs.tracer,
        }
    }

    /// Asks `g`, running on `p` in the slice numbered `seq`, to stop, for
    /// `kind` (Go's `preemptone`): the request is withdrawn if the slice
    /// or the run ends first.
    pub fn preempt(&self, p: &P, g: &G, seq: u64, kind: PreemptKind, now: u64) -> Asked {
        let current =
            || p.slice_seq.load(Ordering::Acquire) == seq && !self.shutdown.load(Ordering::Acquire);
        self.requester()
            .request(p.id as u32, g, kind, now, current, || {
                self.signal_p(p);
            })
    }

    /// Applies the request of `g`, running on `p`, again (see
    /// [`Requester::rerequest`]).
    pub fn preempt_again(&self, p: &P, g: &G, why: Again) -> bool {
        self.requester().rerequest(g, why, || {
            self.signal_p(p);
        })
    }

    /// Offers `n` arrivals of the preemption signal to every `notify`
    /// channel (dropped when full, as `signal.Notify` does).
    pub fn forward_signals(&self, n: u64) {
        let chans: Vec<ChanRef> = lock(&self.notify).clone();
        let mut wakes = Vec::new();
        for c in chans {
            if let Some(ch) = self.chans.get(c) {
                for _ in 0..n.min(ch.cap as u64 + 1) {
                    if !ch.offer(i64::from(self.cfg.preempt_signal), &mut wakes) {
                        break;
                    }
                }
            }
        }
        self.wake_all(&mut wakes, None);
    }

    /// The M holding P `p`, if any.
    pub fn m_of(&self, p: &P) -> Option<Arc<M>> {
        lock(&self.ms).get(p.m.load(Ordering::Acquire)).cloned()
    }

    /// Called by the monitor: takes P `p` from an M that has been in
    /// foreign code since `since`.
    pub fn retake(&self, p: usize) -> bool {
        if !self.ps[p].cas_status(PStatus::InForeign, PStatus::Idle) {
            return false;
        }
        self.release_p(p);
        true
    }
}
