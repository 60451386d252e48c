//! What the runtime keeps of its goroutines: the live ones by id
//! ([`AllGs`]), and the records of dead ones for new goroutines to reuse
//! ([`GFree`], Go's `gFree` lists).
//!
//! Spawning and exiting touch both, on two threads at once when the
//! spawner and its children run on different Ps. One map under one lock
//! put the two Ms in each other's way on every spawn and exit, and a
//! `malloc` for the record and its context per spawn, freed on the other
//! thread, kept glibc's per-thread arenas growing and trimming (a page
//! fault every few spawns). So the map is cut into shards by id, each on
//! its own cache line, hashed by a multiplication (ids are unique and
//! consecutive: nothing to defend against), and a dead goroutine's record
//! goes onto its P's free list when nothing else holds it.
//!
//! A record is reused only when its `Arc` is the last one (`Arc::get_mut`
//! decides): no run queue, waiter, diagnosis or monitor can still see it,
//! so no stale reference ever finds a new goroutine in an old one's
//! record. The worker's signal state points at the running goroutine's
//! record and context only between `set_running` calls that bracket its
//! turn, which ended before it died.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::g::G;

/// Shards of the live-goroutine map (a power of two).
const SHARDS: usize = 16;

/// Dead records a P keeps before it moves [`MOVE`] of them to the global
/// list, as Go's `gfput` does at 64.
const LOCAL_MAX: usize = 64;

/// How many records move between a P's list and the global one at once.
const MOVE: usize = 32;

/// Dead records kept in all, over the Ps' own: past it they are freed. A
/// bound Go does not have (it frees only the stacks of surplus records);
/// a record and its context are about 650 bytes.
const GLOBAL_MAX: usize = 1024;

/// Hashes a goroutine id: a multiplication by an odd constant (Fibonacci
/// hashing), which spreads consecutive ids over the high bits the table's
/// control bytes use and keeps the low bits distinct.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap = HashMap<u64, Arc<G>, BuildHasherDefault<IdHasher>>;

/// A lock on its own cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded<T>(Mutex<T>);

impl<T> Padded<T> {
    fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every goroutine not yet dead, by id.
#[derive(Debug, Default)]
pub struct AllGs {
    shards: [Padded<IdMap>; SHARDS],
}

impl AllGs {
    fn shard(&self, id: u64) -> MutexGuard<'_, IdMap> {
        self.shards[id as usize % SHARDS].lock()
    }

    pub fn insert(&self, g: Arc<G>) {
        self.shard(g.id).insert(g.id, g);
    }

    pub fn remove(&self, id: u64) -> Option<Arc<G>> {
        self.shard(id).remove(&id)
    }

    pub fn get(&self, id: u64) -> Option<Arc<G>> {
        self.shard(id).get(&id).cloned()
    }

    /// The goroutines `keep` accepts, shard by shard (not one atomic
    /// snapshot: a goroutine spawned meanwhile may or may not be in it,
    /// as with one lock taken a moment earlier or later).
    pub fn filter(&self, keep: impl Fn(&G) -> bool) -> Vec<Arc<G>> {
        let mut out = Vec::new();
        for s in &self.shards {
            out.extend(s.lock().values().filter(|g| keep(g)).cloned());
        }
        out
    }

    /// Every live goroutine (see [`AllGs::filter`]).
    pub fn all(&self) -> Vec<Arc<G>> {
        self.filter(|_| true)
    }

    /// Whether some live goroutine satisfies `f`.
    pub fn any(&self, f: impl Fn(&G) -> bool) -> bool {
        self.shards.iter().any(|s| s.lock().values().any(|g| f(g)))
    }
}

/// Dead goroutines' records, per P and global.
#[derive(Debug)]
pub struct GFree {
    local: Box<[Padded<Vec<Arc<G>>>]>,
    global: Padded<Vec<Arc<G>>>,
}

impl GFree {
    pub fn new(procs: usize) -> GFree {
        GFree {
            local: (0..procs).map(|_| Padded::default()).collect(),
            global: Padded::default(),
        }
    }

    /// Keeps dead `g` for reuse on P `p`, if nothing else holds it;
    /// otherwise the last holder frees it.
    pub fn put(&self, p: usize, mut g: Arc<G>) {
        if Arc::get_mut(&mut g).is_none() {
            return;
        }
        let mut local = self.local[p].lock();
        local.push(g);
        if local.len() > LOCAL_MAX {
            let from = local.len() - MOVE;
            let mut global = self.global.lock();
            let room = GLOBAL_MAX.saturating_sub(global.len());
            let moved = local.drain(from..);
            global.extend(moved.take(room));
        }
    }

