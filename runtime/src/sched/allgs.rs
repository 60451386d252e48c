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
//! Removal from the map is what put the two Ms in each other's way:
//! the child dies on the P that ran it, and its entry sits in a shard the
//! spawner's P keeps inserting into. So a dead JIT goroutine waits on its
//! P's list of retired records, still in the map with its status `Dead`
//! (every reader of the map skips those), and every [`RETIRE_BATCH`] of
//! them leave the map together: ids are laid out in shards by blocks of
//! [`ID_BLOCK`], so a batch of goroutines spawned together takes one or
//! two shard locks instead of one each, and the spawner's run of inserts
//! stays in one shard's cache lines. Only then do the records become
//! free for reuse.
//!
//! A record is reused only when its `Arc` is the last one (`Arc::get_mut`
//! decides): no run queue, waiter, diagnosis or monitor can still see it,
//! so no stale reference ever finds a new goroutine in an old one's
//! record. The worker's signal state points at the running goroutine's
//! record and context only between `set_running` calls that bracket its
//! turn, which ended before it died.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use preempt_jit::abi::GoroutineContext;

use super::engine::SpawnArgs;
use super::Runtime;
use crate::g::{Exec, G};

impl Runtime {
    /// Goroutines created so far (ids are taken from 1 on, one a spawn).
    pub fn goroutines_created(&self) -> u64 {
        self.next_gid.load(Ordering::Relaxed) - 1
    }

    /// The live goroutine with id `id`.
    pub fn g_by_id(&self, id: u64) -> Option<Arc<G>> {
        self.allgs.get(id)
    }

    /// Creates a goroutine and makes it runnable on `p` (or globally).
    /// A dead goroutine's record is reused when its P has one (see
    /// the module's header).
    pub(super) fn spawn(
        &self,
        func: preempt_jit::ir::FuncId,
        mut args: SpawnArgs,
        p: Option<usize>,
    ) -> Arc<G> {
        let id = self.next_gid.fetch_add(1, Ordering::Relaxed);
        let init = |ctx: &mut GoroutineContext| {
            ctx.gc = self.gc.barrier_address();
            ctx.poll_page
                .store(self.arming.initial_poll_page(), Ordering::Relaxed);
        };
        let reused = p
            .and_then(|p| self.gfree.get(p, &self.allgs))
            .and_then(|mut g| {
                let record = Arc::get_mut(&mut g)?;
                self.engine
                    .renew(record, id, func, &mut args, init)
                    .then_some(g)
            });
        let g = reused.unwrap_or_else(|| {
            let mut exec = self.engine.new_exec(id, func, args);
            if let Exec::Jit { ctx, .. } = &mut exec {
                init(ctx);
            }
            Arc::new(G::new(id, func, exec))
        });
        self.allgs.insert(g.clone());
        self.ready(g.clone(), p);
        g
    }
}

/// Shards of the live-goroutine map (a power of two).
const SHARDS: usize = 16;

/// Consecutive ids that share a shard.
const ID_BLOCK: u64 = 64;

/// Dead goroutines a P retires from the map at once.
const RETIRE_BATCH: usize = 32;

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
        self.shards[shard_of(id)].lock()
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

fn shard_of(id: u64) -> usize {
    (id / ID_BLOCK) as usize % SHARDS
}

/// A P's dead records: retired (still in the map) and free.
#[derive(Debug, Default)]
struct PFree {
    retired: Vec<Arc<G>>,
    free: Vec<Arc<G>>,
}

/// Dead goroutines' records, per P and global.
#[derive(Debug)]
pub struct GFree {
    local: Box<[Padded<PFree>]>,
    global: Padded<Vec<Arc<G>>>,
}

impl GFree {
    pub fn new(procs: usize) -> GFree {
        GFree {
            local: (0..procs).map(|_| Padded::default()).collect(),
            global: Padded::default(),
        }
    }

    /// Goroutine `g` died on P `p`: out of `all` with the next batch of
    /// `p`'s (see the module's header), then kept for reuse.
    pub fn retire(&self, p: usize, g: Arc<G>, all: &AllGs) {
        let mut local = self.local[p].lock();
        local.retired.push(g);
        if local.retired.len() >= RETIRE_BATCH {
            self.unregister(&mut local, all);
        }
    }

