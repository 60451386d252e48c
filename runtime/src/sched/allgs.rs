//! What the runtime keeps of its goroutines: every record it has, live
//! or dead and kept for reuse ([`AllGs`], Go's `allgs`), and the dead
//! ones waiting for a new goroutine ([`GFree`], Go's `gFree` lists).
//!
//! Spawning and exiting must not meet in a shared structure: in the
//! common pattern the spawner runs on one P and its children on another.
//! So a record, once made, stays registered for life, under a slot that
//! never changes, as Go's `allgs` keeps every `g` it ever made. A spawn
//! that reuses a dead record, and a goroutine's death, change nothing in
//! the registry (an earlier map of live goroutines by id was written at
//! every spawn and exit).
//! Readers of the registry skip dead records; the P publishes the slot
//! of the goroutine it runs beside its id, so the monitor finds it
//! without a search.
//!
//! The registry's states, per slot:
//!
//! | state | reached by | readers |
//! |---|---|---|
//! | vacant | start; deregistered | nothing there |
//! | live | registered (new record); renewed (reused record) | get it |
//! | dead | the goroutine died (`status` `Dead`) | skip it |
//!
//! A dead record sits on a free list ([`GFree`]). A spawn reuses it only
//! when, under its shard's lock, the registry's reference and the free
//! list's are its only ones: readers take references only under that
//! lock, so none exists or can appear while the spawn renews the record
//! in place (it holds the lock throughout), and no stale reference ever
//! finds a new goroutine in an old one's record. A record something else
//! still holds is deregistered and left to its last holder. The
//! protocol is model-checked in [`model`]. The one other way to a record
//! is not a reference: the worker's signal state points at the running
//! goroutine's record and context only between the `set_running` calls
//! that bracket its turn, which ended before it died.

use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use preempt_jit::abi::GoroutineContext;

use super::engine::SpawnArgs;
use super::procs::P;
use super::Runtime;
use crate::g::{Exec, Status, G};

#[cfg(all(test, not(miri)))]
mod model;

impl Runtime {
    /// Goroutines created so far (ids are taken from 1 on, one a spawn).
    pub fn goroutines_created(&self) -> u64 {
        self.next_gid.load(Ordering::Relaxed) - 1
    }

    /// The live goroutine with id `id`, by a search of every record: for
    /// diagnoses. [`Runtime::running_on`] finds a P's without one.
    pub fn g_by_id(&self, id: u64) -> Option<Arc<G>> {
        self.allgs.find(id)
    }

    /// The goroutine `id`, read from `p.current`, if it still runs on
    /// `p` (or at least still lives).
    pub fn running_on(&self, p: &P, id: u64) -> Option<Arc<G>> {
        self.allgs.get(p.current_slot.load(Ordering::Acquire), id)
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
        let reused = p.and_then(|p| self.gfree.get(p)).and_then(|g| {
            self.allgs.reuse(g, |record| {
                self.engine.renew(record, id, func, &mut args, init)
            })
        });
        let g = reused.unwrap_or_else(|| {
            let mut exec = self.engine.new_exec(id, func, args);
            if let Exec::Jit { ctx, .. } = &mut exec {
                init(ctx);
            }
            self.allgs.register(G::new(id, func, exec))
        });
        self.ready(g.clone(), p);
        g
    }
}

/// Shards of the registry (a power of two).
const SHARDS: usize = 16;

/// Consecutive ids whose new records share a shard: a spawner's run of
/// registrations stays in one shard's cache lines.
const ID_BLOCK: u64 = 64;

/// Dead records a P keeps before it moves [`MOVE`] of them to the global
/// list, as Go's `gfput` does at 64.
const LOCAL_MAX: usize = 64;

/// How many records move between a P's list and the global one at once.
const MOVE: usize = 32;

/// Dead records kept in all, over the Ps' own: past it they are freed. A
/// bound Go does not have (it frees only the stacks of surplus records);
/// a record and its context are about 650 bytes.
const GLOBAL_MAX: usize = 1024;

