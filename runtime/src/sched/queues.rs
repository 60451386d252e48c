//! Where runnable goroutines wait, and the order the scheduler takes them
//! in: each P's `runnext` and local ring ([`LocalQueue`]), the global
//! queue, and stealing (Go's `runqput`, `runqget`, `globrunqget` and
//! `runqsteal`, without the threads).
//!
//! Everything here is a function of the queues alone: the scheduler
//! ([`super::Runtime::find_runnable`]) calls it with its lock held where
//! the global queue needs one, and the tests below drive it without a
//! thread or a line of JIT code.
//!
//! The order, for a P looking for its next goroutine:
//!
//! 1. every [`FAIRNESS_TICK`]th look, the global queue first, so that two
//!    goroutines handing work to each other through `runnext` cannot
//!    starve it (Go's `schedtick % 61`);
//! 2. its own `runnext`, then its ring, oldest first;
//! 3. the global queue, taking along a share of it
//!    ([`global_share`]) into the ring;
//! 4. the other Ps, from a random one on: half of a ring, and in the last
//!    round a `runnext` ([`steal`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use super::runq::{RunQueue, RUNQ_SIZE};
use crate::g::G;

/// The global queue is looked at first on every this-many-th look (Go: 61,
/// a prime, so that it does not fall in step with a program's rhythm).
pub const FAIRNESS_TICK: u64 = 61;

/// Rounds of stealing before a spinning M gives up (Go's `stealTries`).
pub const STEAL_ROUNDS: usize = 4;

/// The most a P takes from the global queue at once, besides the one it
/// runs.
pub const GLOBAL_SHARE_MAX: usize = 64;

/// Whether look number `tick` of a P takes the global queue first.
pub fn global_first(tick: u64) -> bool {
    tick % FAIRNESS_TICK == FAIRNESS_TICK - 1
}

/// How many more goroutines a P takes from a global queue that holds
/// `left` after the one it runs, with `procs` Ps sharing it.
pub fn global_share(left: usize, procs: usize) -> usize {
    (left / procs.max(1)).min(GLOBAL_SHARE_MAX)
}

/// A P's own queues: `runnext` and the local ring.
pub struct LocalQueue {
    /// Go's `runnext`: a goroutine made runnable by the running one, which
    /// runs next, ahead of the ring. An `Arc::into_raw` pointer (null:
    /// empty), so that the hand-over of a channel ping-pong costs one
    /// atomic swap on each side rather than a lock.
    next: AtomicPtr<G>,
    ring: RunQueue,
}

impl std::fmt::Debug for LocalQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalQueue({} queued)", self.queued())
    }
}

impl Default for LocalQueue {
    fn default() -> Self {
        LocalQueue {
            next: AtomicPtr::new(std::ptr::null_mut()),
            ring: RunQueue::default(),
        }
    }
}

impl LocalQueue {
    /// Goroutines queued, `runnext` included.
    pub fn queued(&self) -> usize {
        self.ring.len() + usize::from(!self.next.load(Ordering::Acquire).is_null())
    }

    /// Goroutines in the ring alone (Go's `runqtail - runqhead`).
    pub fn ring_len(&self) -> usize {
        self.ring.len()
    }

    /// The next goroutine of this P's own: `runnext`, else the ring's
    /// oldest.
    pub fn pop(&self) -> Option<Arc<G>> {
        self.take_next().or_else(|| self.ring.pop())
    }

    /// Makes `g` run next; returns the goroutine it displaces, which the
    /// caller queues ([`LocalQueue::push`]).
    pub fn put_next(&self, g: Arc<G>) -> Option<Arc<G>> {
        let old = self
            .next
            .swap(Arc::into_raw(g).cast_mut(), Ordering::AcqRel);
        // SAFETY: every non-null `next` came from `Arc::into_raw`, and the
        // swap gave this thread the only copy of it.
        (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
    }

    /// Appends `g` to the ring. A full ring gives half of itself, oldest
    /// first, and then `g`, to `spill` (the global queue: Go's
    /// `runqputslow`). Only the M holding the P may call this.
    pub fn push(&self, g: Arc<G>, spill: impl FnOnce(Vec<Arc<G>>)) {
        if let Err(g) = self.ring.push(g) {
            let mut out = Vec::with_capacity(RUNQ_SIZE / 2 + 1);
            self.ring.take_half(&mut out);
            out.push(g);
            spill(out);
        }
    }

    /// Takes `runnext`.
    pub fn take_next(&self) -> Option<Arc<G>> {
        if self.next.load(Ordering::Acquire).is_null() {
            return None;
        }
        let g = self.next.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: as in `put_next`: the swap took the only copy.
        (!g.is_null()).then(|| unsafe { Arc::from_raw(g) })
    }

    /// Takes `runnext` for a thief, if it still holds what it held when
    /// it was looked at (`seen`, from [`LocalQueue::next_id`]); None if
    /// its owner ran or replaced it meanwhile.
    pub fn steal_next(&self, seen: usize) -> Option<Arc<G>> {
        let g = self.next.load(Ordering::Acquire);
        if g.is_null() || g as usize != seen {
            return None;
        }
        self.next
            .compare_exchange(g, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Acquire)
            .ok()
            // SAFETY: non-null `next` values come from `Arc::into_raw`; the
            // exchange took the only copy.
            .map(|g| unsafe { Arc::from_raw(g) })
    }

    /// Which goroutine `runnext` holds, as an identity only (0: none).
    pub fn next_id(&self) -> usize {
        self.next.load(Ordering::Acquire) as usize
    }

    /// Takes the older half of the ring into `out` (a thief's take).
    pub fn take_half(&self, out: &mut Vec<Arc<G>>) {
        self.ring.take_half(out);
    }

    /// Whether its queues hold work, each read with a read-modify-write
    /// (the re-check of the wake-up protocol, [`super::idle`]).
    pub fn has_work_rmw(&self) -> bool {
        let next = self
            .next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, Some)
            .unwrap_or_else(|p| p);
        !next.is_null() || self.ring.len_rmw() > 0
    }
}

