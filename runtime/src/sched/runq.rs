//! A P's local run queue, as Go's `runq`: a ring of 256 goroutines that
//! only the P's own M appends to, and that its M and thieves take from by
//! advancing `head` with a compare-and-swap.
//!
//! Slots hold `Arc::into_raw` pointers. A slot is owned by the queue from
//! the `tail` store that publishes it until the `head` exchange that
//! consumes it; whoever wins that exchange owns the goroutine. The owner
//! never overwrites a slot in `[head, tail)`: it appends only while
//! `tail - head < RUNQ_SIZE` for a `head` it has just read, and `head`
//! only grows.

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Arc;

use crate::g::G;

/// Slots in the ring (Go: 256).
pub const RUNQ_SIZE: usize = 256;

pub struct RunQueue {
    head: AtomicU32,
    tail: AtomicU32,
    slots: [AtomicPtr<G>; RUNQ_SIZE],
}

impl std::fmt::Debug for RunQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunQueue({} queued)", self.len())
    }
}

impl Default for RunQueue {
    fn default() -> Self {
        RunQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            slots: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
        }
    }
}

fn slot(i: u32) -> usize {
    i as usize % RUNQ_SIZE
}

impl RunQueue {
    /// Appends `g`; gives it back when the ring is full.
    ///
    /// Only the P's own M may call this (one producer).
    pub fn push(&self, g: Arc<G>) -> Result<(), Arc<G>> {
        let h = self.head.load(Ordering::Acquire);
        let t = self.tail.load(Ordering::Relaxed);
        if t.wrapping_sub(h) as usize >= RUNQ_SIZE {
            return Err(g);
        }
        self.slots[slot(t)].store(Arc::into_raw(g).cast_mut(), Ordering::Relaxed);
        // Publishes the slot to consumers. A read-modify-write, not a
        // store, for the wake-up protocol ([`super::idle`]): an M that
        // re-checks the queue after giving its P up, with a
        // read-modify-write of `tail` too, either sees this goroutine or
        // is seen by the wake-up that follows. Only this M changes the
        // value (the re-checks add nothing).
        self.tail.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Takes the oldest goroutine.
    pub fn pop(&self) -> Option<Arc<G>> {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            if h == t {
                return None;
            }
            let g = self.slots[slot(h)].load(Ordering::Relaxed);
            if self
                .head
                .compare_exchange(h, h.wrapping_add(1), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // SAFETY: the slot in [head, tail) held an `Arc::into_raw`
                // pointer, and winning the exchange consumed it here only.
                return Some(unsafe { Arc::from_raw(g) });
            }
        }
    }

    /// Takes the older half (rounded up) into `out`, for a thief or for
    /// spilling a full ring into the global queue.
    pub fn take_half(&self, out: &mut Vec<Arc<G>>) {
        let mut batch = [std::ptr::null_mut::<G>(); RUNQ_SIZE / 2 + 1];
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            let n = t.wrapping_sub(h) as usize;
            let n = n - n / 2;
            if n == 0 {
                return;
            }
            if n > RUNQ_SIZE / 2 + 1 {
                // head and tail read at different moments: look again.
                continue;
            }
            for (i, b) in batch.iter_mut().enumerate().take(n) {
                *b = self.slots[slot(h.wrapping_add(i as u32))].load(Ordering::Relaxed);
            }
            if self
                .head
                .compare_exchange(
                    h,
                    h.wrapping_add(n as u32),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                for &g in &batch[..n] {
                    // SAFETY: as in `pop`, for each consumed slot.
                    out.push(unsafe { Arc::from_raw(g) });
                }
                return;
            }
        }
    }

    /// [`RunQueue::len`], reading `tail` with a read-modify-write (see
    /// `push`).
    pub fn len_rmw(&self) -> usize {
        let t = self.tail.fetch_add(0, Ordering::AcqRel);
        let h = self.head.load(Ordering::Acquire);
        (t.wrapping_sub(h) as usize).min(RUNQ_SIZE)
    }

    pub fn len(&self) -> usize {
        let h = self.head.load(Ordering::Acquire);
        let t = self.tail.load(Ordering::Acquire);
        (t.wrapping_sub(h) as usize).min(RUNQ_SIZE)
    }
}

impl Drop for RunQueue {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(id: u64) -> Arc<G> {
        G::detached(id)
    }

    #[test]
    fn fifo_until_full_then_refuses() {
        let q = RunQueue::default();
        for i in 0..RUNQ_SIZE as u64 {
            q.push(g(i)).expect("room");
        }
        assert_eq!(q.len(), RUNQ_SIZE);
        let back = q.push(g(999)).expect_err("full");
        assert_eq!(back.id, 999);
        for i in 0..10 {
            assert_eq!(q.pop().map(|g| g.id), Some(i));
        }
        q.push(g(1000)).expect("room again");
        let mut half = Vec::new();
        q.take_half(&mut half);
        assert_eq!(half.len(), (RUNQ_SIZE - 9).div_ceil(2));
        assert_eq!(half[0].id, 10, "the oldest half");
        assert_eq!(q.len(), RUNQ_SIZE - 9 - half.len());
    }

    #[test]
    fn every_goroutine_is_taken_exactly_once_under_thieves() {
        // One producer pushing and popping, two thieves taking halves:
        // each id must come out exactly once.
        let q = Arc::new(RunQueue::default());
        let n = 200_000u64;
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut out = Vec::new();
                    for _ in 0..20_000 {
                        q.take_half(&mut out);
                        got.extend(out.drain(..).map(|g| g.id));
                    }
                    got
                })
            })
            .collect();
        let mut mine = Vec::new();
        for i in 0..n {
            let mut item = g(i);
            while let Err(back) = q.push(item) {
                item = back;
                if let Some(x) = q.pop() {
                    mine.push(x.id);
                }
            }
            if i % 3 == 0 {
                if let Some(x) = q.pop() {
                    mine.push(x.id);
                }
            }
        }
        for t in thieves {
            mine.extend(t.join().unwrap());
        }
        while let Some(x) = q.pop() {
            mine.push(x.id);
        }
        mine.sort_unstable();
        assert_eq!(mine.len() as u64, n);
        assert!(mine.iter().enumerate().all(|(i, id)| *id == i as u64));
    }
}
