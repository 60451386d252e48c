//! Stopping the world: every P stopped, so that no goroutine runs and none
//! is halfway through anything but a safe point. The collector's mark
//! start and mark termination need it.
//!
//! Modelled on Go's `stopTheWorldWithSema`:
//!
//! 0. The stop runs on a thread that holds a P, as Go's stopper is a
//!    goroutine on a P (the `runtime.GC` caller, a mark worker). The
//!    collector takes an idle P, or one in foreign code, and stops the
//!    world itself; failing that, it posts the stop as a job
//!    ([`World::want_p`]), asks one running goroutine to stop, and
//!    sleeps: the first M to reach a scheduling point gives its P to the
//!    job and runs the whole stop, work included, on its own thread,
//!    the other Ps running on meanwhile (a P that goes idle instead is
//!    given to the collector, which then runs the stop). With every CPU
//!    busy, a stopper without a P competes for the CPUs with the very
//!    threads it waits for: measured with four call-free spinners on two
//!    Ps, stopping took 36 µs (p50) from the collector's thread, 16-19 µs
//!    from a P it had to be woken on, 15 µs from the M that gave the P.
//!    The time to get the P is recorded apart ([`STW_OWN_P`]); Go's
//!    stopping time does not count it either.
//! 1. Under the scheduler lock, set `stopping` (Go's `sched.gcwaiting`)
//!    and take every idle P: from then on a P that would go idle, or be
//!    handed to another M, stops instead ([`Runtime::stop_p`]), and an M
//!    that comes back to its scheduling loop gives its P to the stop
//!    ([`Runtime::park_for_world`]) and parks like an idle M.
//! 2. A P in foreign code (`ccall`) is taken as it is, by one
//!    compare-and-swap from `InForeign` to `Stopped`, as Go takes Ps in
//!    system calls: its goroutine is stopped in a runtime call already,
//!    and when the call returns the M finds its P gone and queues the
//!    goroutine.
//! 3. Every goroutine still running is asked to stop through
//!    [`Runtime::preempt`] with [`PreemptKind::StopTheWorld`], and asked
//!    again while the stop waits (at 5 µs, doubling to 50 µs while the
//!    stopper watches, then every 100 µs: a goroutine that had stopped
//!    and was started again before its P was taken drops a stale
//!    request, a new slice needs a new one, and a handler may decline),
//!    until every P is stopped.
//!
//! The stop-the-world latency (from the request, the stopper holding its
//! P, to the last P stopped) is recorded in the [`STW_LATENCY`]
//! histogram. A goroutine that never reaches a safe point (a call-free
//! loop in `coop` mode: the seed's Bug 2) stops the world from ever
//! stopping: the program does not deadlock silently, since after the
//! hang threshold the wait says on stderr which goroutine it waits for
//! and why it does not stop, and the watchdog's report names the stop.
//! [`Runtime::start_the_world`] hands the Ps with work to Ms and puts the
//! rest on the idle list.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{lock, monotonic_nanos, PStatus, Runtime, M};
use crate::preempt::request::{self, Asked};
use crate::preempt::{self, Again};
use crate::stats::{PreemptKind, STW_LATENCY, STW_OWN_P};
use crate::trace::WorldStop;

/// How often a waiting stop asks the running goroutines again.
const RETRY: Duration = Duration::from_micros(100);
/// The longest wait between the asks for the stopper's own P.
const RETRY_MAX: Duration = Duration::from_millis(1);
/// How long the stopper watches (yielding) before it sleeps, in ns.
const SPIN: u64 = 50_000;
/// How soon the watching stopper first asks again, in ns.
const RECHECK: u64 = 5_000;

/// The figure each stop's pause is recorded under.
pub const STW_PAUSE: &str = "stop-the-world pause";

/// What the world is stopped for, as reports name it (the collector's
/// [`MARK_START`](crate::gc::cycle::MARK_START) and
/// [`MARK_TERMINATION`](crate::gc::cycle::MARK_TERMINATION)).
pub type Why = &'static str;

