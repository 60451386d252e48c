//! The processors (P: the right to run goroutines, and their queues) and
//! the worker threads (M) that hold them.

use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use std::sync::{Arc, Condvar, Mutex};

use preempt_jit::ir::ForeignFn;

use super::queues;
use crate::g::G;
use crate::preempt::worker::MSignal;
use crate::sync::lock;

/// What a P is doing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum PStatus {
    Idle = 0,
    /// Held by an M running goroutines.
    Running = 1,
    /// Held by an M in foreign code; the monitor may retake it.
    InForeign = 2,
    /// Stopped for a stop-the-world (see [`super::stw`]).
    Stopped = 3,
}

/// A processor: the right to run goroutines, and a queue of them.
#[derive(Debug)]
pub struct P {
    pub id: usize,
    pub(super) status: AtomicU8,
    /// Its `runnext` and local ring.
    pub(super) q: queues::LocalQueue,
    /// The id of the goroutine running on this P (0: none), for the
    /// monitor and diagnoses.
    pub current: AtomicU64,
    /// That goroutine's registry slot (`Runtime::running_on`), written
    /// before `current`.
    pub current_slot: AtomicU32,
    /// Changes at every slice start and end (Go's schedtick, as the
    /// monitor uses it): odd while a slice runs. The monitor times slices
    /// by when it first sees a sequence number, so the scheduler's hot
    /// path reads no clock; a stop request made for one slice is withdrawn
    /// if the slice ended meanwhile (see [`crate::preempt::request`]).
    pub slice_seq: AtomicU64,
    /// When the M holding this P entered foreign code.
    pub foreign_since: AtomicU64,
    /// Which M holds it.
    pub m: AtomicUsize,
    pub(super) schedtick: AtomicU64,
    /// Handed to an M by `wakep` that has not found work yet.
    pub(super) spinning: AtomicBool,
}

impl P {
    pub(super) fn new(id: usize) -> P {
        P {
            id,
            status: AtomicU8::new(PStatus::Idle as u8),
            q: queues::LocalQueue::default(),
            current: AtomicU64::new(0),
            current_slot: AtomicU32::new(u32::MAX),
            slice_seq: AtomicU64::new(0),
            foreign_since: AtomicU64::new(0),
            m: AtomicUsize::new(usize::MAX),
            schedtick: AtomicU64::new(0),
            spinning: AtomicBool::new(false),
        }
    }

    /// Only the M holding the P writes its sequence: no read-modify-write.
    pub(super) fn next_slice(&self) {
        let seq = self.slice_seq.load(Ordering::Relaxed);
        self.slice_seq.store(seq.wrapping_add(1), Ordering::Release);
    }

    pub fn status(&self) -> PStatus {
        match self.status.load(Ordering::Acquire) {
            1 => PStatus::Running,
            2 => PStatus::InForeign,
            3 => PStatus::Stopped,
            _ => PStatus::Idle,
        }
    }

    pub(super) fn set_status(&self, s: PStatus) {
        self.status.store(s as u8, Ordering::Release);
    }

    pub(super) fn cas_status(&self, from: PStatus, to: PStatus) -> bool {
        self.status
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub fn queued(&self) -> usize {
        self.q.queued()
    }
}

/// What wakes a parked M.
#[derive(Debug, Default)]
pub(super) struct Handoff {
    /// A P to run with.
    pub(super) p: Option<usize>,
    /// The goroutine locked to this M, handed back to it.
    pub(super) g: Option<Arc<G>>,
    /// Stop the thread (program end).
    pub(super) exit: bool,
}

/// A worker thread.
#[derive(Debug)]
pub struct M {
    pub id: usize,
    pub tid: AtomicI32,
    /// The P it holds (`NO_P`: none). Only its own thread changes it.
    pub(super) p: AtomicUsize,
    pub(super) handoff: Mutex<Handoff>,
    pub(super) wake: Condvar,
    /// The id of the goroutine it runs (0: none), for diagnoses.
    pub current: AtomicU64,
    /// A goroutine is locked to it.
    pub(super) locked: AtomicBool,
    /// In foreign code, and which function.
    pub in_foreign: Mutex<Option<ForeignFn>>,
    pub(super) rng: AtomicU64,
    /// Goroutines switched into, added to the stats when the run ends:
    /// one writer, so no shared counter on the hot path.
    pub(super) switches: AtomicU64,
    /// Its side of the preemption-signal protocol.
    pub sig: MSignal,
    /// Serving a `print`: writing the program's output, which blocks for
    /// as long as its reader does not read (for diagnoses).
    pub writing: AtomicBool,
}

impl M {
    pub(super) fn new(id: usize) -> M {
        M {
            id,
            tid: AtomicI32::new(0),
            p: AtomicUsize::new(NO_P),
            handoff: Mutex::default(),
            wake: Condvar::new(),
            current: AtomicU64::new(0),
            writing: AtomicBool::new(false),
            locked: AtomicBool::new(false),
            in_foreign: Mutex::default(),
            rng: AtomicU64::new(
                0x9e37_79b9_7f4a_7c15 ^ (id as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9),
            ),
            switches: AtomicU64::new(0),
            sig: MSignal::default(),
        }
    }

    /// xorshift64*, for select's random arm order and steal victims.
    pub(super) fn random(&self) -> u64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn p(&self) -> Option<usize> {
        let p = self.p.load(Ordering::Acquire);
        (p != NO_P).then_some(p)
    }

    pub(super) fn set_p(&self, p: Option<usize>) {
        self.p.store(p.unwrap_or(NO_P), Ordering::Release);
    }

    pub(super) fn take_p(&self) -> Option<usize> {
        let p = self.p.swap(NO_P, Ordering::AcqRel);
        (p != NO_P).then_some(p)
    }

    pub(super) fn give(&self, h: impl FnOnce(&mut Handoff)) {
        let mut s = lock(&self.handoff);
        h(&mut s);
        self.wake.notify_one();
    }
}

/// No P.
pub(super) const NO_P: usize = usize::MAX;
