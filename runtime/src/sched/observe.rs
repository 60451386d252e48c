//! What the run tells those who watch it, beyond the statistics: the
//! handlers' decisions handed to the tracer, each stop traced with where
//! it stopped, and the observer thread, which prints Go's scheduler trace
//! (`PREEMPTDEBUG=schedtrace=MS`, `scheddetail=1`) and the stop log
//! (`--log-stops`).
//!
//! Nothing here runs unless the run is observed: every caller first asks
//! [`crate::trace::Tracer::is_on`] (one test of a plain flag), and the
//! observer thread exists only with `schedtrace` or `--log-stops`. It
//! prints from its own thread, never where a stop is measured or in a
//! handler.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use preempt_jit::ir::PreemptMode;

use super::{block_reason, lock, monotonic_nanos, Next, PStatus, Runtime, M, P};
use crate::g::{Status, G, NO_M};
use crate::preempt::request::Request;
use crate::trace::{CodeRange, RequestEnd, RunEnd, Stop};

/// How often the observer hands the stop log to stderr.
const FLUSH_EVERY: Duration = Duration::from_millis(10);

impl Runtime {
    /// Tells the tracer the program's function names and code ranges, so
    /// that it names goroutines and PCs.
    pub(super) fn describe_code_to_tracer(&self) {
        let (tracer, Some(module)) = (&self.obs.tracer, self.module()) else {
            return;
        };
        if !tracer.is_on() {
            return;
        }
        tracer.set_function_names(module.names.functions.clone());
        let code = module.tables.functions.iter().map(|f| CodeRange {
            start: f.start,
            end: f.end,
            func: f.func.0,
        });
        tracer.set_code(code.collect());
    }

    /// Hands the decisions `m`'s handlers left to the tracer. With
    /// `wait`, after any other reader is done (the M itself at a stop:
    /// its redirect is traced before the stop is).
    pub(super) fn drain_decisions(&self, m: &M, wait: bool) {
        if !m.sig.log.has_records() {
            return;
        }
        let tracer = &self.obs.tracer;
        let lost = m.sig.log.drain(m.id as u32, wait, |d| tracer.handled(d));
        tracer.decisions_lost(lost);
    }

    /// [`Runtime::drain_decisions`] for every M that is not being read.
    pub(super) fn drain_all_decisions(&self) {
        let ms: Vec<_> = lock(&self.ms).clone();
        for m in &ms {
            self.drain_decisions(m, false);
        }
    }

    /// `g`, on M `m` (P `p`), stopped at `now` for `req` through `mech`:
    /// traced with where it stopped, after the decisions of its M's
    /// handlers. Called by the M, which owns `g`.
    pub(super) fn observe_stop(
        &self,
        m: usize,
        p: Option<usize>,
        g: &G,
        mech: PreemptMode,
        req: Request,
        now: u64,
    ) {
        if let Some(me) = lock(&self.ms).get(m).cloned() {
            self.drain_decisions(&me, true);
        }
        // SAFETY: this M owns g, in the runtime call of its stop.
        let pc = unsafe { self.engine.resume_pc(g, mech != PreemptMode::Coop) };
        self.obs.tracer.preempted(Stop {
            // A goroutine may reach the stub for another's request (a
            // patched function, the global page) and find its own made
            // just after it read the clock: it stopped as it was made.
            at: now.max(req.at),
            m: m as u32,
            p: p.map(|p| p as u32),
            g: g.id,
            mech,
            kind: req.kind,
            requested_at: req.at,
            pc,
        });
    }

    /// `g` ran on `m` (holding `p`) since `started` and stopped as
    /// `next` says: its run span, and the decisions `m`'s handlers left
    /// meanwhile.
    pub(super) fn observe_run(&self, m: &M, g: &G, next: &Next, p: Option<usize>, started: u64) {
        self.drain_decisions(m, false);
        if !self.obs.tracer.is_enabled() {
            return;
        }
        let how = match next {
            Next::Yield => RunEnd::Yield,
            Next::Preempted => RunEnd::Preempted(self.cfg.mode),
            Next::Dead => RunEnd::Exited,
            Next::Gone if m.p().is_none() => RunEnd::Foreign,
            Next::Park(reason) => RunEnd::Blocked(block_reason(*reason)),
            Next::Continue(_) | Next::Gone => RunEnd::Blocked(block_reason(g.reason())),
        };
        let p = p.map(|p| p as u32);
        let end = monotonic_nanos();
        (self.obs.tracer).run(m.id as u32, p, g.id, g.func.0, started, end, how);
    }

    /// `g`'s request `r` was in effect when its slice ended (`how`).
    pub(super) fn observe_withdrawn(&self, g: &G, r: Request, how: &'static str) {
        let end = RequestEnd::SliceEnded(how);
        let now = monotonic_nanos();
        self.obs.tracer.request_ended(now, g.id, r.at, r.kind, end);
    }

    /// The preemption signal just went to `m`, which holds `p`.
    pub(super) fn observe_signal(&self, p: &P, m: &M) {
        let g = p.current.load(Ordering::Acquire);
        let signo = self.cfg.preempt_signal;
        let (at, m, p) = (monotonic_nanos(), m.id as u32, p.id as u32);
        self.obs.tracer.signal_sent(at, m, p, g, signo);
    }

