//! The registry's reuse rule, model-checked with loom: a dead record is
//! renewed in place only under its shard's lock, and only while the
//! registry's reference and the free list's are its only ones.
//!
//! The model has one record in one slot. Its references are counted as
//! `std::sync::Arc` counts them (a clone adds with `Relaxed`, a drop
//! subtracts with `Release`, the reuser reads the count and fences with
//! `Acquire`); its id is a loom `UnsafeCell`, so that any access to it
//! not ordered with the renewal's write fails the model as a data race,
//! which is what a reader finding a half-renewed record, or a holder
//! finding a new goroutine in its old one's record, would be. Each
//! planted bug drops one half of the rule, and must be caught (so is the
//! rule without its `Acquire` fence: the last holder's read of the id
//! then races with the renewal's write).

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicU64};
use loom::sync::{Arc, Mutex};
use loom::thread;

use crate::sync::model::check;

const OLD: u64 = 7;
const NEW: u64 = 8;
const DEAD: u64 = 0;
const LIVE: u64 = 1;

#[derive(Clone, Copy, PartialEq)]
enum Planted {
    /// Renews without taking the shard's lock.
    NoLock,
    /// Renews whatever else holds the record.
    NoCount,
}

struct Record {
    id: UnsafeCell<u64>,
    status: AtomicU64,
    refs: AtomicU64,
}

/// A reference to the record, counted.
struct Ref(Arc<Record>);

impl Ref {
    fn clone_ref(&self) -> Ref {
        self.0.refs.fetch_add(1, Relaxed);
        Ref(self.0.clone())
    }

    fn id(&self) -> u64 {
        // SAFETY: loom checks this read against the renewal's write: one
        // not ordered with it fails the model.
        self.0.id.with(|p| unsafe { *p })
    }
}

impl Drop for Ref {
    fn drop(&mut self) {
        self.0.refs.fetch_sub(1, Release);
    }
}

struct World {
    /// The registry's slot (its reference), under the shard's lock.
    slot: Mutex<Option<Ref>>,
    /// The free list, where the dying goroutine's M leaves its reference.
    free: Mutex<Option<Ref>>,
}

impl World {
    /// One record, `status`, registered, and the one other reference to it.
    fn new(status: u64) -> (Arc<World>, Ref) {
        let record = Arc::new(Record {
            id: UnsafeCell::new(OLD),
            status: AtomicU64::new(status),
            refs: AtomicU64::new(2),
        });
        let w = World {
            slot: Mutex::new(Some(Ref(record.clone()))),
            free: Mutex::new(None),
        };
        (Arc::new(w), Ref(record))
    }

    /// `AllGs::get`: the live record `id`, a reference taken under the lock.
    fn get(&self, id: u64) -> Option<Ref> {
        let slot = self.slot.lock().unwrap();
        let r = slot.as_ref()?;
        (r.id() == id && r.0.status.load(Acquire) == LIVE).then(|| r.clone_ref())
    }

    /// `AllGs::reuse`: renews dead `g` to `NEW` if nothing else holds it,
    /// else takes it out of the registry.
    fn reuse(&self, g: Ref, planted: Option<Planted>) -> bool {
        let mut slot = (planted != Some(Planted::NoLock)).then(|| self.slot.lock().unwrap());
        let sole = planted == Some(Planted::NoCount) || g.0.refs.load(Relaxed) == 2;
        if sole {
            fence(Acquire);
            // SAFETY: as in `Ref::id`: loom checks it.
            g.0.id.with_mut(|p| unsafe { *p = NEW });
            g.0.status.store(LIVE, Release);
            return true;
        }
        if let Some(slot) = slot.as_mut() {
            slot.take();
        }
        false
    }
}

/// A reader (the monitor, a diagnosis) looks the record up while the
/// goroutine dies on one M and a spawn on another reuses its record: the
/// reader's reference, if it got one, must keep the record from reuse,
/// and what it reads must be the goroutine it asked for.
fn lookup_vs_death_and_reuse(planted: Option<Planted>) {
    check(3, move || {
        let (w, mine) = World::new(LIVE);
        let reader = {
            let w = w.clone();
            thread::spawn(move || {
                if let Some(g) = w.get(OLD) {
                    assert_eq!(g.id(), OLD, "a reference to goroutine {OLD} found another");
                }
            })
        };
        let dying = {
            let w = w.clone();
            thread::spawn(move || {
                mine.0.status.store(DEAD, Release);
                *w.free.lock().unwrap() = Some(mine);
            })
        };
        let spawner = {
            let w = w.clone();
            thread::spawn(move || loop {
                if let Some(g) = w.free.lock().unwrap().take() {
                    w.reuse(g, planted);
                    break;
                }
                thread::yield_now();
            })
        };
        for t in [reader, dying, spawner] {
            t.join().unwrap();
        }
    });
}

/// A reader asks for the new goroutine while the spawn renews the dead
/// record: it finds it whole or not at all.
fn lookup_during_renewal(planted: Option<Planted>) {
    check(3, move || {
        let (w, free) = World::new(DEAD);
        let reader = {
            let w = w.clone();
            thread::spawn(move || {
                if let Some(g) = w.get(NEW) {
                    assert_eq!(g.id(), NEW);
                }
            })
        };
        assert!(w.reuse(free, planted), "nothing else held it");
        reader.join().unwrap();
    });
}

#[test]
fn a_held_record_is_never_renewed() {
    lookup_vs_death_and_reuse(None);
}

#[test]
fn a_record_is_found_whole_or_not_at_all() {
    lookup_during_renewal(None);
}

#[test]
#[should_panic(expected = "Causality violation")]
fn planted_reuse_without_the_count_is_caught() {
    lookup_vs_death_and_reuse(Some(Planted::NoCount));
}

#[test]
#[should_panic(expected = "Causality violation")]
fn planted_reuse_without_the_lock_is_caught() {
    lookup_during_renewal(Some(Planted::NoLock));
}
