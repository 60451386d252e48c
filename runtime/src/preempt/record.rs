//! What the handlers leave for normal threads to trace: each decision of
//! the preemption signal's handler and of the poll-page fault's handler
//! (redirect, decline and why, stale), with the PC and the time.
//!
//! A handler may not lock, allocate or format, so it cannot call the
//! tracer. Each worker has a ring of [`RING`] slots made of atomics
//! ([`HandlerLog`]); the handlers interrupting that worker are its only
//! writers, and a normal thread empties it into the tracer: the worker
//! itself when its goroutine stops or its slice ends (after the handler
//! has returned), the monitor on each pass, and the end of the run.
//!
//! **Single writer.** Only handlers running on the worker's own thread
//! write its ring, and they do not interleave: a handler that finds
//! another one of this worker's in the middle of a write (a nested
//! signal) drops its record and counts it lost rather than share a slot.
//!
//! **Ordering.** The writer fills a slot with relaxed stores and then
//! publishes it by a release store of `head`; a reader acquires `head`,
//! copies the slots below it and releases `tail`, which the writer
//! acquires before it reuses a slot: a slot is never rewritten while it
//! is read. A full ring drops the new record and counts it
//! (`otherData.lost_handler_decisions` in the trace). Readers take turns
//! through a flag (the worker waits for it at a stop, so that the stop's
//! own decisions are handed over before the stop is; others only try).
//!
//! **Time.** Each record carries the handler's own `CLOCK_MONOTONIC`
//! reading (`clock_gettime` is async-signal-safe), so the trace places it
//! where it happened whenever it is handed over; the trace is sorted by
//! time when written.
//!
//! **Cost.** With nothing observing the run, a handler makes one test of
//! a plain flag of the run's ([`super::worker::Shared::records`]).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::decide::{Decision, RetryReason};
use crate::trace::{self, Handled, HandlerTrigger};

/// Records a worker's ring holds before handlers drop new ones.
pub const RING: usize = 256;

/// One handler decision, in atomics.
#[derive(Debug, Default)]
struct Slot {
    at: AtomicU64,
    g: AtomicU64,
    pc: AtomicUsize,
    resume_pc: AtomicUsize,
    /// [`encode`]d trigger and decision.
    code: AtomicU32,
}

/// A worker's ring of handler decisions (see the module docs).
#[derive(Debug)]
pub struct HandlerLog {
    slots: [Slot; RING],
    /// Records written (a count; the slot is `head % RING`). Handlers only.
    head: AtomicU64,
    /// Records read. Readers only.
    tail: AtomicU64,
    /// A handler is writing: a nested one drops its record.
    writing: AtomicBool,
    /// A reader is reading.
    reading: AtomicBool,
    lost: AtomicU64,
}

impl Default for HandlerLog {
    fn default() -> Self {
        HandlerLog {
            slots: std::array::from_fn(|_| Slot::default()),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            writing: AtomicBool::new(false),
            reading: AtomicBool::new(false),
            lost: AtomicU64::new(0),
        }
    }
}

const SIGNAL: u32 = 0;
const FAULT: u32 = 1;
const REDIRECT: u32 = 0 << 1;
const DECLINE: u32 = 1 << 1;
const STALE: u32 = 2 << 1;
const KIND_MASK: u32 = 3 << 1;
const REASON_SHIFT: u32 = 3;

fn encode(trigger: HandlerTrigger, d: Decision) -> Option<(u32, usize)> {
    let t = match trigger {
        HandlerTrigger::Signal => SIGNAL,
        HandlerTrigger::Fault => FAULT,
    };
    Some(match d {
        Decision::Redirect { resume_pc } => (t | REDIRECT, resume_pc),
        Decision::Retry(r) => (t | DECLINE | ((r.index() as u32) << REASON_SHIFT), 0),
        Decision::Stale => (t | STALE, 0),
        Decision::NotOurs => return None,
    })
}

