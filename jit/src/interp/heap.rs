//! The interpreter's heap: objects of typed slots, and a mark-sweep
//! collector.
//!
//! An object is a row of slots; each slot is *fresh* (reads 0 through `get`
//! and `nil` through `getref`), holds an i64 (written by `set`) or holds a
//! ref (written by `setref`). A ref is a *handle*: the object's index in the
//! table plus one, so that 0 is `nil`. Handles of collected objects are
//! reused, which is safe because a handle that anything can still reach
//! keeps its object alive.
//!
//! Collection is stop-the-world and precise: the roots are the ref globals
//! and every register of every goroutine (registers carry their types, see
//! [`Value`]). Nothing about it is observable to a PIR program except memory
//! use, so the interpreter collects whenever it likes; it follows the
//! GOGC rule (collect when the heap has grown by `gc_percent` since the last
//! collection, never below [`MIN_NEXT_GC`]) so that allocation-heavy programs
//! run in bounded memory. The heap never starts a collection by itself,
//! since it cannot see the goroutines: [`Heap::alloc`] answers
//! [`AllocError::Collect`] and whoever holds the goroutines collects and
//! retries (see [`Event::Collect`](super::Event::Collect)).
//!
//! Sizes are accounted as the JIT lays objects out ([`crate::abi`]):
//! [`OBJECT_HEADER_BYTES`] plus [`SLOT_BYTES`] per slot, so that limits and
//! GC goals mean the same on both engines. When the live heap would
//! pass the configured limit even after a collection, the allocation fails
//! with [`Fault::OutOfMemory`] (`fatal error: runtime: out of memory`), so a
//! huge `new` is a clear error and never an abort of the host.

use crate::abi;
use crate::fault::Fault;

use super::value::Value;
use crate::ir::Type;

/// Bytes charged for an object besides its slots (length and GC word).
pub const OBJECT_HEADER_BYTES: u64 = abi::OBJ_SLOTS as u64;

/// Bytes charged per slot (tag word and value word).
pub const SLOT_BYTES: u64 = abi::SLOT_SIZE as u64;

/// The heap size below which no collection is started (Go's 4 MB minimum).
pub const MIN_NEXT_GC: u64 = 4 << 20;

const FRESH: u8 = 0;
const INT: u8 = 1;
const REF: u8 = 2;

/// One object: parallel rows of slot values and slot kinds.
#[derive(Debug)]
struct Object {
    vals: Box<[i64]>,
    kinds: Box<[u8]>,
}

impl Object {
    fn bytes(&self) -> u64 {
        object_bytes(self.vals.len() as u64)
    }
}

/// The table index a handle names (`None` for nil and for what no handle
/// can be).
fn handle_index(handle: i64) -> Option<usize> {
    usize::try_from(handle).ok()?.checked_sub(1)
}

fn object_bytes(slots: u64) -> u64 {
    OBJECT_HEADER_BYTES.saturating_add(slots.saturating_mul(SLOT_BYTES))
}

/// Why an allocation did not happen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AllocError {
    /// The heap wants a collection first; collect and ask again.
    Collect,
    /// Even a collection cannot make room within the limit.
    OutOfMemory,
}

/// Counters, for tests and benchmarks.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct HeapStats {
    pub collections: u64,
    pub allocated: u64,
    pub freed: u64,
}

/// The objects of one program, shared by all its goroutines.
#[derive(Debug)]
pub struct Heap {
    objects: Vec<Option<Object>>,
    free: Vec<u32>,
    /// Bytes of every object not yet swept (live or garbage).
    bytes: u64,
    next_gc: u64,
    gc_percent: i64,
    limit: u64,
    /// Set by a collection, cleared by the next allocation: an allocation
    /// that still does not fit right after a collection is out of memory.
    just_collected: bool,
    marks: Vec<bool>,
    work: Vec<u32>,
    stats: HeapStats,
}

impl Heap {
    /// An empty heap that may hold `limit` bytes of live objects.
    pub fn new(gc_percent: i64, limit: u64) -> Heap {
        Heap {
            objects: Vec::new(),
            free: Vec::new(),
            bytes: 0,
            next_gc: MIN_NEXT_GC,
            gc_percent,
            limit,
            just_collected: false,
            marks: Vec::new(),
            work: Vec::new(),
            stats: HeapStats::default(),
        }
    }