    /// Go's `schedtrace` line, and with `detailed` its per-P, per-M and
    /// per-G lines, from what this scheduler has: fields Go prints that
    /// have no counterpart here (needspinning, nmidlelocked, syscalltick,
    /// gfreecnt, timerslen, mallocing, throwing, preemptoff, locks,
    /// dying) are left out rather than invented. `ms` is the time since
    /// the first line.
    pub(super) fn schedtrace(&self, ms: u64, detailed: bool) -> String {
        let mut out = String::new();
        let allms: Vec<_> = lock(&self.ms).clone();
        let (idle_ms, runqueue) = {
            let s = lock(&self.sched);
            let idle: Vec<usize> = s.midle.iter().map(|m| m.id).collect();
            (idle, s.runq.len())
        };
        let _ = write!(
            out,
            "SCHED {ms}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} idlethreads={} runqueue={}",
            self.ps.len(),
            self.idle.npidle(),
            allms.len(),
            self.idle.nspinning(),
            idle_ms.len(),
            runqueue,
        );
        if !detailed {
            let queues: Vec<String> = self.ps.iter().map(|p| p.q.ring_len().to_string()).collect();
            let ticks: Vec<String> = self
                .ps
                .iter()
                .map(|p| p.schedtick.load(Ordering::Relaxed).to_string())
                .collect();
            let _ = writeln!(
                out,
                " [ {} ] schedticks=[ {} ]",
                queues.join(" "),
                ticks.join(" ")
            );
            return out;
        }
        let stopping = self.world.is_stopping();
        let stopwait = if stopping {
            self.ps
                .iter()
                .filter(|p| p.status() != PStatus::Stopped)
                .count()
        } else {
            0
        };
        let _ = writeln!(
            out,
            " gcwaiting={stopping} stopwait={stopwait} sysmonwait={}",
            self.sysmon.sleeps_deeply()
        );
        let nil = |v: Option<String>| v.unwrap_or_else(|| "nil".into());
        for p in &self.ps {
            // Read as Go reads them, racily: the status, then the M.
            let status = p.status();
            let m = p.m.load(Ordering::Acquire);
            let m = (status != PStatus::Idle && m != usize::MAX).then(|| m.to_string());
            let _ = writeln!(
                out,
                "  P{}: status={} schedtick={} m={} runqsize={}",
                p.id,
                status as u8,
                p.schedtick.load(Ordering::Relaxed),
                nil(m),
                p.q.ring_len(),
            );
        }
        let gs: Vec<_> = {
            let mut v: Vec<_> = self.allgs.filter(|g| g.status() != Status::Dead);
            v.sort_by_key(|g| g.id);
            v
        };
        let locked_to = |m: usize| {
            gs.iter()
                .find(|g| g.locked_m.load(Ordering::Acquire) == m as u64)
                .map(|g| g.id.to_string())
        };
        for m in &allms {
            let p = m.p();
            let curg = m.current.load(Ordering::Acquire);
            let spinning = p.is_some_and(|p| self.ps[p].spinning.load(Ordering::Acquire));
            let lockedg = if m.locked.load(Ordering::Acquire) {
                locked_to(m.id)
            } else {
                None
            };
            let _ = writeln!(
                out,
                "  M{}: p={} curg={} spinning={spinning} blocked={} lockedg={}",
                m.id,
                nil(p.map(|p| p.to_string())),
                nil((curg != 0).then(|| curg.to_string())),
                idle_ms.contains(&m.id),
                nil(lockedg),
            );
        }
        for g in &gs {
            let on = allms
                .iter()
                .find(|m| m.current.load(Ordering::Acquire) == g.id);
            let in_foreign = on.is_some_and(|m| lock(&m.in_foreign).is_some());
            // Go's numbers: _Grunnable 1, _Grunning 2, _Gsyscall 3,
            // _Gwaiting 4, _Gdead 6; a wait reason only while waiting.
            let (status, reason) = match g.status() {
                Status::Runnable => (1, ""),
                Status::Running if in_foreign => (3, ""),
                Status::Running => (2, ""),
                Status::Waiting => (4, g.reason().name()),
                Status::Dead => (6, ""),
            };
            let lockedm = g.locked_m.load(Ordering::Acquire);
            let _ = writeln!(
                out,
                "  G{}: status={status}({reason}) m={} lockedm={}",
                g.id,
                nil(on.map(|m| m.id.to_string())),
                nil((lockedm != NO_M).then(|| lockedm.to_string())),
            );
        }
        out
    }
}

/// How a slice that did not park ended, for a request it withdrew.
pub(super) fn slice_end(next: &Next) -> &'static str {
    match next {
        Next::Yield => "yield",
        Next::Dead => "exited",
        Next::Preempted => "stopped for an earlier request",
        _ => "slice end",
    }
}

/// The observer thread: a `schedtrace` line every period (the first at
/// once, as Go's sysmon prints its first on its first look), and the stop
/// log handed to stderr every [`FLUSH_EVERY`], until the run ends (the
/// run's end flushes the rest after joining it).
pub(super) fn run(rt: &Runtime) {
    let period = rt.cfg.schedtrace;
    let logs = rt.obs.tracer.logs_stops();
    let mut first: Option<u64> = None;
    let mut next_trace = monotonic_nanos();
    while !rt.shutdown.load(Ordering::Acquire) {
        let now = monotonic_nanos();
        if let Some(period) = period {
            if now >= next_trace {
                let since = now - *first.get_or_insert(now);
                let text = rt.schedtrace(since / 1_000_000, rt.cfg.scheddetail);
                crate::output::diagnose(&text);
                next_trace = now + period.as_nanos() as u64;
            }
        }
        if logs {
            rt.drain_all_decisions();
            rt.obs.tracer.flush_stops(&mut std::io::stderr().lock());
        }
        let mut sleep = FLUSH_EVERY;
        if period.is_some() {
            let until = Duration::from_nanos(next_trace.saturating_sub(monotonic_nanos()));
            sleep = sleep.min(until);
        }
        std::thread::sleep(sleep);
    }
}