/// A lock on its own cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded<T>(Mutex<T>);

impl<T> Padded<T> {
    fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One shard's records, by index; `vacant` lists the free indices.
#[derive(Debug, Default)]
struct Shard {
    records: Vec<Option<Arc<G>>>,
    vacant: Vec<u32>,
}

/// Every goroutine record the runtime has, by slot (see the module's
/// header). Slot `s` is index `s / SHARDS` of shard `s % SHARDS`.
#[derive(Debug, Default)]
pub struct AllGs {
    shards: [Padded<Shard>; SHARDS],
}

/// A record's shard and index there.
fn place(slot: u32) -> (usize, usize) {
    (slot as usize % SHARDS, slot as usize / SHARDS)
}

/// Whether a reader may see `g`: a goroutine not yet dead.
fn alive(g: &G) -> bool {
    g.status() != Status::Dead
}

impl AllGs {
    /// Registers a new record for life; its slot is written into it.
    pub fn register(&self, mut g: G) -> Arc<G> {
        let s = (g.id / ID_BLOCK) as usize % SHARDS;
        let mut shard = self.shards[s].lock();
        let index = match shard.vacant.pop() {
            Some(i) => i as usize,
            None => {
                shard.records.push(None);
                shard.records.len() - 1
            }
        };
        g.slot = u32::try_from(index * SHARDS + s).expect("fewer than 2^32 goroutine records");
        let g = Arc::new(g);
        shard.records[index] = Some(g.clone());
        g
    }

    /// Takes `g`'s record out of the registry: its last holder frees it.
    pub fn deregister(&self, g: &G) {
        let (s, index) = place(g.slot);
        let mut shard = self.shards[s].lock();
        let taken = shard
            .records
            .get_mut(index)
            .and_then(|r| r.take_if(|r| std::ptr::eq(Arc::as_ptr(r), g)));
        if taken.is_some() {
            shard.vacant.push(index as u32);
        }
        drop(shard);
        drop(taken);
    }

    /// The live goroutine `id` if it is the one in `slot`.
    pub fn get(&self, slot: u32, id: u64) -> Option<Arc<G>> {
        let (s, index) = place(slot);
        let shard = self.shards[s].lock();
        let g = shard.records.get(index)?.as_ref()?;
        (g.id == id && alive(g)).then(|| g.clone())
    }

    /// The live goroutine `id`, found by a search of every record.
    pub fn find(&self, id: u64) -> Option<Arc<G>> {
        self.shards.iter().find_map(|s| {
            s.lock()
                .records
                .iter()
                .flatten()
                .find(|g| g.id == id && alive(g))
                .cloned()
        })
    }

    /// Renews dead `g`, taken from a free list, in place with `renew`
    /// (false: it cannot be), if nothing but the registry and `g` holds
    /// it; otherwise, or if it cannot be renewed, takes it out of the
    /// registry, and its last holder frees it.
    pub fn reuse(&self, g: Arc<G>, renew: impl FnOnce(&mut G) -> bool) -> Option<Arc<G>> {
        let (s, index) = place(g.slot);
        let mut shard = self.shards[s].lock();
        if Arc::strong_count(&g) == 2 && Arc::weak_count(&g) == 0 {
            // Whoever held it last dropped its reference with a release:
            // what it did to the record happens before the renewal.
            fence(Ordering::Acquire);
            // SAFETY: the record's references are the registry's and
            // `g`, and only `g` is used while this one lives: the
            // registry's is used only under this shard's lock, which is
            // held until the borrow ends, and nothing else can take a
            // reference but through the registry (see the module's
            // header). So this is the only access to the record, as
            // `Arc::get_mut` would grant with one reference.
            let record = unsafe { &mut *Arc::as_ptr(&g).cast_mut() };
            if renew(record) {
                return Some(g);
            }
        }
        let taken = shard.records[index].take();
        shard.vacant.push(index as u32);
        drop(shard);
        drop(taken);
        None
    }

