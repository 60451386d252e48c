//! Timers: `sleep` and `after`.
//!
//! One heap of deadlines, served by a dedicated thread that sleeps until
//! the earliest one and then fires it: waking a sleeping goroutine, or
//! sending the time on an `after` channel. A fired timer makes a goroutine
//! runnable; it runs when a P picks it up, which on a busy P is at the
//! running goroutine's next preemption (as in Go).
//!
//! The number of pending timers is part of the deadlock check ("every
//! goroutine is asleep and no timer is pending"); it is decremented only
//! after the fired timer's goroutine has been made runnable, so the check
//! never sees neither a pending timer nor a runnable goroutine in between.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::chan::Chan;
use crate::g::G;

/// The longest single wait of the timer thread (an hour), in ns.
const MAX_WAIT_NS: u64 = 3_600_000_000_000;

/// What a timer does when it fires.
#[derive(Debug)]
pub enum Action {
    /// Wake a goroutine parked in `sleep`.
    Wake(Arc<G>),
    /// Send the current time on an `after` channel.
    Send(Arc<Chan>),
}

#[derive(Debug)]
struct Entry {
    when: u64,
    seq: u64,
    action: Action,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Entry) -> bool {
        (self.when, self.seq) == (o.when, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Entry) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Entry) -> std::cmp::Ordering {
        (self.when, self.seq).cmp(&(o.when, o.seq))
    }
}

#[derive(Debug, Default)]
struct Heap {
    entries: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    stop: bool,
}

/// The timers of one program.
#[derive(Debug, Default)]
pub struct Timers {
    heap: Mutex<Heap>,
    changed: Condvar,
    pending: AtomicUsize,
}

impl Timers {
    /// Adds a timer firing at `when` (monotonic nanoseconds).
    pub fn add(&self, when: u64, action: Action) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        h.seq += 1;
        let seq = h.seq;
        let earliest = h.entries.peek().is_none_or(|e| when < e.0.when);
        h.entries.push(Reverse(Entry { when, seq, action }));
        self.pending.fetch_add(1, Ordering::SeqCst);
        if earliest {
            self.changed.notify_one();
        }
    }

    /// When the earliest pending timer fires, if one is pending.
    pub fn next(&self) -> Option<u64> {
        let h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        h.entries.peek().map(|e| e.0.when)
    }

    /// Timers added and not yet fired (or firing).
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Serves the heap until [`Timers::stop`]: `fire` runs for each timer
    /// due, with the heap unlocked; `drained` runs when the last pending
    /// timer has fired (the goroutines it woke may all have parked again
    /// meanwhile, so the deadlock check must look again).
    pub fn serve(&self, now: impl Fn() -> u64, fire: impl Fn(Action), drained: impl Fn()) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if h.stop {
                return;
            }
            let t = now();
            match h.entries.peek().map(|e| e.0.when) {
                Some(when) if when <= t => {
                    let Reverse(e) = h.entries.pop().expect("peeked");
                    drop(h);
                    fire(e.action);
                    if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                        drained();
                    }
                    h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
                }
                Some(when) => {
                    // At most an hour at a time: a deadline centuries away
                    // (a saturated `sleep`) is waited for in steps, never
                    // handed to the OS as an overflowing timeout.
                    let wait = Duration::from_nanos((when - t).min(MAX_WAIT_NS));
                    h = self
                        .changed
                        .wait_timeout(h, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                None => {
                    h = self.changed.wait(h).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }

    /// Ends [`Timers::serve`].
    pub fn stop(&self) {
        self.heap.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.changed.notify_all();
    }
}
