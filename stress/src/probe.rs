//! What the harness and the signal handlers of one run share: what to do
//! to the run (set before it starts), and what happened (written by the
//! handlers through atomics, read by the harness once the run is over).
//!
//! Everything a handler calls here is async-signal-safe: atomics on
//! memory allocated before the run, binary searches, no lock, no
//! allocation, no formatting, no panic (no indexing, no unwrap).

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use preempt_signals::MachineContext;

use preempt_jit::ir::PreemptMode;

use crate::armer::Mailbox;
use preempt_jit::abi::GoroutineContext;
use preempt_runtime::harness::{Harness, SwitchTo, Watcher};
use preempt_runtime::preempt::decide::{Decision, RetryReason};
use preempt_runtime::sched::Runtime;

/// What the harness does to a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeMode {
    /// Single-step the run's JIT code and count instruction boundaries:
    /// make a stop request at boundary `request_at`, ask `decide` from
    /// boundary `target` on until the request is dealt with, then stop
    /// stepping. Without a request (a counting run), stop stepping after
    /// `stop_after` boundaries.
    Step {
        target: u64,
        request_at: u64,
        stop_after: u64,
    },
    /// A thread of the runtime requests a stop of whatever runs and sends
    /// the preemption signal, again and again, `interval_ns` apart.
    Storm { interval_ns: u64 },
}

/// Fault injection, to show that the harness finds what goes wrong at a
/// preemption point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Every redirect inverts the interrupted thread's condition flags
    /// before the stub saves them, as a stub that clobbered them first
    /// would: a compare's result is lost before its branch or `setcc`.
    Flags,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Flags => "flags",
        }
    }
}

/// How the boundary the harness aimed at turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The run ended before it.
    NotReached,
    /// `decide` redirected the goroutine there.
    Redirected,
    /// `decide` declined, for this reason.
    Declined(RetryReason),
    /// The request made earlier (`--request-lead`) was honoured by the
    /// goroutine itself before the boundary (a function entry, a runtime
    /// call), or the boundary belongs to a goroutine without a request.
    StoppedBefore,
    /// Under a back-edge mechanism (or `coop`): the goroutine was armed
    /// there through the mode's own mechanism (the poll word, the poll
    /// page, its function's back-edges patched; `coop`: the request alone)
    /// and ran on towards its next back-edge or cooperative point.
    Armed,
}

const NOT_REACHED: u8 = 0;
const REDIRECTED: u8 = 1;
const STOPPED_BEFORE: u8 = 2;
const VERDICT_ARMED: u8 = 3;
const DECLINED: u8 = 16;

impl Verdict {
    fn code(self) -> u8 {
        match self {
            Verdict::NotReached => NOT_REACHED,
            Verdict::Redirected => REDIRECTED,
            Verdict::StoppedBefore => STOPPED_BEFORE,
            Verdict::Armed => VERDICT_ARMED,
            Verdict::Declined(r) => DECLINED + r.index() as u8,
        }
    }

    fn from_code(c: u8) -> Verdict {
        match c {
            REDIRECTED => Verdict::Redirected,
            STOPPED_BEFORE => Verdict::StoppedBefore,
            VERDICT_ARMED => Verdict::Armed,
            c if c >= DECLINED => RetryReason::ALL
                .get(usize::from(c - DECLINED))
                .map_or(Verdict::NotReached, |&r| Verdict::Declined(r)),
            _ => Verdict::NotReached,
        }
    }

    pub(crate) fn of(d: Decision) -> Verdict {
        match d {
            Decision::Redirect { .. } => Verdict::Redirected,
            Decision::Retry(r) => Verdict::Declined(r),
            Decision::Stale | Decision::NotOurs => Verdict::StoppedBefore,
        }
    }
}

/// How a stop request made by the stepping harness ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Still pending when the run ended.
    Never,
    /// Redirected into the stub at this boundary and PC (under a
    /// back-edge mechanism: the goroutine entered the stub through its
    /// yield path, after this boundary).
    Redirected { boundary: u64, pc: usize },
    /// Honoured by the goroutine itself (a function entry's stack check, a
    /// runtime call, a block), seen at this boundary.
    Cooperative { boundary: u64 },
}

/// Stepping phases.
pub(crate) const COUNTING: u8 = 0;
pub(crate) const REQUESTED: u8 = 1;
pub(crate) const DONE: u8 = 2;
/// Armed through the mode's mechanism; stepping goes on until it stops.
pub(crate) const ARMED: u8 = 3;