    /// The live goroutines `keep` accepts, shard by shard (not one atomic
    /// snapshot: a goroutine spawned meanwhile may or may not be in it,
    /// as with one lock taken a moment earlier or later).
    pub fn filter(&self, keep: impl Fn(&G) -> bool) -> Vec<Arc<G>> {
        let mut out = Vec::new();
        for s in &self.shards {
            let shard = s.lock();
            let live = shard.records.iter().flatten().filter(|g| alive(g));
            out.extend(live.filter(|g| keep(g)).cloned());
        }
        out
    }

    /// Every live goroutine (see [`AllGs::filter`]).
    pub fn all(&self) -> Vec<Arc<G>> {
        self.filter(|_| true)
    }

    /// Whether some live goroutine satisfies `f`.
    pub fn any(&self, f: impl Fn(&G) -> bool) -> bool {
        self.shards.iter().any(|s| {
            let shard = s.lock();
            let mut live = shard.records.iter().flatten().filter(|g| alive(g));
            live.any(|g| f(g))
        })
    }

    /// Records registered, live or dead.
    #[cfg(test)]
    pub fn records(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().records.iter().flatten().count())
            .sum()
    }
}

/// Dead goroutines' records, per P and global, for spawns to reuse.
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

    /// Goroutine `g` died on P `p`: kept on `p`'s list, surplus moving to
    /// the global one, and past its bound out of `all`, to be freed.
    pub fn retire(&self, p: usize, g: Arc<G>, all: &AllGs) {
        let mut local = self.local[p].lock();
        local.push(g);
        if local.len() > LOCAL_MAX {
            let from = local.len() - MOVE;
            let mut moved = local.drain(from..);
            let mut global = self.global.lock();
            let room = GLOBAL_MAX.saturating_sub(global.len());
            global.extend(moved.by_ref().take(room));
            drop(global);
            for g in moved {
                all.deregister(&g);
            }
        }
    }

    /// A dead record for a goroutine spawned on `p`: from its list, or a
    /// batch from the global list.
    pub fn get(&self, p: usize) -> Option<Arc<G>> {
        let mut local = self.local[p].lock();
        if local.is_empty() {
            let mut global = self.global.lock();
            let from = global.len().saturating_sub(MOVE);
            local.extend(global.drain(from..));
        }
        local.pop()
    }

    /// Records kept for reuse, all lists together.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.global.lock().len() + self.local.iter().map(|l| l.lock().len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Stack;
    use preempt_jit::ir::FuncId;
    use std::sync::atomic::Ordering::Relaxed;

    fn jit_record(id: u64) -> G {
        let exec = Exec::Jit {
            ctx: Box::new(GoroutineContext::new()),
            stack: Stack::none(),
            args: Vec::new(),
        };
        G::new(id, FuncId::new(0), exec)
    }

    /// A registered goroutine `id`, dead, as it is when it retires.
    fn dead(all: &AllGs, id: u64) -> Arc<G> {
        let g = all.register(jit_record(id));
        g.set_status(Status::Dead);
        g
    }

    /// Renews a record as goroutine `id`.
    fn renew_as(id: u64) -> impl FnOnce(&mut G) -> bool {
        move |g| g.renew(id, FuncId::new(1), 0x1234, &mut Vec::new(), |_| {})
    }

    #[test]
    fn the_registry_finds_live_records_by_slot_and_skips_dead_ones() {
        let all = AllGs::default();
        let gs: Vec<Arc<G>> = (1..=200).map(|id| all.register(jit_record(id))).collect();
        let mut slots: Vec<u32> = gs.iter().map(|g| g.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), 200, "every record has a slot of its own");
        let g37 = &gs[36];
        assert_eq!(all.get(g37.slot, 37).map(|g| g.id), Some(37));
        assert!(all.get(g37.slot, 38).is_none(), "the slot holds 37, not 38");
        assert_eq!(all.find(37).map(|g| g.slot), Some(g37.slot));
        assert_eq!(all.all().len(), 200);
        assert_eq!(all.filter(|g| g.id % 2 == 0).len(), 100);

        g37.set_status(Status::Dead);
        assert!(all.get(g37.slot, 37).is_none(), "dead records are skipped");
        assert!(all.find(37).is_none());
        assert!(!all.any(|g| g.id == 37));
        assert!(all.any(|g| g.id == 38));
        assert_eq!(all.all().len(), 199);
        assert_eq!(all.records(), 200, "but still registered");

        all.deregister(g37);
        assert_eq!(all.records(), 199);
        let again = all.register(jit_record(37));
        assert_eq!(again.slot, g37.slot, "a vacant slot is taken again");
    }

    #[test]
    fn a_record_only_the_free_list_holds_is_renewed_in_place() {
        let (all, free) = (AllGs::default(), GFree::new(2));
        let g = dead(&all, 7);
        let (slot, at) = (g.slot, Arc::as_ptr(&g));
        free.retire(0, g, &all);
        let g = free.get(0).expect("P 0 kept it");
        let g = all.reuse(g, renew_as(8)).expect("nothing else held it");
        assert_eq!((g.id, g.slot, Arc::as_ptr(&g)), (8, slot, at));
        assert_eq!(g.status(), Status::Runnable);
        assert!(all.get(slot, 7).is_none(), "the old goroutine is gone");
        assert_eq!(all.get(slot, 8).map(|g| g.id), Some(8));
        assert_eq!(all.records(), 1);
    }

    #[test]
    fn a_record_held_elsewhere_is_left_to_its_holder() {
        let all = AllGs::default();
        let g = dead(&all, 7);
        let held = g.clone();
        assert!(all.reuse(g, renew_as(8)).is_none());
        assert_eq!(held.id, 7, "the holder still sees its goroutine");
        assert_eq!(all.records(), 0, "out of the registry: the holder frees it");
        assert_eq!(Arc::strong_count(&held), 1);
    }

    #[test]
    fn a_record_that_cannot_be_renewed_leaves_the_registry() {
        let all = AllGs::default();
        let g = dead(&all, 7);
        assert!(all.reuse(g, |_| false).is_none());
        assert_eq!(all.records(), 0);
    }

    #[test]
    fn surplus_records_move_to_the_global_list_and_back() {
        let (all, free) = (AllGs::default(), GFree::new(2));
        let n = LOCAL_MAX + 1;
        for id in 0..n as u64 {
            free.retire(0, dead(&all, id), &all);
        }
        // P 0 moved MOVE to the global list when it passed LOCAL_MAX;
        // P 1 finds them there.
        assert_eq!(free.len(), n);
        let mut from_global = 0;
        while let Some(g) = free.get(1) {
            // As a spawn that cannot renew it does.
            all.deregister(&g);
            from_global += 1;
        }
        assert_eq!(from_global, MOVE);
        // The global list is bounded: the surplus beyond it leaves the
        // registry and is freed.
        for id in 0..(4 * GLOBAL_MAX as u64) {
            free.retire(1, dead(&all, 1000 + id), &all);
        }
        assert!(free.len() <= GLOBAL_MAX + 2 * LOCAL_MAX);
        assert_eq!(all.records(), free.len(), "the freed left the registry");
    }

    #[test]
    fn a_renewed_record_is_a_new_goroutine() {
        let mut g = jit_record(7);
        g.set_status(Status::Dead);
        g.lock_depth.store(3, Relaxed);
        let mut args = vec![1, 2, 3];
        assert!(g.renew(8, FuncId::new(2), 0x1234, &mut args, |c| c.gc = 0x99));
        assert!(args.is_empty(), "the old arguments (none) came back");
        assert_eq!((g.id, g.func), (8, FuncId::new(2)));
        assert_eq!(g.status(), Status::Runnable);
        assert_eq!(g.lock_depth.load(Relaxed), 0);
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