    /// Bytes held by objects not yet swept.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn stats(&self) -> HeapStats {
        self.stats
    }

    /// `setgcpercent`: a negative value turns automatic collection off (a
    /// collection still happens before an allocation would pass the limit).
    pub fn set_gc_percent(&mut self, percent: i64) {
        self.gc_percent = percent;
        self.next_gc = self.goal();
    }

    fn goal(&self) -> u64 {
        if self.gc_percent < 0 {
            return u64::MAX;
        }
        let live = self.bytes as u128;
        let goal = live + live * self.gc_percent as u128 / 100;
        (goal.min(u64::MAX as u128) as u64).max(MIN_NEXT_GC)
    }

    /// A new object of `slots` fresh slots (`slots` >= 0); its handle.
    pub fn alloc(&mut self, slots: i64) -> Result<i64, AllocError> {
        debug_assert!(slots >= 0);
        let size = object_bytes(slots as u64);
        if size > self.limit {
            return Err(AllocError::OutOfMemory);
        }
        let after = self.bytes.saturating_add(size);
        if after > self.limit || after > self.next_gc {
            if !self.just_collected {
                return Err(AllocError::Collect);
            }
            if after > self.limit {
                return Err(AllocError::OutOfMemory);
            }
        }
        self.just_collected = false;
        let n = slots as usize;
        let obj = Object {
            vals: vec![0; n].into_boxed_slice(),
            kinds: vec![FRESH; n].into_boxed_slice(),
        };
        self.bytes = after;
        self.stats.allocated += 1;
        let index = match self.free.pop() {
            Some(i) => {
                self.objects[i as usize] = Some(obj);
                i as usize
            }
            None => {
                if self.objects.len() >= u32::MAX as usize - 1 {
                    return Err(AllocError::OutOfMemory);
                }
                self.objects.push(Some(obj));
                self.objects.len() - 1
            }
        };
        Ok(index as i64 + 1)
    }

    fn object(&self, handle: i64) -> Result<&Object, Fault> {
        // Handle 0 is nil; anything else that names no object cannot come
        // from a verified program and is treated like nil, never a panic.
        handle_index(handle)
            .and_then(|i| self.objects.get(i))
            .and_then(Option::as_ref)
            .ok_or(Fault::NilDereference)
    }

    fn object_mut(&mut self, handle: i64) -> Result<&mut Object, Fault> {
        handle_index(handle)
            .and_then(|i| self.objects.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or(Fault::NilDereference)
    }

    fn index(obj: &Object, index: i64) -> Result<usize, Fault> {
        match usize::try_from(index) {
            Ok(i) if i < obj.vals.len() => Ok(i),
            _ => Err(Fault::IndexOutOfRange {
                index,
                len: obj.vals.len() as i64,
            }),
        }
    }

    /// `len`
    pub fn len(&self, handle: i64) -> Result<i64, Fault> {
        Ok(self.object(handle)?.vals.len() as i64)
    }

    /// `get`: nil, then bounds, then slot type.
    pub fn get(&self, handle: i64, index: i64) -> Result<i64, Fault> {
        let obj = self.object(handle)?;
        let i = Self::index(obj, index)?;
        if obj.kinds[i] == REF {
            return Err(Fault::SlotTypeMismatch);
        }
        Ok(obj.vals[i])
    }

    /// `getref`: nil, then bounds, then slot type; the ref's handle.
    pub fn get_ref(&self, handle: i64, index: i64) -> Result<i64, Fault> {
        let obj = self.object(handle)?;
        let i = Self::index(obj, index)?;
        if obj.kinds[i] == INT {
            return Err(Fault::SlotTypeMismatch);
        }
        Ok(obj.vals[i])
    }

    /// `set`: the slot holds an i64 from now on.
    pub fn set(&mut self, handle: i64, index: i64, value: i64) -> Result<(), Fault> {
        let obj = self.object_mut(handle)?;
        let i = Self::index(obj, index)?;
        obj.vals[i] = value;
        obj.kinds[i] = INT;
        Ok(())
    }

    /// `setref`: the slot holds a ref (possibly nil) from now on.
    pub fn set_ref(&mut self, handle: i64, index: i64, target: i64) -> Result<(), Fault> {
        let obj = self.object_mut(handle)?;
        let i = Self::index(obj, index)?;
        obj.vals[i] = target;
        obj.kinds[i] = REF;
        Ok(())
    }

    /// Frees every object that no root reaches. `roots` yields every value
    /// that may hold a ref; values of other types are ignored.
    pub fn collect(&mut self, roots: impl IntoIterator<Item = Value>) {
        self.marks.clear();
        self.marks.resize(self.objects.len(), false);
        self.work.clear();
        for v in roots {
            if v.ty == Type::Ref {
                self.mark(v.bits);
            }
        }
        while let Some(i) = self.work.pop() {
            let Some(obj) = &self.objects[i as usize] else {
                continue;
            };
            for (k, &kind) in obj.kinds.iter().enumerate() {
                if kind == REF {
                    let target = obj.vals[k];
                    if let Some(t) = handle_index(target).filter(|&t| t < self.marks.len()) {
                        if !self.marks[t] && self.objects[t].is_some() {
                            self.marks[t] = true;
                            self.work.push(t as u32);
                        }
                    }
                }
            }
        }
        for i in 0..self.objects.len() {
            if !self.marks[i] {
                if let Some(obj) = self.objects[i].take() {
                    self.bytes -= obj.bytes();
                    self.free.push(i as u32);
                    self.stats.freed += 1;
                }
            }
        }
        // Trim free handles at the end of the table so that a heap that
        // shrank gives the table back.
        while matches!(self.objects.last(), Some(None)) {
            self.objects.pop();
        }
        let len = self.objects.len() as u32;
        self.free.retain(|&i| i < len);
        self.stats.collections += 1;
        self.just_collected = true;
        self.next_gc = self.goal();
    }

    fn mark(&mut self, handle: i64) {
        if let Some(i) = handle_index(handle).filter(|&i| i < self.marks.len()) {
            if !self.marks[i] && self.objects[i].is_some() {
                self.marks[i] = true;
                self.work.push(i as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_typed_by_their_last_write() {
        let mut h = Heap::new(100, 1 << 30);
        let r = h.alloc(3).unwrap();
        assert_eq!(h.get(r, 0), Ok(0));
        assert_eq!(h.get_ref(r, 0), Ok(0));
        h.set(r, 1, 42).unwrap();
        assert_eq!(h.get(r, 1), Ok(42));
        assert_eq!(h.get_ref(r, 1), Err(Fault::SlotTypeMismatch));
        h.set_ref(r, 2, 0).unwrap();
        assert_eq!(h.get(r, 2), Err(Fault::SlotTypeMismatch));
        assert_eq!(h.get_ref(r, 2), Ok(0));
        h.set(r, 2, 7).unwrap();
        assert_eq!(h.get(r, 2), Ok(7));
        assert_eq!(
            h.get(r, 3),
            Err(Fault::IndexOutOfRange { index: 3, len: 3 })
        );
        assert_eq!(
            h.set(r, -1, 0),
            Err(Fault::IndexOutOfRange { index: -1, len: 3 })
        );
        assert_eq!(h.get(0, 0), Err(Fault::NilDereference));
        assert_eq!(h.len(0), Err(Fault::NilDereference));
        assert_eq!(h.len(12345), Err(Fault::NilDereference));
        assert_eq!(h.len(i64::MIN), Err(Fault::NilDereference));
    }

    #[test]
    fn collection_keeps_what_roots_reach() {
        let mut h = Heap::new(100, 1 << 30);
        let a = h.alloc(1).unwrap();
        let b = h.alloc(1).unwrap();
        let c = h.alloc(2).unwrap();
        h.set_ref(a, 0, b).unwrap();
        h.set_ref(b, 0, a).unwrap();
        h.set(c, 0, a).unwrap(); // an integer that looks like a handle
        h.collect([Value::from_handle(a), Value::int(c)]);
        assert_eq!(h.stats().freed, 1);
        assert_eq!(h.len(a), Ok(1));
        assert_eq!(h.len(b), Ok(1));
        assert_eq!(h.len(c), Err(Fault::NilDereference));
        assert_eq!(h.bytes(), 2 * object_bytes(1));
        h.collect([]);
        assert_eq!(h.bytes(), 0);
        assert_eq!(h.objects.len(), 0);
    }

    #[test]
    fn asks_for_a_collection_then_runs_out() {
        let mut h = Heap::new(-1, 1000);
        assert_eq!(h.alloc(1 << 40), Err(AllocError::OutOfMemory));
        assert_eq!(h.alloc(i64::MAX), Err(AllocError::OutOfMemory));
        assert_eq!(h.alloc(100), Err(AllocError::OutOfMemory));
        let a = h.alloc(40).unwrap();
        assert_eq!(h.alloc(40), Err(AllocError::Collect));
        h.collect([Value::from_handle(a)]);
        assert_eq!(h.alloc(40), Err(AllocError::OutOfMemory));
        h.collect([]);
        assert!(h.alloc(40).is_ok());
    }

    #[test]
    fn gc_percent_sets_the_goal() {
        let mut h = Heap::new(100, u64::MAX);
        let big = (MIN_NEXT_GC / SLOT_BYTES) as i64 - 10;
        let a = h.alloc(big).unwrap();
        assert_eq!(h.alloc(100), Err(AllocError::Collect));
        h.collect([Value::from_handle(a)]);
        assert!(h.alloc(1).is_ok());
        // Live is just under 4 MiB: the next collection waits for twice that.
        assert!(h.alloc(big / 2).is_ok());
        assert_eq!(h.alloc(big), Err(AllocError::Collect));
        h.set_gc_percent(-1);
        assert!(h.alloc(big).is_ok());
    }
}