    /// A dead record for a goroutine spawned on `p`: from its list, or a
    /// batch from the global one.
    pub fn get(&self, p: usize) -> Option<Arc<G>> {
        let mut local = self.local[p].lock();
        if local.is_empty() {
            let mut global = self.global.lock();
            let from = global.len().saturating_sub(MOVE);
            local.extend(global.drain(from..));
        }
        local.pop()
    }

    /// Records kept, all lists together.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.global.lock().len() + self.local.iter().map(|l| l.lock().len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g::{Exec, Status};
    use crate::stack::Stack;
    use preempt_jit::abi::GoroutineContext;
    use preempt_jit::ir::FuncId;

    fn jit_g(id: u64) -> Arc<G> {
        let exec = Exec::Jit {
            ctx: Box::new(GoroutineContext::new()),
            stack: Stack::none(),
            args: Vec::new(),
        };
        Arc::new(G::new(id, FuncId::new(0), exec))
    }

    #[test]
    fn the_map_finds_inserts_and_removes_across_shards() {
        let all = AllGs::default();
        for id in 1..=100 {
            all.insert(jit_g(id));
        }
        assert_eq!(all.all().len(), 100);
        assert_eq!(all.get(37).map(|g| g.id), Some(37));
        assert_eq!(all.remove(37).map(|g| g.id), Some(37));
        assert!(all.get(37).is_none());
        assert!(all.remove(37).is_none());
        let even = all.filter(|g| g.id % 2 == 0);
        assert_eq!(even.len(), 50);
        assert!(all.any(|g| g.id == 100));
        assert!(!all.any(|g| g.id == 37));
    }

    #[test]
    fn only_records_nothing_else_holds_are_kept() {
        let free = GFree::new(2);
        let g = jit_g(1);
        let held = g.clone();
        free.put(0, g);
        assert_eq!(free.len(), 0, "a record still held elsewhere is not reused");
        free.put(0, held);
        assert_eq!(free.len(), 1);
        assert!(
            free.get(1).is_none(),
            "P 1's list and the global one are empty"
        );
        assert_eq!(free.get(0).map(|g| g.id), Some(1));
    }

    #[test]
    fn surplus_records_move_to_the_global_list_and_back() {
        let free = GFree::new(2);
        for id in 0..(LOCAL_MAX as u64 + 1) {
            free.put(0, jit_g(id));
        }
        // P 0 kept LOCAL_MAX + 1 - MOVE; P 1 finds the rest globally.
        assert_eq!(free.len(), LOCAL_MAX + 1);
        let mut from_global = 0;
        while free.get(1).is_some() {
            from_global += 1;
        }
        assert_eq!(from_global, MOVE);
        // The global list is bounded: the surplus beyond it is freed.
        for id in 0..(4 * GLOBAL_MAX as u64) {
            free.put(1, jit_g(id));
        }
        assert!(free.len() <= GLOBAL_MAX + 2 * LOCAL_MAX);
    }

    #[test]
    fn a_renewed_record_is_a_new_goroutine() {
        let mut g = jit_g(7);
        let gm = Arc::get_mut(&mut g).unwrap();
        gm.set_status(Status::Dead);
        gm.lock_depth.store(3, std::sync::atomic::Ordering::Relaxed);
        let mut args = vec![1, 2, 3];
        assert!(gm.renew(8, FuncId::new(2), 0x1234, &mut args, |c| c.gc = 0x99));
        assert!(args.is_empty(), "the old arguments (none) came back");
        assert_eq!((g.id, g.func), (8, FuncId::new(2)));
        assert_eq!(g.status(), Status::Runnable);
        assert_eq!(g.lock_depth.load(std::sync::atomic::Ordering::Relaxed), 0);
        // SAFETY: this test is the record's only owner.
        match unsafe { g.exec() } {
            Exec::Jit { ctx, args, .. } => {
                assert_eq!((ctx.result, ctx.gc), (0x1234, 0x99));
                assert_eq!(args, &vec![1, 2, 3]);
            }
            Exec::Interp { .. } => unreachable!(),
        }
    }
}