fn decode(code: u32, resume_pc: usize) -> (HandlerTrigger, Handled) {
    let trigger = if code & 1 == FAULT {
        HandlerTrigger::Fault
    } else {
        HandlerTrigger::Signal
    };
    let handled = match code & KIND_MASK {
        REDIRECT => Handled::Redirect { resume_pc },
        DECLINE => {
            let r = RetryReason::ALL
                .get((code >> REASON_SHIFT) as usize)
                .copied()
                .unwrap_or(RetryReason::NotJitCode);
            Handled::Decline(r.name())
        }
        _ => Handled::Stale,
    };
    (trigger, handled)
}

impl HandlerLog {
    /// Records decision `d` of a handler woken by `trigger` at `pc`, at
    /// time `at`, for goroutine `g` (0: none). Async-signal-safe: atomics
    /// only; nothing for a decision that is not the runtime's.
    pub fn record(&self, at: u64, g: u64, trigger: HandlerTrigger, d: Decision, pc: usize) {
        let Some((code, resume_pc)) = encode(trigger, d) else {
            return;
        };
        if self.writing.swap(true, Ordering::Acquire) {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let slot = self.slots.get((head % RING as u64) as usize);
        match slot {
            Some(s) if head.wrapping_sub(tail) < RING as u64 => {
                s.at.store(at, Ordering::Relaxed);
                s.g.store(g, Ordering::Relaxed);
                s.pc.store(pc, Ordering::Relaxed);
                s.resume_pc.store(resume_pc, Ordering::Relaxed);
                s.code.store(code, Ordering::Relaxed);
                self.head.store(head.wrapping_add(1), Ordering::Release);
            }
            _ => {
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.writing.store(false, Ordering::Release);
    }

    /// Hands every record not yet read to `out` as worker `m`'s, in the
    /// order written, and returns how many records were lost since the
    /// last call. With `wait`, waits for another reader to finish first;
    /// without, returns at once if one is reading. Ordinary code only
    /// (`out` may lock and allocate).
    pub fn drain(&self, m: u32, wait: bool, mut out: impl FnMut(trace::Decision)) -> u64 {
        while self.reading.swap(true, Ordering::Acquire) {
            if !wait {
                return 0;
            }
            std::hint::spin_loop();
        }
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let mut i = tail;
        while i != head {
            if let Some(s) = self.slots.get((i % RING as u64) as usize) {
                let (trigger, handled) = decode(
                    s.code.load(Ordering::Relaxed),
                    s.resume_pc.load(Ordering::Relaxed),
                );
                out(trace::Decision {
                    at: s.at.load(Ordering::Relaxed),
                    m,
                    g: s.g.load(Ordering::Relaxed),
                    trigger,
                    handled,
                    pc: s.pc.load(Ordering::Relaxed),
                });
            }
            i = i.wrapping_add(1);
        }
        self.tail.store(head, Ordering::Release);
        let lost = self.lost.swap(0, Ordering::Relaxed);
        self.reading.store(false, Ordering::Release);
        lost
    }

    /// Whether records wait to be read (a cheap look before a drain).
    pub fn has_records(&self) -> bool {
        self.head.load(Ordering::Acquire) != self.tail.load(Ordering::Relaxed)
            || self.lost.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preempt_jit::code::UnsafeKind;

    fn drained(log: &HandlerLog) -> (Vec<trace::Decision>, u64) {
        let mut v = Vec::new();
        let lost = log.drain(3, true, |d| v.push(d));
        (v, lost)
    }

    #[test]
    fn decisions_come_back_as_recorded() {
        let log = HandlerLog::default();
        assert!(!log.has_records());
        let wb = RetryReason::Unsafe(UnsafeKind::WriteBarrier);
        log.record(10, 2, HandlerTrigger::Signal, Decision::Retry(wb), 0x1010);
        log.record(
            20,
            2,
            HandlerTrigger::Fault,
            Decision::Redirect { resume_pc: 0x1024 },
            0x1020,
        );
        log.record(30, 0, HandlerTrigger::Signal, Decision::Stale, 0x99);
        log.record(40, 0, HandlerTrigger::Signal, Decision::NotOurs, 0x99);
        assert!(log.has_records());
        let (v, lost) = drained(&log);
        assert_eq!(lost, 0);
        assert_eq!(
            v,
            [
                trace::Decision {
                    at: 10,
                    m: 3,
                    g: 2,
                    trigger: HandlerTrigger::Signal,
                    handled: Handled::Decline("unsafe: write barrier"),
                    pc: 0x1010
                },
                trace::Decision {
                    at: 20,
                    m: 3,
                    g: 2,
                    trigger: HandlerTrigger::Fault,
                    handled: Handled::Redirect { resume_pc: 0x1024 },
                    pc: 0x1020
                },
                trace::Decision {
                    at: 30,
                    m: 3,
                    g: 0,
                    trigger: HandlerTrigger::Signal,
                    handled: Handled::Stale,
                    pc: 0x99
                },
            ]
        );
        assert!(!log.has_records());
        assert!(drained(&log).0.is_empty(), "read once");
    }

    #[test]
    fn every_reason_survives_the_encoding() {
        for r in RetryReason::ALL {
            let (code, _) = encode(HandlerTrigger::Signal, Decision::Retry(r)).unwrap();
            assert_eq!(decode(code, 0).1, Handled::Decline(r.name()));
        }
    }

    #[test]
    fn a_full_ring_drops_and_counts_and_wraps() {
        let log = HandlerLog::default();
        for i in 0..RING as u64 + 5 {
            log.record(i, 1, HandlerTrigger::Signal, Decision::Stale, 0);
        }
        let (v, lost) = drained(&log);
        assert_eq!((v.len(), lost), (RING, 5));
        assert_eq!(v.last().unwrap().at, RING as u64 - 1);
        // The slots are reused after the read, in order.
        for i in 0..RING as u64 {
            log.record(1000 + i, 1, HandlerTrigger::Signal, Decision::Stale, 0);
        }
        let (v, lost) = drained(&log);
        assert_eq!((v.len(), lost), (RING, 0));
        assert!(v.windows(2).all(|w| w[0].at < w[1].at));
    }

    #[test]
    fn a_nested_writer_drops_its_record() {
        let log = HandlerLog::default();
        log.writing.store(true, Ordering::Relaxed);
        log.record(1, 1, HandlerTrigger::Signal, Decision::Stale, 0);
        log.writing.store(false, Ordering::Relaxed);
        assert_eq!(drained(&log), (Vec::new(), 1));
    }

    #[test]
    fn a_reader_that_only_tries_leaves_a_busy_ring_alone() {
        let log = HandlerLog::default();
        log.record(1, 1, HandlerTrigger::Signal, Decision::Stale, 0);
        log.reading.store(true, Ordering::Relaxed);
        let mut n = 0;
        assert_eq!(log.drain(0, false, |_| n += 1), 0);
        assert_eq!(n, 0);
        log.reading.store(false, Ordering::Relaxed);
        assert_eq!(drained(&log).0.len(), 1);
    }

    #[test]
    fn a_writer_and_a_reader_on_two_threads_lose_nothing_they_do_not_count() {
        let log = std::sync::Arc::new(HandlerLog::default());
        let w = log.clone();
        const N: u64 = 200_000;
        let writer = std::thread::spawn(move || {
            for i in 0..N {
                w.record(i, i, HandlerTrigger::Signal, Decision::Stale, i as usize);
            }
        });
        let (mut seen, mut lost, mut last) = (0u64, 0u64, None);
        while !writer.is_finished() || log.has_records() {
            lost += log.drain(0, true, |d| {
                // Every record whole (its fields written together) and in order.
                assert_eq!(d.g, d.at);
                assert_eq!(d.pc as u64, d.at);
                assert!(last.is_none_or(|l| l < d.at));
                last = Some(d.at);
                seen += 1;
            });
        }
        writer.join().unwrap();
        assert_eq!(seen + lost, N);
    }
}