impl Drop for LocalQueue {
    fn drop(&mut self) {
        drop(self.take_next());
    }
}

/// Takes the next goroutine from the global queue for a P of `procs`,
/// with its share of what is left: the share goes to `keep` (the P's
/// ring), oldest first, with the queue at hand for a ring that overflows
/// (Go's `globrunqget` puts the share on the ring under the lock too; a
/// vector to carry it past the lock cost an allocation per look).
pub fn take_global(
    global: &mut VecDeque<Arc<G>>,
    procs: usize,
    mut keep: impl FnMut(&mut VecDeque<Arc<G>>, Arc<G>),
) -> Option<Arc<G>> {
    let g = global.pop_front()?;
    let n = global_share(global.len(), procs);
    for _ in 0..n {
        match global.pop_front() {
            Some(h) => keep(global, h),
            None => break,
        }
    }
    Some(g)
}

/// One round of stealing for P `me` over the `n` Ps' queues (`queue(i)`
/// is P `i`'s), starting at `start`: the first victim with a non-empty ring gives the
/// older half of it; the first goroutine taken is returned to run and the
/// rest go to `keep`, oldest first. With `next` (the last round), a victim
/// with an empty ring gives its `runnext` through `take_next`, which may
/// decline (the victim is about to run it).
pub fn steal<'q>(
    queue: impl Fn(usize) -> &'q LocalQueue,
    n: usize,
    me: usize,
    start: usize,
    next: bool,
    mut take_next: impl FnMut(usize) -> Option<Arc<G>>,
    mut keep: impl FnMut(Arc<G>),
) -> Option<Arc<G>> {
    if n < 2 {
        return None;
    }
    let mut taken = Vec::new();
    for k in 0..n {
        let v = (start + k) % n;
        if v == me {
            continue;
        }
        queue(v).take_half(&mut taken);
        if taken.is_empty() {
            if let Some(g) = next.then(|| take_next(v)).flatten() {
                return Some(g);
            }
            continue;
        }
        let mut it = taken.drain(..);
        let g = it.next();
        it.for_each(&mut keep);
        return g;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(id: u64) -> Arc<G> {
        G::detached(id)
    }

    fn ids(v: impl IntoIterator<Item = Arc<G>>) -> Vec<u64> {
        v.into_iter().map(|g| g.id).collect()
    }

    fn drain(q: &LocalQueue) -> Vec<u64> {
        ids(std::iter::from_fn(|| q.pop()))
    }

    fn no_spill(_: Vec<Arc<G>>) {
        panic!("nothing spills from a ring with room");
    }

    #[test]
    fn runnext_runs_first_then_the_ring_oldest_first() {
        let q = LocalQueue::default();
        for i in 1..=3 {
            q.push(g(i), no_spill);
        }
        assert!(q.put_next(g(10)).is_none());
        assert_eq!(q.queued(), 4, "runnext counts");
        assert_eq!(drain(&q), [10, 1, 2, 3]);
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn a_new_runnext_displaces_the_old_one_to_the_caller() {
        let q = LocalQueue::default();
        assert!(q.put_next(g(1)).is_none());
        let old = q.put_next(g(2)).expect("displaced");
        assert_eq!(old.id, 1);
        // The scheduler queues the displaced one behind the ring.
        q.push(g(3), no_spill);
        q.push(old, no_spill);
        assert_eq!(drain(&q), [2, 3, 1]);
    }

    #[test]
    fn a_full_ring_spills_its_older_half_then_the_newcomer() {
        let q = LocalQueue::default();
        for i in 0..RUNQ_SIZE as u64 {
            q.push(g(i), no_spill);
        }
        let mut spilled = Vec::new();
        q.push(g(1000), |v| spilled = ids(v));
        let half = RUNQ_SIZE / 2;
        let expect: Vec<u64> = (0..half as u64).chain([1000]).collect();
        assert_eq!(spilled, expect);
        assert_eq!(q.queued(), RUNQ_SIZE - half);
        assert_eq!(
            q.pop().map(|g| g.id),
            Some(half as u64),
            "the newer half stays"
        );
    }

    #[test]
    fn the_global_queue_goes_first_on_every_61st_look_only() {
        let firsts: Vec<u64> = (0..200).filter(|&t| global_first(t)).collect();
        assert_eq!(firsts, [60, 121, 182]);
    }

    #[test]
    fn a_take_from_the_global_queue_brings_a_share_along() {
        let mut global: VecDeque<Arc<G>> = (1..=9).map(g).collect();
        let mut kept = Vec::new();
        // 8 left after the first, 2 Ps: a share of 4.
        let first = take_global(&mut global, 2, |_, g| kept.push(g.id));
        assert_eq!(first.map(|g| g.id), Some(1));
        assert_eq!(kept, [2, 3, 4, 5]);
        assert_eq!(ids(global.drain(..)), [6, 7, 8, 9]);
        assert!(take_global(&mut global, 2, |_, _| panic!()).is_none());
    }

    #[test]
    fn the_global_share_is_capped() {
        assert_eq!(global_share(0, 4), 0);
        assert_eq!(global_share(3, 4), 0, "fewer than one each");
        assert_eq!(global_share(1000, 1), GLOBAL_SHARE_MAX);
        assert_eq!(global_share(10, 0), 10, "no Ps counts as one");
    }

    fn ring(ids: impl IntoIterator<Item = u64>) -> LocalQueue {
        let q = LocalQueue::default();
        for i in ids {
            q.push(g(i), no_spill);
        }
        q
    }

    #[test]
    fn a_thief_takes_the_older_half_runs_the_first_and_keeps_the_rest() {
        let (mine, victim) = (LocalQueue::default(), ring(1..=5));
        let qs = [&mine, &victim];
        let mut kept = Vec::new();
        let got = steal(
            |i| qs[i],
            qs.len(),
            0,
            0,
            false,
            |_| panic!(),
            |g| kept.push(g.id),
        );
        assert_eq!(got.map(|g| g.id), Some(1));
        assert_eq!(kept, [2, 3], "half of 5, rounded up, is 3");
        assert_eq!(drain(&victim), [4, 5]);
    }

    #[test]
    fn a_thief_never_robs_itself_and_alone_steals_nothing() {
        let mine = ring([1, 2]);
        assert!(steal(|_| &mine, 1, 0, 0, true, |_| panic!(), |_| panic!()).is_none());
        let other = LocalQueue::default();
        let qs = [&mine, &other];
        for start in 0..2 {
            assert!(steal(|i| qs[i], qs.len(), 0, start, false, |_| None, |_| panic!()).is_none());
        }
        assert_eq!(drain(&mine), [1, 2]);
    }

    #[test]
    fn runnext_is_stolen_only_in_the_last_round_and_only_from_an_empty_ring() {
        let me = LocalQueue::default();
        let a = LocalQueue::default();
        assert!(a.put_next(g(7)).is_none());
        let qs = [&me, &a];
        let take = |v: usize| {
            let q = qs[v];
            q.steal_next(q.next_id())
        };
        assert!(steal(|i| qs[i], qs.len(), 0, 0, false, take, |_| panic!()).is_none());
        assert_ne!(a.next_id(), 0, "an earlier round leaves it");
        let got = steal(|i| qs[i], qs.len(), 0, 0, true, take, |_| panic!());
        assert_eq!(got.map(|g| g.id), Some(7));
        // A victim with a ring gives half of it, not its runnext.
        let b = ring([1, 2]);
        assert!(b.put_next(g(8)).is_none());
        let qs = [&me, &b];
        let got = steal(
            |i| qs[i],
            qs.len(),
            0,
            1,
            true,
            |_| panic!("not asked"),
            |_| panic!(),
        );
        assert_eq!(got.map(|g| g.id), Some(1));
        assert_eq!(drain(&b), [8, 2]);
    }

    #[test]
    fn a_runnext_replaced_since_it_was_seen_is_not_stolen() {
        let q = LocalQueue::default();
        assert!(q.put_next(g(1)).is_none());
        let seen = q.next_id();
        // Its owner runs it and readies another; `old` stays alive, so the
        // new one cannot have its address.
        let old = q.pop().expect("its owner ran it");
        assert!(q.put_next(g(2)).is_none());
        assert!(q.steal_next(seen).is_none());
        assert_eq!(old.id, 1);
        assert!(q.steal_next(0).is_none(), "nothing seen, nothing taken");
        let now = q.next_id();
        assert_eq!(q.steal_next(now).map(|g| g.id), Some(2));
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn the_wake_up_recheck_sees_runnext_and_ring_alike() {
        let q = LocalQueue::default();
        assert!(!q.has_work_rmw());
        assert!(q.put_next(g(1)).is_none());
        assert!(q.has_work_rmw());
        let next = q.take_next();
        assert!(next.is_some());
        q.push(g(2), no_spill);
        assert!(q.has_work_rmw());
    }
}