/// One run's shared state.
#[derive(Debug)]
pub struct Probe {
    mode: ProbeMode,
    /// The run's preemption mode: how a stepped stop is made (`async`:
    /// `decide` and a redirect; the others: their own mechanism).
    mechanism: PreemptMode,
    fault: Fault,
    /// The start of every machine instruction of the program's functions,
    /// sorted: the static instruction boundaries.
    starts: Arc<[usize]>,
    /// Bit i: a redirect / a declined handler at `starts[i]`.
    redirected: Box<[AtomicU64]>,
    declined: Box<[AtomicU64]>,
    // Stepping.
    pub(crate) phase: AtomicU8,
    /// JIT instruction boundaries passed (traps with the PC in a JIT
    /// function).
    pub(crate) boundaries: AtomicU64,
    /// Every trap, in stubs included.
    pub(crate) traps: AtomicU64,
    /// The PC of boundary i + 1, for the first `pcs.len()` boundaries.
    pcs: Box<[AtomicUsize]>,
    target_pc: AtomicUsize,
    target_verdict: AtomicU8,
    stop_boundary: AtomicU64,
    stop_pc: AtomicUsize,
    /// 0: never; 1: redirected; 2: cooperatively.
    stop_kind: AtomicU8,
    /// The PC of the last boundary passed.
    last_pc: AtomicUsize,
    /// To the armer (back-edge mechanisms).
    pub(crate) mailbox: Mailbox,
}