/// The state of stopping the world.
#[derive(Debug, Default)]
pub struct World {
    /// From the stop request until the world starts again.
    stopping: AtomicBool,
    /// The stopper asks for a P of its own before it stops the others
    /// (Go stops the world from an M that holds a P): the next P to reach
    /// a scheduling point is given to it, and this cleared.
    want_p: AtomicBool,
    /// `Stop::generation`, readable without the lock (the stopper's spin).
    generation: AtomicU64,
    /// Ps stopped so far (a generation count, so that a waiter never
    /// misses a wake-up), and the stop in progress, for diagnoses.
    stopped: Mutex<Stop>,
    cv: Condvar,
    /// The stopper waits on this for its job ([`Stop::job`]) to be given
    /// to it or done; not woken when an M takes it (the stopper's thread
    /// would compete for the CPUs of the stop it waits for).
    job_cv: Condvar,
}

#[derive(Debug, Default)]
struct Stop {
    generation: u64,
    /// What the world is being stopped (or is stopped) for, since when.
    current: Option<(Why, u64)>,
    job: Job,
}

/// What [`Runtime::wait_for_ps`] waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wait {
    /// One P for the stopper: its job taken by an M or given a P.
    OneP,
    /// Every P stopped.
    AllPs,
}

/// What runs while the world is stopped (given the runtime), on the
/// thread that holds the stopper's P; false ends the program's run (the
/// world is not started again).
pub type StopWork = Arc<dyn Fn(&Runtime) -> bool + Send + Sync>;

/// A stop of the world the stopper waits for a P to run.
#[derive(Default)]
enum Job {
    #[default]
    None,
    /// Waiting for a P: the first M at a scheduling point takes the job
    /// (and runs it), or a P that goes idle is given to the stopper.
    Posted {
        why: Why,
        wanted_at: u64,
        work: StopWork,
    },
    Taken,
    Given,
    /// Run by an M: whether it ran to the end.
    Done(bool),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::None => "None",
            Job::Posted { .. } => "Posted",
            Job::Taken => "Taken",
            Job::Given => "Given",
            Job::Done(_) => "Done",
        })
    }
}

impl World {
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The world stops, or the stopper waits for a P of its own: a P at a
    /// scheduling point may have to stop ([`Runtime::stop_p_if_wanted`]).
    pub fn wants_ps(&self) -> bool {
        self.stopping.load(Ordering::Acquire) || self.want_p.load(Ordering::Acquire)
    }

    /// The stop in progress or in effect, and since when (monotonic ns).
    pub fn current(&self) -> Option<(Why, u64)> {
        lock(&self.stopped).current
    }
}