    /// Takes `local`'s retired records out of `all`, shard by shard, and
    /// keeps those nothing else holds.
    fn unregister(&self, local: &mut PFree, all: &AllGs) {
        let mut batch = std::mem::take(&mut local.retired);
        batch.sort_unstable_by_key(|g| g.id);
        for run in batch.chunk_by(|a, b| shard_of(a.id) == shard_of(b.id)) {
            let mut shard = all.shard(run[0].id);
            for g in run {
                shard.remove(&g.id);
            }
        }
        for g in batch.drain(..) {
            self.keep(local, g);
        }
        // The emptied vector goes back: no allocation per batch.
        local.retired = batch;
    }

    /// Keeps dead `g` on a P's list, if nothing else holds it; otherwise
    /// the last holder frees it.
    fn keep(&self, local: &mut PFree, mut g: Arc<G>) {
        if Arc::get_mut(&mut g).is_none() {
            return;
        }
        local.free.push(g);
        if local.free.len() > LOCAL_MAX {
            let from = local.free.len() - MOVE;
            let mut global = self.global.lock();
            let room = GLOBAL_MAX.saturating_sub(global.len());
            let moved = local.free.drain(from..);
            global.extend(moved.take(room));
        }
    }

    /// A dead record for a goroutine spawned on `p`: from its list, its
    /// retired ones, or a batch from the global list.
    pub fn get(&self, p: usize, all: &AllGs) -> Option<Arc<G>> {
        let mut local = self.local[p].lock();
        if local.free.is_empty() && !local.retired.is_empty() {
            self.unregister(&mut local, all);
        }
        if local.free.is_empty() {
            let mut global = self.global.lock();
            let from = global.len().saturating_sub(MOVE);
            local.free.extend(global.drain(from..));
        }
        local.free.pop()
    }

    /// Records kept for reuse, all lists together.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.global.lock().len()
            + self
                .local
                .iter()
                .map(|l| l.lock().free.len())
                .sum::<usize>()
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

    /// `g`, registered in `all` as a spawn does, dead.
    fn dead(all: &AllGs, id: u64) -> Arc<G> {
        let g = jit_g(id);
        all.insert(g.clone());
        g.set_status(Status::Dead);
        g
    }

    #[test]
    fn retired_records_leave_the_map_in_batches_then_are_reused() {
        let (all, free) = (AllGs::default(), GFree::new(2));
        for id in 0..(RETIRE_BATCH as u64 - 1) {
            free.retire(0, dead(&all, id), &all);
        }
        // Still registered (dead), none free yet.
        assert_eq!(all.all().len(), RETIRE_BATCH - 1);
        assert_eq!(free.len(), 0);
        free.retire(0, dead(&all, 99), &all);
        assert!(all.all().is_empty(), "the batch left the map together");
        assert_eq!(free.len(), RETIRE_BATCH);
        assert!(
            free.get(1, &all).is_none(),
            "P 1's lists and the global one are empty"
        );
        assert!(free.get(0, &all).is_some());
    }

    #[test]
    fn a_spawn_with_no_free_record_unregisters_the_retired_ones() {
        let (all, free) = (AllGs::default(), GFree::new(1));
        free.retire(0, dead(&all, 5), &all);
        assert_eq!(all.all().len(), 1);
        assert_eq!(free.get(0, &all).map(|g| g.id), Some(5));
        assert!(all.all().is_empty());
    }

    #[test]
    fn only_records_nothing_else_holds_are_kept() {
        let (all, free) = (AllGs::default(), GFree::new(1));
        let g = dead(&all, 1);
        let held = g.clone();
        free.retire(0, g, &all);
        assert!(
            free.get(0, &all).is_none(),
            "a record still held elsewhere is not reused"
        );
        assert!(all.get(1).is_none(), "but it left the map");
        free.retire(0, held, &all);
        assert_eq!(free.get(0, &all).map(|g| g.id), Some(1));
    }

    #[test]
    fn surplus_records_move_to_the_global_list_and_back() {
        let (all, free) = (AllGs::default(), GFree::new(2));
        let n = (LOCAL_MAX + 1).next_multiple_of(RETIRE_BATCH);
        for id in 0..n as u64 {
            free.retire(0, dead(&all, id), &all);
        }
        // P 0 moved MOVE to the global list each time it passed LOCAL_MAX;
        // P 1 finds them there.
        assert_eq!(free.len(), n);
        let mut from_global = 0;
        while free.get(1, &all).is_some() {
            from_global += 1;
        }
        assert_eq!(from_global, MOVE);
        // The global list is bounded: the surplus beyond it is freed.
        for id in 0..(4 * GLOBAL_MAX as u64) {
            free.retire(1, dead(&all, 1000 + id), &all);
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