fn bitmap(n: usize) -> Box<[AtomicU64]> {
    (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect()
}

impl Probe {
    /// A probe for one run. `starts` are the static instruction
    /// boundaries (sorted); the PCs of the first `record` boundaries a
    /// stepped run passes are kept.
    pub fn new(mode: ProbeMode, fault: Fault, starts: Arc<[usize]>, record: usize) -> Probe {
        let n = starts.len();
        Probe {
            mode,
            mechanism: PreemptMode::Async,
            fault,
            starts,
            redirected: bitmap(n),
            declined: bitmap(n),
            phase: AtomicU8::new(COUNTING),
            boundaries: AtomicU64::new(0),
            traps: AtomicU64::new(0),
            pcs: (0..record).map(|_| AtomicUsize::new(0)).collect(),
            target_pc: AtomicUsize::new(0),
            target_verdict: AtomicU8::new(NOT_REACHED),
            stop_boundary: AtomicU64::new(0),
            stop_pc: AtomicUsize::new(0),
            stop_kind: AtomicU8::new(0),
            last_pc: AtomicUsize::new(0),
            mailbox: Mailbox::default(),
        }
    }

    pub fn mode(&self) -> ProbeMode {
        self.mode
    }

    /// The probe of a run under `mode` (the default: `async`).
    pub fn with_mechanism(mut self, mode: PreemptMode) -> Probe {
        self.mechanism = mode;
        self
    }

    pub fn mechanism(&self) -> PreemptMode {
        self.mechanism
    }

    // ---- from handlers -----------------------------------------------------

    fn mark(&self, map: &[AtomicU64], pc: usize) {
        if let Ok(i) = self.starts.binary_search(&pc) {
            if let Some(w) = map.get(i / 64) {
                w.fetch_or(1 << (i % 64), Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    /// Counts one boundary at `pc`; returns its number (from 1).
    pub(crate) fn boundary(&self, pc: usize) -> u64 {
        let n = self.boundaries.fetch_add(1, Ordering::AcqRel) + 1;
        self.last_pc.store(pc, Ordering::Relaxed);
        if let Some(slot) = self.pcs.get((n - 1) as usize) {
            slot.store(pc, Ordering::Relaxed);
        }
        n
    }

    /// The last boundary passed, and its PC.
    pub(crate) fn last_boundary(&self) -> (u64, usize) {
        (
            self.boundaries.load(Ordering::Acquire),
            self.last_pc.load(Ordering::Relaxed),
        )
    }

    /// Posts to the armer the handler did not hear back from in time.
    pub fn arm_timeouts(&self) -> u64 {
        self.mailbox.timeouts.load(Ordering::Relaxed)
    }

    pub(crate) fn at_target(&self, pc: usize, v: Verdict) {
        self.target_pc.store(pc, Ordering::Relaxed);
        self.target_verdict.store(v.code(), Ordering::Release);
    }

    pub(crate) fn stopped(&self, how: Stop) {
        let (kind, boundary, pc) = match how {
            Stop::Never => (0, 0, 0),
            Stop::Redirected { boundary, pc } => (1, boundary, pc),
            Stop::Cooperative { boundary } => (2, boundary, 0),
        };
        self.stop_boundary.store(boundary, Ordering::Relaxed);
        self.stop_pc.store(pc, Ordering::Relaxed);
        self.stop_kind.store(kind, Ordering::Release);
        self.phase.store(DONE, Ordering::Release);
    }

    // ---- for the harness, after the run -----------------------------------

    /// Boundaries passed while stepping.
    pub fn boundaries(&self) -> u64 {
        self.boundaries.load(Ordering::Acquire)
    }

    pub fn traps(&self) -> u64 {
        self.traps.load(Ordering::Acquire)
    }

    /// The recorded PCs of the first boundaries.
    pub fn pcs(&self) -> Vec<usize> {
        let n = (self.boundaries() as usize).min(self.pcs.len());
        self.pcs
            .iter()
            .take(n)
            .map(|p| p.load(Ordering::Relaxed))
            .collect()
    }

    /// The aimed-at boundary's PC and verdict.
    pub fn target(&self) -> (usize, Verdict) {
        let v = Verdict::from_code(self.target_verdict.load(Ordering::Acquire));
        (self.target_pc.load(Ordering::Relaxed), v)
    }

    pub fn stop(&self) -> Stop {
        match self.stop_kind.load(Ordering::Acquire) {
            1 => Stop::Redirected {
                boundary: self.stop_boundary.load(Ordering::Relaxed),
                pc: self.stop_pc.load(Ordering::Relaxed),
            },
            2 => Stop::Cooperative {
                boundary: self.stop_boundary.load(Ordering::Relaxed),
            },
            _ => Stop::Never,
        }
    }

    /// The static boundaries marked in `map`.
    fn marked(&self, map: &[AtomicU64]) -> Vec<usize> {
        self.starts
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                map.get(i / 64)
                    .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (i % 64)) != 0)
            })
            .map(|(_, &pc)| pc)
            .collect()
    }

    /// The static boundaries at which a redirect happened in this run.
    pub fn redirected_pcs(&self) -> Vec<usize> {
        self.marked(&self.redirected)
    }

    /// The static boundaries at which a handler declined in this run.
    pub fn declined_pcs(&self) -> Vec<usize> {
        self.marked(&self.declined)
    }
}

/// The probe watching `rt`, if the harness watches it.
pub(crate) fn probe_of_run(rt: &Runtime) -> Option<&Probe> {
    rt.obs
        .harness
        .as_deref()?
        .as_watcher()
        .as_any()
        .downcast_ref::<Probe>()
}

impl Harness for Probe {
    fn as_watcher(&self) -> &dyn Watcher {
        self
    }

    unsafe fn switch_into(&self, switch_to: SwitchTo, ctx: *mut GoroutineContext) -> u64 {
        crate::step::switch_into(self, switch_to, ctx)
    }

    fn start(&self, rt: &Arc<Runtime>) -> std::io::Result<()> {
        crate::storm::start(self, rt)?;
        crate::armer::start(self, rt)
    }
}

impl Watcher for Probe {
    fn redirected_at(&self, pc: usize) {
        self.mark(&self.redirected, pc);
    }

    fn declined_at(&self, pc: usize) {
        self.mark(&self.declined, pc);
    }

    /// The fault injection.
    fn after_redirect(&self, mc: &mut MachineContext<'_>) {
        match self.fault {
            Fault::None => {}
            Fault::Flags => mc.set_flags(mc.flags() ^ MachineContext::CONDITION_FLAGS),
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preempt_jit::code::UnsafeKind;

    #[test]
    fn verdicts_survive_their_encoding() {
        let mut all = vec![
            Verdict::NotReached,
            Verdict::Redirected,
            Verdict::StoppedBefore,
            Verdict::Armed,
        ];
        all.extend(RetryReason::ALL.iter().map(|&r| Verdict::Declined(r)));
        for v in all {
            assert_eq!(Verdict::from_code(v.code()), v);
        }
        assert_eq!(
            Verdict::of(Decision::Retry(RetryReason::Unsafe(UnsafeKind::FrameSetup))),
            Verdict::Declined(RetryReason::Unsafe(UnsafeKind::FrameSetup))
        );
    }

    #[test]
    fn coverage_marks_only_known_boundaries() {
        let starts: Arc<[usize]> = (0..100).map(|i| 0x1000 + 4 * i).collect();
        let p = Probe::new(ProbeMode::Storm { interval_ns: 0 }, Fault::None, starts, 0);
        p.redirected_at(0x1000);
        p.redirected_at(0x1000 + 4 * 70);
        p.redirected_at(0x1002); // not an instruction start
        p.declined_at(0x1004);
        assert_eq!(p.redirected_pcs(), vec![0x1000, 0x1000 + 4 * 70]);
        assert_eq!(p.declined_pcs(), vec![0x1004]);
    }

    #[test]
    fn recorded_pcs_are_capped() {
        let p = Probe::new(
            ProbeMode::Step {
                target: u64::MAX,
                request_at: u64::MAX,
                stop_after: 10,
            },
            Fault::None,
            Arc::from(Vec::new()),
            2,
        );
        assert_eq!(p.boundary(0x10), 1);
        assert_eq!(p.boundary(0x20), 2);
        assert_eq!(p.boundary(0x30), 3);
        assert_eq!(p.pcs(), vec![0x10, 0x20]);
        p.stopped(Stop::Cooperative { boundary: 3 });
        assert_eq!(p.stop(), Stop::Cooperative { boundary: 3 });
        assert_eq!(p.phase(), DONE);
    }
}