impl Runtime {
    /// Stops every P (see the module docs), runs `work` with the world
    /// stopped, and starts the world again. Only the collector's thread
    /// calls this, one stop at a time; `work` runs on the thread that
    /// holds the stopper's P (this one, or the M that gave that P up).
    /// False if the program ended meanwhile or `work` returned false (the
    /// world is then left as it is: the program is ending).
    pub fn with_world_stopped(&self, why: Why, work: StopWork) -> bool {
        let wanted_at = monotonic_nanos();
        let own = {
            let mut s = lock(&self.sched);
            let mut st = lock(&self.world.stopped);
            st.current = Some((why, wanted_at));
            let own = self.take_p_for_stopper(&mut s);
            if !own {
                st.job = Job::Posted {
                    why,
                    wanted_at,
                    work: work.clone(),
                };
                self.world.want_p.store(true, Ordering::SeqCst);
            }
            own
        };
        if own {
            return self.run_stopped(why, wanted_at, &work);
        }
        let got = self.wait_for_ps(why, wanted_at, Wait::OneP);
        let mut st = lock(&self.world.stopped);
        loop {
            match std::mem::replace(&mut st.job, Job::None) {
                // An M runs the stop; wait for its end (it ends on its
                // own if the program ends: its waits look at shutdown).
                Job::Taken => {
                    st.job = Job::Taken;
                    st = self
                        .world
                        .job_cv
                        .wait_timeout(st, RETRY_MAX)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                Job::Done(ok) => return ok,
                Job::Given => {
                    drop(st);
                    return self.run_stopped(why, wanted_at, &work);
                }
                // Still posted: the program ended before any P came.
                Job::Posted { .. } | Job::None => {
                    debug_assert!(got.is_none());
                    self.world.want_p.store(false, Ordering::Release);
                    return false;
                }
            }
        }
    }

    /// The rest of a stop, on the thread that holds the stopper's P
    /// (stopped, counted as such): stops the other Ps, runs `work`,
    /// starts the world.
    fn run_stopped(&self, why: Why, wanted_at: u64, work: &StopWork) -> bool {
        let requested_at = monotonic_nanos();
        self.obs
            .stats
            .sched
            .record(STW_OWN_P, requested_at.saturating_sub(wanted_at));
        {
            let mut s = lock(&self.sched);
            self.world.stopping.store(true, Ordering::SeqCst);
            let super::Sched { pidle, .. } = &mut *s;
            for p in self.idle.take_all(pidle) {
                self.ps[p].set_status(PStatus::Stopped);
            }
        }
        if self.wait_for_ps(why, requested_at, Wait::AllPs).is_none() {
            return false;
        }
        let stopped_at = monotonic_nanos();
        let latency = stopped_at.saturating_sub(requested_at);
        self.obs.stats.sched.record(STW_LATENCY, latency);
        if !work(self) {
            return false;
        }
        self.start_the_world(requested_at);
        if self.obs.tracer.is_on() {
            self.obs.tracer.stopped_the_world(WorldStop {
                why,
                wanted_at,
                requested_at,
                stopped_at,
                restarted_at: monotonic_nanos(),
            });
        }
        true
    }

    /// Under the scheduler lock, the stopper's own P if one can be had at
    /// once: an idle one, or one in foreign code.
    fn take_p_for_stopper(&self, s: &mut super::Sched) -> bool {
        if let Some(p) = self.idle.take(&mut s.pidle) {
            self.ps[p].set_status(PStatus::Stopped);
            self.ps[p].m.store(usize::MAX, Ordering::Release);
            return true;
        }
        self.ps
            .iter()
            .any(|p| p.cas_status(PStatus::InForeign, PStatus::Stopped))
    }

    /// Waits until one P has been given to the stopper, or until every P
    /// has stopped, asking the goroutines that run to stop (again every
    /// [`RETRY`] while the wait lasts). False if the program ended.
    fn wait_for_ps(&self, why: Why, since: u64, wait: Wait) -> Option<()> {
        let hang = self.cfg.hang_threshold.as_nanos() as u64;
        let mut reported = false;
        let mut asked = 0u64;
        let mut retry = RETRY;
        let mut recheck = RECHECK;
        let mut spun = 0;
        // Each P's request applied again after a back-off (a request that
        // stays in effect without its goroutine stopping).
        let mut again = vec![preempt::Backoff::default(); self.ps.len()];
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return None;
            }
            let seen = lock(&self.world.stopped).generation;
            let now = monotonic_nanos();
            let mut done = true;
            let mut waiting_for = None;
            // For one P, one goroutine is asked at first (asking every one
            // would stop the others for nothing), all of them on retries.
            let ask_all = wait == Wait::AllPs || now >= since + RETRY.as_nanos() as u64;
            if wait == Wait::OneP {
                done = !matches!(lock(&self.world.stopped).job, Job::Posted { .. });
            }
            for p in &self.ps {
                if wait == Wait::OneP && (done || (asked > 0 && !ask_all)) {
                    break;
                }
                match p.status() {
                    PStatus::Stopped => {}
                    PStatus::InForeign if p.cas_status(PStatus::InForeign, PStatus::Stopped) => {
                        if wait == Wait::OneP {
                            let mut st = lock(&self.world.stopped);
                            if matches!(st.job, Job::Posted { .. }) {
                                st.job = Job::Given;
                                self.world.want_p.store(false, Ordering::Release);
                            }
                            done = true;
                        }
                    }
                    _ => {
                        if wait == Wait::AllPs {
                            done = false;
                        }
                        let seq = p.slice_seq.load(Ordering::Acquire);
                        let id = p.current.load(Ordering::Acquire);
                        if let Some(g) = (id != 0).then(|| self.running_on(p, id)).flatten() {
                            asked += 1;
                            let asked = self.preempt(p, &g, seq, PreemptKind::StopTheWorld, now);
                            if let (Asked::Busy(request::Phase::Armed), Some(req)) =
                                (asked, g.stop.armed())
                            {
                                if self.cfg.mode == crate::PreemptMode::Async
                                    && g.redirected_at.load(Ordering::Acquire) < req.at
                                {
                                    // In effect and not redirected (the
                                    // handler declined, or has not run):
                                    // signal again; a signal in flight
                                    // coalesces with this one.
                                    self.signal_p(p);
                                }
                                if again[p.id].due(req.at, now).is_ok() {
                                    self.preempt_again(p, &g, Again::Backoff);
                                }
                            }
                            waiting_for.get_or_insert((p.id, g));
                        }
                    }
                }
            }
            if done {
                return Some(());
            }
            if let (Some((p, g)), false) = (&waiting_for, reported) {
                let age = now.saturating_sub(since);
                if hang > 0 && age >= hang {
                    reported = true;
                    let m = self.ps[*p].m.load(Ordering::Acquire);
                    if let Some(text) = super::diagnose::stw_stuck(self, why, *p, m, g, age) {
                        crate::output::diagnose(&text);
                    }
                }
            }
            // Stopping every P (this thread holds a P of its own), watch
            // for the next to stop for a while before sleeping, yielding
            // the CPU meanwhile: a goroutine's thread may be waiting for
            // this very CPU to run the handler of the signal just sent;
            // otherwise the stop is seen at once, without the wake-up of a
            // sleeping thread (tens of microseconds on a VM). While it
            // watches, it asks again at 5 µs, then doubling, as the
            // monitor resends (a P may have started a new slice, or the
            // handler declined). Waiting for a P of its own, the stopper
            // holds none, so every P's thread may want a CPU: it sleeps at
            // once. Measured with four spinners on two Ps: yielding
            // instead kept the stopper off the CPUs for 1-4 ms (the
            // scheduler ran the spinners' threads for whole slices).
            if wait == Wait::AllPs && spun < SPIN {
                let until = monotonic_nanos() + recheck;
                spun += recheck;
                recheck = (recheck * 2).min(SPIN);
                while self.world.generation.load(Ordering::Acquire) == seen
                    && monotonic_nanos() < until
                {
                    std::thread::yield_now();
                }
                continue;
            }
            let st = lock(&self.world.stopped);
            match wait {
                Wait::AllPs if st.generation == seen => {
                    let _ = self.world.cv.wait_timeout(st, RETRY);
                }
                Wait::OneP if matches!(st.job, Job::Posted { .. }) => {
                    // Asked again after RETRY, then less and less often:
                    // the wake-up of this thread must not fall into the
                    // stop that an M may be running meanwhile.
                    let _ = self.world.job_cv.wait_timeout(st, retry);
                    retry = (retry * 2).min(RETRY_MAX);
                }
                _ => {}
            }
        }
    }

    /// Starts the world again, stopped since `requested_at`: Ps with work
    /// go to Ms, the rest idle.
    fn start_the_world(&self, requested_at: u64) {
        let mut starts = Vec::new();
        let all_idle = {
            let mut s = lock(&self.sched);
            self.world.stopping.store(false, Ordering::SeqCst);
            let mut global = s.runq.len();
            for p in 0..self.ps.len() {
                if self.ps[p].status() != PStatus::Stopped {
                    continue;
                }
                let work = if self.ps[p].queued() > 0 {
                    true
                } else if global > 0 {
                    global -= 1;
                    true
                } else {
                    false
                };
                if work {
                    self.ps[p].set_status(PStatus::Running);
                    starts.push((p, s.midle.pop()));
                } else {
                    self.ps[p].set_status(PStatus::Idle);
                    self.ps[p].m.store(usize::MAX, Ordering::Release);
                    self.idle.idled(&mut s.pidle, p);
                }
            }
            self.idle.npidle() == self.ps.len()
        };
        lock(&self.world.stopped).current = None;
        let pause = monotonic_nanos().saturating_sub(requested_at);
        self.obs.stats.sched.record(STW_PAUSE, pause);
        let started = !starts.is_empty();
        for (p, m) in starts {
            self.start_m(p, m);
        }
        if started {
            self.sysmon.wake();
        }
        if all_idle {
            self.check_dead();
        }
    }

    /// P `p`, which would go idle or to another M, stops for the world
    /// instead. Under the scheduler lock, while the world stops.
    pub(super) fn stop_p(&self, p: usize) {
        self.stop_spinning(p);
        self.ps[p].set_status(PStatus::Stopped);
        self.ps[p].m.store(usize::MAX, Ordering::Release);
        let mut st = lock(&self.world.stopped);
        st.generation += 1;
        self.world
            .generation
            .store(st.generation, Ordering::Release);
        self.world.cv.notify_all();
    }

    /// Under the scheduler lock, P `p` at a scheduling point: stops it if
    /// the world stops or the stopper wants a P of its own (true); the P
    /// is then given to the stopper, whose thread runs the stop.
    pub(super) fn stop_p_if_wanted(&self, p: usize) -> bool {
        self.stop_p_for(p, false).is_some()
    }

    /// [`Runtime::stop_p_if_wanted`] for P `p` of an M that can run the
    /// stop itself (`can_run`): the job, if it takes the stopper's.
    fn stop_p_for(&self, p: usize, can_run: bool) -> Option<Option<(Why, u64, StopWork)>> {
        if self.world.is_stopping() {
            self.stop_p(p);
            return Some(None);
        }
        if !self.world.want_p.load(Ordering::Acquire) {
            return None;
        }
        // The job's state decides (the flag is only the unlocked hint).
        let job = {
            let mut st = lock(&self.world.stopped);
            if !matches!(st.job, Job::Posted { .. }) {
                return None;
            }
            self.world.want_p.store(false, Ordering::Release);
            match std::mem::replace(&mut st.job, Job::Given) {
                Job::Posted {
                    why,
                    wanted_at,
                    work,
                } if can_run => {
                    st.job = Job::Taken;
                    Some((why, wanted_at, work))
                }
                _ => None,
            }
        };
        self.stop_p(p);
        if job.is_none() {
            self.world.job_cv.notify_all();
        }
        Some(job)
    }

    /// An M back in its scheduling loop while the world stops or the
    /// stopper wants a P: gives its P to the stop and goes idle (it waits
    /// for a P in `m_main`). If the stopper wanted a P, this M runs the
    /// stop with it before (Go stops the world from a P-holding M: the
    /// stopper's own thread would have to be woken, and may find every
    /// CPU taken). False if nothing wants the P any more or the M has
    /// none.
    pub(super) fn park_for_world(&self, m: &Arc<M>) -> bool {
        let mut s = lock(&self.sched);
        let Some(p) = m.p() else {
            return false;
        };
        // A locked M waits for its goroutine, not for any P (the hand-off
        // to it brings both): it cannot run a stop, which ends in handing
        // Ps to idle Ms.
        let locked = m.locked.load(Ordering::Acquire);
        let Some(job) = self.stop_p_for(p, !locked) else {
            return false;
        };
        m.take_p();
        if !locked {
            s.midle.push(m.clone());
        }
        drop(s);
        if let Some((why, wanted_at, work)) = job {
            let ok = self.run_stopped(why, wanted_at, &work);
            lock(&self.world.stopped).job = Job::Done(ok);
            self.world.job_cv.notify_all();
        }
        true
    }
}
