//! The JIT engine's heap: PIR objects in the layout generated code expects
//! (see [`preempt_jit::abi`]), allocated by size class, never moved, freed
//! by the collector's sweep.
//!
//! # Layout
//!
//! The heap is one reservation of address space (`MAP_NORESERVE`: pages
//! cost memory only once touched), cut into 64 KiB **spans**. A span holds
//! objects of one **size class** (multiples of 16 bytes up to 16 KiB, in
//! steps of about an eighth, as Go's classes), or is part of one **large
//! object** that has a run of spans to itself. One atomic word per span
//! says which (its *kind*), so that the object containing any address is
//! found without a lock: the span from the address, the object from the
//! span's class (or the run's first span), and the object's GC word says
//! whether an object lives there. That lookup is what conservative stack
//! scanning needs: an interior pointer (generated code keeps `object +
//! 16 * index` in registers) keeps its whole object alive.
//!
//! # The GC word
//!
//! The second word of every object slot (after the length word) is:
//!
//! - [`GC_FREE`] (0): no object here;
//! - [`GC_FREED`]: an object the sweep freed in `--gc-verify` mode, kept
//!   poisoned (every tag and value [`TAG_FREED`]) for one more cycle
//!   before it may be reused, so that a late write into it is seen;
//! - any other value: an object, marked in the cycle of that number (the
//!   heap's *epoch*). Marking is a compare-and-swap to the current epoch,
//!   so mark bits never need clearing; an object allocated while a cycle
//!   runs gets the current epoch at once (it is allocated black), one
//!   allocated between cycles gets the last cycle's (white for the next).
//!
//! # Allocation and sweeping
//!
//! Allocation is a runtime call (`new`), served under one mutex: a span of
//! the class with room gives a slot from its free list (freed slots,
//! zeroed again here) or, past its high-water mark, a never-used slot
//! (zero already: a span is zeroed when it is cut from reused memory). The
//! limit is on live bytes counted in the object layout
//! ([`object_bytes`]), as before the collector existed, so that `new`
//! fails at the same point on every engine; when it would be passed,
//! [`Heap::alloc`] answers [`AllocError::Full`] and the caller collects
//! and asks once more before giving up.
//!
//! The sweep runs after marking, concurrently with allocation, a span at a
//! time under the same mutex: an object whose GC word is not the epoch is
//! freed (its slot goes on the span's free list; a large object's spans go
//! back to the pool of free spans, coalesced, and their pages to the
//! kernel). A span left with no object goes back to the pool too.
//! Allocation during the sweep takes slots the sweep freed or never-used
//! ones; either way the new object carries the epoch and the sweep leaves
//! it alone.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use preempt_jit::abi::{
    object_bytes, DEFAULT_HEAP_LIMIT, OBJ_GC, OBJ_LEN, OBJ_SLOTS, SLOT_SIZE, SLOT_TAG, SLOT_VALUE,
    TAG_FREED,
};

/// Bytes per span; spans are aligned to their size.
pub const SPAN_BYTES: usize = 64 << 10;
const SPAN_SHIFT: u32 = SPAN_BYTES.trailing_zeros();
/// The largest object that shares spans with others.
pub const MAX_SMALL: usize = 16 << 10;

/// GC word of a slot no object occupies.
pub const GC_FREE: u64 = 0;
/// GC word of a freed object kept poisoned until the next sweep.
pub const GC_FREED: u64 = u64::MAX;

/// Span kinds, in the kind word's upper half; the lower half holds the
/// size class (small), the run length (large, first span) or the distance
/// back to the run's first span (large, other spans).
const KIND_SMALL: u64 = 1;
const KIND_LARGE: u64 = 2;
const KIND_TAIL: u64 = 3;

/// The address space reserved for a heap: half as much again as its limit
/// (spans are never full), within these bounds.
const MIN_RESERVE: usize = 64 << 20;
const MAX_RESERVE: usize = 16 << 30;

/// Object sizes by class: multiples of 16 up to 128, then steps of about
/// an eighth (rounded to 16) up to [`MAX_SMALL`].
fn size_classes() -> &'static [usize] {
    static CLASSES: OnceLock<Vec<usize>> = OnceLock::new();
    CLASSES.get_or_init(|| {
        let mut v = Vec::new();
        let mut size = 16;
        while size <= MAX_SMALL {
            v.push(size);
            size += if size < 128 { 16 } else { (size / 8) & !15 };
        }
        if v.last() != Some(&MAX_SMALL) {
            v.push(MAX_SMALL);
        }
        v
    })
}

/// The class of an object of `bytes` bytes (`bytes <= MAX_SMALL`).
fn class_of(bytes: usize) -> usize {
    size_classes().partition_point(|&s| s < bytes)
}

/// Why an allocation failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AllocError {
    Negative,
    /// The object alone is larger than the limit: no collection helps.
    OutOfMemory,
    /// Past the limit with what is allocated now, or out of address
    /// space: a collection may make room.
    Full,
}

/// What a sweep did.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct SweepStats {
    pub freed_objects: u64,
    pub freed_bytes: u64,
    /// Live bytes once the sweep was done.
    pub live_bytes: u64,
}

/// How to sweep.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct SweepMode {
    /// Poison freed objects and keep them for a cycle (`--gc-verify`).
    pub poison: bool,
    /// Fault injection: free marked objects too (proves that poisoning
    /// catches a use after free).
    pub free_marked: bool,
}

/// A freed object was written while it sat poisoned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WrittenAfterFree {
    pub object: usize,
    pub slot: usize,
    pub tag: u64,
    pub value: u64,
}

/// Allocation state of one span.
#[derive(Clone, Copy, Default, Debug)]
struct SpanState {
    /// Head of the list of freed slots (0: empty); each links to the next
    /// through its length word.
    free: usize,
    /// Slots below this index have been handed out at least once; the
    /// rest of the span is still zero.
    bump: u32,
    /// Objects allocated and not yet swept.
    used: u32,
    /// Freed objects kept poisoned.
    quarantined: u32,
    /// On its class's list of spans with room.
    in_partial: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per size class, spans that may have room.
    partial: Vec<Vec<u32>>,
    /// Per span below `high_water`.
    spans: Vec<SpanState>,
    /// Runs of free spans below `high_water`: first span -> length.
    free_runs: BTreeMap<u32, u32>,
    /// Spans from here up are not in use (nor in `free_runs`).
    high_water: u32,
    /// Spans from here up have never been used, so are still zero.
    peak: u32,
    bytes: u64,
    objects: u64,
}

/// The heap of one program.
#[derive(Debug)]
pub struct Heap {
    /// The mapping (for `munmap`) and its span-aligned part.
    map: (usize, usize),
    base: usize,
    nspans: usize,
    kinds: Box<[AtomicU64]>,
    inner: Mutex<Inner>,
    limit: u64,
    /// `inner.bytes`, readable without the lock (allocation triggers).
    live: AtomicU64,
    /// The current cycle's number (1 before the first).
    epoch: AtomicU64,
}

/// The word at `addr`.
///
/// # Safety
///
/// `addr` is 8-aligned and lies in a heap's reservation, which stays
/// mapped read-write for as long as the returned reference is used.
unsafe fn word<'a>(addr: usize) -> &'a AtomicU64 {
    // SAFETY: per the contract, a valid, aligned, mapped word; AtomicU64
    // has the layout of u64 and generated code only ever stores whole
    // aligned words.
    unsafe { &*(addr as *const AtomicU64) }
}

fn map_reserve(len: usize) -> Option<usize> {
    // SAFETY: a fresh private anonymous mapping; checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}

impl Default for Heap {
    fn default() -> Heap {
        Heap::with_limit(DEFAULT_HEAP_LIMIT)
    }
}

impl Heap {
    pub fn new() -> Heap {
        Heap::default()
    }

    /// A heap that refuses to hold more than `limit` bytes of objects.
    pub fn with_limit(limit: u64) -> Heap {
        let want = usize::try_from(limit.saturating_add(limit / 2))
            .unwrap_or(MAX_RESERVE)
            .clamp(MIN_RESERVE, MAX_RESERVE);
        // Ask for less if the system refuses that much address space; an
        // empty heap (every allocation Full) if it refuses even the least.
        let mut len = want;
        let mut map = None;
        while map.is_none() && len >= MIN_RESERVE {
            map = map_reserve(len + SPAN_BYTES).map(|p| (p, len + SPAN_BYTES));
            if map.is_none() {
                len /= 2;
            }
        }
        let (map, base, nspans) = match map {
            Some((p, l)) => ((p, l), p.next_multiple_of(SPAN_BYTES), len / SPAN_BYTES),
            None => ((0, 0), 0, 0),
        };
        // Zeroed by calloc, so untouched pages of the table cost nothing.
        let kinds: Box<[u64]> = vec![0u64; nspans].into_boxed_slice();
        // SAFETY: AtomicU64 has the same size, alignment and bit validity
        // as u64, so a boxed slice of one is a boxed slice of the other.
        let kinds = unsafe { Box::from_raw(Box::into_raw(kinds) as *mut [AtomicU64]) };
        Heap {
            map,
            base,
            nspans,
            kinds,
            inner: Mutex::new(Inner {
                partial: vec![Vec::new(); size_classes().len()],
                ..Inner::default()
            }),
            limit,
            live: AtomicU64::new(0),
            epoch: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn span_base(&self, idx: usize) -> usize {
        self.base + (idx << SPAN_SHIFT)
    }

    /// Live bytes (objects allocated and not yet freed), in the object
    /// layout's count.
    pub fn bytes_allocated(&self) -> u64 {
        self.live.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The current cycle's number: what a mark sets GC words to.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Starts a cycle: every object is white from now on, and objects
    /// allocated from now on are black. Only while the world is stopped.
    pub fn begin_cycle(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Allocates an object of `slots` fresh slots and returns its address.
    pub fn alloc(&self, slots: i64) -> Result<usize, AllocError> {
        if slots < 0 {
            return Err(AllocError::Negative);
        }
        let bytes = object_bytes(slots);
        if bytes > self.limit {
            return Err(AllocError::OutOfMemory);
        }
        let size = bytes as usize;
        let mut inner = self.lock();
        if inner.bytes.saturating_add(bytes) > self.limit {
            return Err(AllocError::Full);
        }
        let obj = if size <= MAX_SMALL {
            self.alloc_small(&mut inner, class_of(size))
        } else {
            self.alloc_large(&mut inner, size)
        }
        .ok_or(AllocError::Full)?;
        // SAFETY: `obj` is a zeroed object slot of at least `size` bytes in
        // the reservation, owned by the heap.
        unsafe {
            word(obj + OBJ_LEN as usize).store(slots as u64, Ordering::Relaxed);
            // Publishes the object to lock-free lookups.
            word(obj + OBJ_GC as usize).store(self.epoch(), Ordering::Release);
        }
        inner.bytes += bytes;
        inner.objects += 1;
        self.live.store(inner.bytes, Ordering::Release);
        Ok(obj)
    }

    fn alloc_small(&self, inner: &mut Inner, class: usize) -> Option<usize> {
        let size = size_classes()[class];
        let capacity = (SPAN_BYTES / size) as u32;
        while let Some(&idx) = inner.partial[class].last() {
            let base = self.span_base(idx as usize);
            let st = &mut inner.spans[idx as usize];
            if st.free != 0 {
                let obj = st.free;
                // SAFETY: a freed slot of this span: its length word links
                // the list; the whole slot is the heap's to reuse.
                unsafe {
                    st.free = word(obj + OBJ_LEN as usize).load(Ordering::Relaxed) as usize;
                    zero(obj, size);
                }
                st.used += 1;
                return Some(obj);
            }
            if st.bump < capacity {
                let obj = base + st.bump as usize * size;
                st.bump += 1;
                st.used += 1;
                return Some(obj);
            }
            st.in_partial = false;
            inner.partial[class].pop();
        }
        let (idx, fresh) = self.take_spans(inner, 1)?;
        let base = self.span_base(idx as usize);
        if !fresh {
            // SAFETY: a whole span of the reservation, free, ours.
            unsafe { zero(base, SPAN_BYTES) };
        }
        inner.spans[idx as usize] = SpanState {
            free: 0,
            bump: 1,
            used: 1,
            quarantined: 0,
            in_partial: true,
        };
        inner.partial[class].push(idx);
        self.kinds[idx as usize].store(KIND_SMALL << 32 | class as u64, Ordering::Release);
        Some(base)
    }

    fn alloc_large(&self, inner: &mut Inner, size: usize) -> Option<usize> {
        let n = size.div_ceil(SPAN_BYTES) as u32;
        let (idx, fresh) = self.take_spans(inner, n)?;
        let base = self.span_base(idx as usize);
        if !fresh {
            // SAFETY: the run's first `size` bytes, free, ours.
            unsafe { zero(base, size) };
        }
        inner.spans[idx as usize] = SpanState {
            used: 1,
            ..SpanState::default()
        };
        for k in 1..n {
            self.kinds[(idx + k) as usize].store(KIND_TAIL << 32 | u64::from(k), Ordering::Release);
        }
        self.kinds[idx as usize].store(KIND_LARGE << 32 | u64::from(n), Ordering::Release);
        Some(base)
    }

    /// A run of `n` free spans, and whether it was never used (so zero).
    fn take_spans(&self, inner: &mut Inner, n: u32) -> Option<(u32, bool)> {
        let fit = inner
            .free_runs
            .iter()
            .find(|&(_, &len)| len >= n)
            .map(|(&s, &len)| (s, len));
        if let Some((start, len)) = fit {
            inner.free_runs.remove(&start);
            if len > n {
                inner.free_runs.insert(start + n, len - n);
            }
            return Some((start, false));
        }
        let start = inner.high_water;
        if start as usize + n as usize > self.nspans {
            return None;
        }
        let fresh = start >= inner.peak;
        inner.high_water += n;
        inner.peak = inner.peak.max(inner.high_water);
        inner
            .spans
            .resize(inner.high_water as usize, SpanState::default());
        Some((start, fresh))
    }

    /// Gives spans `[idx, idx + n)` back to the pool, and their pages to
    /// the kernel.
    fn release_spans(&self, inner: &mut Inner, idx: u32, n: u32) {
        for k in idx..idx + n {
            self.kinds[k as usize].store(0, Ordering::Release);
            inner.spans[k as usize] = SpanState::default();
        }
        // SAFETY: whole spans of our reservation that hold no object. If
        // the kernel (or an emulator) ignores the advice, the pages keep
        // their contents, which is why reused spans are zeroed.
        unsafe {
            libc::madvise(
                self.span_base(idx as usize) as *mut libc::c_void,
                n as usize * SPAN_BYTES,
                libc::MADV_DONTNEED,
            );
        }
        let (mut start, mut len) = (idx, n);
        if let Some((&s, &l)) = inner.free_runs.range(..start).next_back() {
            if s + l == start {
                inner.free_runs.remove(&s);
                start = s;
                len += l;
            }
        }
        if let Some(l) = inner.free_runs.remove(&(start + len)) {
            len += l;
        }
        if start + len == inner.high_water {
            inner.high_water = start;
            inner.spans.truncate(start as usize);
        } else {
            inner.free_runs.insert(start, len);
        }
    }

    /// The object slot containing `addr`, with its GC word, if `addr` lies
    /// in the slot of some object of the heap (allocated or not).
    fn slot_at(&self, addr: usize) -> Option<(usize, u64)> {
        let off = addr.checked_sub(self.base)?;
        let idx = off >> SPAN_SHIFT;
        let kind = self.kinds.get(idx)?.load(Ordering::Acquire);
        let span = self.span_base(idx);
        let obj = match kind >> 32 {
            KIND_SMALL => {
                let size = *size_classes().get(kind as u32 as usize)?;
                let i = (addr - span) / size;
                if (i + 1) * size > SPAN_BYTES {
                    return None;
                }
                span + i * size
            }
            KIND_LARGE => span,
            KIND_TAIL => {
                let head = idx.checked_sub(kind as u32 as usize)?;
                if self.kinds[head].load(Ordering::Acquire) >> 32 != KIND_LARGE {
                    return None;
                }
                self.span_base(head)
            }
            _ => return None,
        };
        // SAFETY: an object slot's first words, inside the reservation.
        let (gc, len) = unsafe {
            (
                word(obj + OBJ_GC as usize).load(Ordering::Acquire),
                word(obj + OBJ_LEN as usize).load(Ordering::Relaxed),
            )
        };
        if gc == GC_FREE {
            return None;
        }
        let end = obj.saturating_add(object_bytes(len as i64) as usize);
        (addr < end).then_some((obj, gc))
    }

    /// The object `addr` points into (its first byte or any other), if an
    /// object lives there. Lock-free; safe against concurrent allocation,
    /// not against a concurrent sweep (the collector never runs both).
    pub fn find_object(&self, addr: usize) -> Option<usize> {
        self.slot_at(addr)
            .and_then(|(obj, gc)| (gc != GC_FREED).then_some(obj))
    }

    /// The freed, poisoned object `addr` points into, if any.
    pub fn freed_object(&self, addr: usize) -> Option<usize> {
        self.slot_at(addr)
            .and_then(|(obj, gc)| (gc == GC_FREED).then_some(obj))
    }

    /// Marks `obj` (an object [`Heap::find_object`] returned) in cycle
    /// `epoch`; true if this call marked it (it was white).
    pub fn try_mark(&self, obj: usize, epoch: u64) -> bool {
        // SAFETY: `obj` is an object of this heap, so its GC word is mapped.
        let gc = unsafe { word(obj + OBJ_GC as usize) };
        let old = gc.load(Ordering::Acquire);
        old != epoch
            && old != GC_FREE
            && old != GC_FREED
            && gc
                .compare_exchange(old, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Whether `obj` is marked in cycle `epoch`.
    pub fn is_marked(&self, obj: usize, epoch: u64) -> bool {
        // SAFETY: as in `try_mark`.
        unsafe { word(obj + OBJ_GC as usize) }.load(Ordering::Acquire) == epoch
    }

    /// The number of slots of `obj`.
    pub fn slots(&self, obj: usize) -> usize {
        // SAFETY: as in `try_mark`.
        unsafe { word(obj + OBJ_LEN as usize) }.load(Ordering::Relaxed) as usize
    }

    /// Slot `i` of `obj` (below its length): tag and value.
    pub fn slot(&self, obj: usize, i: usize) -> (u64, u64) {
        let at = obj + OBJ_SLOTS as usize + i * SLOT_SIZE as usize;
        // SAFETY: a slot inside the object, inside the reservation.
        unsafe {
            (
                word(at + SLOT_TAG as usize).load(Ordering::Acquire),
                word(at + SLOT_VALUE as usize).load(Ordering::Relaxed),
            )
        }
    }

    /// Frees every object not marked in cycle `epoch` (see the module
    /// docs). Runs concurrently with allocation, never with marking.
    pub fn sweep(&self, epoch: u64, mode: SweepMode) -> Result<SweepStats, WrittenAfterFree> {
        let mut stats = SweepStats::default();
        let spans = self.lock().high_water;
        for idx in 0..spans {
            let mut inner = self.lock();
            if idx >= inner.high_water {
                break;
            }
            let kind = self.kinds[idx as usize].load(Ordering::Acquire);
            match kind >> 32 {
                KIND_SMALL => self.sweep_small(
                    &mut inner,
                    idx,
                    kind as u32 as usize,
                    epoch,
                    mode,
                    &mut stats,
                )?,
                KIND_LARGE => {
                    self.sweep_large(&mut inner, idx, kind as u32, epoch, mode, &mut stats)?
                }
                _ => {}
            }
        }
        let inner = self.lock();
        stats.live_bytes = inner.bytes;
        Ok(stats)
    }

    /// What the sweep does with the object at `obj`, given its GC word.
    fn verdict(gc: u64, epoch: u64, mode: SweepMode) -> Verdict {
        match gc {
            GC_FREE => Verdict::Free,
            GC_FREED => Verdict::Quarantined,
            g if g == epoch && !mode.free_marked => Verdict::Live,
            _ => Verdict::Garbage,
        }
    }

    fn sweep_small(
        &self,
        inner: &mut Inner,
        idx: u32,
        class: usize,
        epoch: u64,
        mode: SweepMode,
        stats: &mut SweepStats,
    ) -> Result<(), WrittenAfterFree> {
        let size = size_classes()[class];
        let base = self.span_base(idx as usize);
        let bump = inner.spans[idx as usize].bump as usize;
        for i in 0..bump {
            let obj = base + i * size;
            // SAFETY: an object slot of this span, handed out before.
            let gc = unsafe { word(obj + OBJ_GC as usize) }.load(Ordering::Acquire);
            match Self::verdict(gc, epoch, mode) {
                Verdict::Free | Verdict::Live => {}
                Verdict::Quarantined => {
                    check_poison(obj, self.slots(obj))?;
                    let st = &mut inner.spans[idx as usize];
                    st.quarantined -= 1;
                    push_free(st, obj);
                }
                Verdict::Garbage => {
                    let len = self.slots(obj);
                    self.account_free(inner, len, stats);
                    let st = &mut inner.spans[idx as usize];
                    st.used -= 1;
                    if mode.poison {
                        poison(obj, len);
                        st.quarantined += 1;
                    } else {
                        push_free(st, obj);
                    }
                }
            }
        }
        let st = inner.spans[idx as usize];
        if st.used == 0 && st.quarantined == 0 {
            if st.in_partial {
                inner.partial[class].retain(|&s| s != idx);
            }
            self.release_spans(inner, idx, 1);
        } else if st.free != 0 && !st.in_partial {
            inner.spans[idx as usize].in_partial = true;
            inner.partial[class].push(idx);
        }
        Ok(())
    }

    fn sweep_large(
        &self,
        inner: &mut Inner,
        idx: u32,
        n: u32,
        epoch: u64,
        mode: SweepMode,
        stats: &mut SweepStats,
    ) -> Result<(), WrittenAfterFree> {
        let obj = self.span_base(idx as usize);
        // SAFETY: the first span of a large object.
        let gc = unsafe { word(obj + OBJ_GC as usize) }.load(Ordering::Acquire);
        match Self::verdict(gc, epoch, mode) {
            Verdict::Free | Verdict::Live => {}
            Verdict::Quarantined => {
                check_poison(obj, self.slots(obj))?;
                self.release_spans(inner, idx, n);
            }
            Verdict::Garbage => {
                let len = self.slots(obj);
                self.account_free(inner, len, stats);
                if mode.poison {
                    poison(obj, len);
                } else {
                    self.release_spans(inner, idx, n);
                }
            }
        }
        Ok(())
    }

    fn account_free(&self, inner: &mut Inner, len: usize, stats: &mut SweepStats) {
        let bytes = object_bytes(len as i64);
        inner.bytes = inner.bytes.saturating_sub(bytes);
        inner.objects = inner.objects.saturating_sub(1);
        self.live.store(inner.bytes, Ordering::Release);
        stats.freed_objects += 1;
        stats.freed_bytes += bytes;
    }

    /// Objects allocated and not yet freed.
    pub fn objects(&self) -> u64 {
        self.lock().objects
    }
}

enum Verdict {
    Free,
    Quarantined,
    Live,
    Garbage,
}

/// Zeroes `len` bytes (a multiple of 8) at `addr`, a word at a time: a
/// conservative lookup may read the words meanwhile.
///
/// # Safety
///
/// `[addr, addr + len)` is heap memory no object occupies.
unsafe fn zero(addr: usize, len: usize) {
    for a in (addr..addr + len).step_by(8) {
        // SAFETY: per the contract.
        unsafe { word(a) }.store(0, Ordering::Relaxed);
    }
}

/// Puts the freed object `obj` on its span's free list.
fn push_free(st: &mut SpanState, obj: usize) {
    // SAFETY: `obj` is a freed slot of this span: its first two words are
    // the list link and the GC word.
    unsafe {
        word(obj + OBJ_LEN as usize).store(st.free as u64, Ordering::Relaxed);
        word(obj + OBJ_GC as usize).store(GC_FREE, Ordering::Release);
    }
    st.free = obj;
}

/// Poisons the freed object `obj` of `len` slots: every tag and value
/// becomes [`TAG_FREED`]; the length stays (so that bounds checks still
/// keep accesses inside it) and the GC word says [`GC_FREED`].
fn poison(obj: usize, len: usize) {
    for i in 0..len {
        let at = obj + OBJ_SLOTS as usize + i * SLOT_SIZE as usize;
        // SAFETY: slots of a freed object of the heap.
        unsafe {
            word(at + SLOT_TAG as usize).store(TAG_FREED, Ordering::Relaxed);
            word(at + SLOT_VALUE as usize).store(TAG_FREED, Ordering::Relaxed);
        }
    }
    // SAFETY: as above.
    unsafe { word(obj + OBJ_GC as usize).store(GC_FREED, Ordering::Release) };
}

/// Checks that a poisoned object is still all poison.
fn check_poison(obj: usize, len: usize) -> Result<(), WrittenAfterFree> {
    for i in 0..len {
        let at = obj + OBJ_SLOTS as usize + i * SLOT_SIZE as usize;
        // SAFETY: slots of a poisoned object of the heap.
        let (tag, value) = unsafe {
            (
                word(at + SLOT_TAG as usize).load(Ordering::Acquire),
                word(at + SLOT_VALUE as usize).load(Ordering::Acquire),
            )
        };
        if tag != TAG_FREED || value != TAG_FREED {
            return Err(WrittenAfterFree {
                object: obj,
                slot: i,
                tag,
                value,
            });
        }
    }
    Ok(())
}

impl Drop for Heap {
    fn drop(&mut self) {
        if self.map.1 != 0 {
            // SAFETY: the reservation made in `with_limit`, unmapped once;
            // nothing uses the heap once it is dropped.
            unsafe { libc::munmap(self.map.0 as *mut libc::c_void, self.map.1) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preempt_jit::abi::{TAG_INT, TAG_REF};

    fn set_slot(obj: usize, i: usize, tag: u64, value: u64) {
        let at = obj + OBJ_SLOTS as usize + i * SLOT_SIZE as usize;
        // SAFETY: a slot of a live test object.
        unsafe {
            word(at + SLOT_VALUE as usize).store(value, Ordering::Relaxed);
            word(at + SLOT_TAG as usize).store(tag, Ordering::Relaxed);
        }
    }

    #[test]
    fn size_classes_cover_every_small_size() {
        let c = size_classes();
        assert_eq!(c[0], 16);
        assert_eq!(*c.last().unwrap(), MAX_SMALL);
        assert!(c.windows(2).all(|w| w[0] < w[1] && w[1] % 16 == 0));
        for bytes in (16..=MAX_SMALL).step_by(16) {
            let size = c[class_of(bytes)];
            assert!(
                size >= bytes && size - bytes <= bytes / 8 + 16,
                "{bytes} in {size}"
            );
        }
    }

    #[test]
    fn objects_are_fresh_and_interior_pointers_find_them() {
        let h = Heap::with_limit(1 << 30);
        for slots in [0i64, 1, 3, 100, 2000, 70_000] {
            let o = h.alloc(slots).unwrap();
            assert_eq!(o % 16, 0);
            assert_eq!(h.slots(o), slots as usize);
            for i in 0..slots as usize {
                assert_eq!(h.slot(o, i), (0, 0));
            }
            let end = o + object_bytes(slots) as usize;
            for a in [o, o + 8, o + 17, end - 1].into_iter().filter(|&a| a < end) {
                assert_eq!(h.find_object(a), Some(o), "{slots} slots, +{}", a - o);
            }
            assert_ne!(h.find_object(end), Some(o));
        }
        assert_eq!(h.find_object(0), None);
        assert_eq!(h.find_object(usize::MAX), None);
        assert_eq!(h.find_object(h.base.wrapping_sub(8)), None);
    }

    #[test]
    fn the_limit_counts_live_bytes_and_negative_sizes_fail() {
        let h = Heap::with_limit(1000);
        assert_eq!(h.alloc(-1), Err(AllocError::Negative));
        assert_eq!(h.alloc(100), Err(AllocError::OutOfMemory));
        let a = h.alloc(30).unwrap(); // 496 bytes
        h.alloc(30).unwrap();
        assert_eq!(h.bytes_allocated(), 992);
        assert_eq!(h.alloc(0), Err(AllocError::Full));
        // Only `a` survives a cycle in which only it was marked.
        let e = h.begin_cycle();
        assert!(h.try_mark(a, e));
        assert!(!h.try_mark(a, e), "already marked");
        let s = h.sweep(e, SweepMode::default()).unwrap();
        assert_eq!(
            (s.freed_objects, s.freed_bytes, s.live_bytes),
            (1, 496, 496)
        );
        assert_eq!(h.bytes_allocated(), 496);
        h.alloc(30).unwrap();
    }

    #[test]
    fn sweeping_frees_the_unmarked_and_reuses_their_memory() {
        let h = Heap::with_limit(1 << 30);
        let objs: Vec<usize> = (0..10_000).map(|_| h.alloc(2).unwrap()).collect();
        let e = h.begin_cycle();
        for (i, &o) in objs.iter().enumerate() {
            set_slot(o, 0, TAG_INT, i as u64);
            if i % 2 == 0 {
                h.try_mark(o, e);
            }
        }
        // An object allocated during the cycle is black.
        let young = h.alloc(2).unwrap();
        let s = h.sweep(e, SweepMode::default()).unwrap();
        assert_eq!(s.freed_objects, 5_000);
        assert_eq!(h.objects(), 5_001);
        assert_eq!(h.find_object(young), Some(young));
        for (i, &o) in objs.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(h.find_object(o), Some(o));
                assert_eq!(
                    h.slot(o, 0),
                    (TAG_INT, i as u64),
                    "survivors keep their data"
                );
            } else {
                assert_eq!(h.find_object(o + 20), None, "freed");
            }
        }
        // Freed slots come back, zeroed.
        let again: Vec<usize> = (0..5_000).map(|_| h.alloc(2).unwrap()).collect();
        let freed: std::collections::HashSet<usize> =
            objs.iter().skip(1).step_by(2).copied().collect();
        assert!(again.iter().filter(|o| freed.contains(o)).count() >= 4_000);
        for &o in &again {
            assert_eq!((h.slot(o, 0), h.slot(o, 1)), ((0, 0), (0, 0)));
        }
    }

    #[test]
    fn empty_spans_and_large_objects_go_back_to_the_pool() {
        let h = Heap::with_limit(1 << 30);
        for _ in 0..3 {
            let big: Vec<usize> = (0..20).map(|_| h.alloc(1 << 16).unwrap()).collect();
            let small: Vec<usize> = (0..20_000).map(|_| h.alloc(1).unwrap()).collect();
            assert!(h.find_object(big[3] + 500_000).is_some());
            assert!(h.find_object(small[7]).is_some());
            let e = h.begin_cycle();
            h.sweep(e, SweepMode::default()).unwrap();
            assert_eq!(h.bytes_allocated(), 0);
            assert_eq!(h.find_object(big[3] + 500_000), None);
        }
        // Everything was given back, so the high-water mark fell to 0.
        assert_eq!(h.lock().high_water, 0);
    }

    #[test]
    fn poisoned_objects_are_quarantined_for_a_cycle_and_checked() {
        let h = Heap::with_limit(1 << 30);
        let poison_mode = SweepMode {
            poison: true,
            ..SweepMode::default()
        };
        let a = h.alloc(3).unwrap();
        let b = h.alloc(3).unwrap();
        set_slot(a, 1, TAG_REF, b as u64);
        let e = h.begin_cycle();
        h.sweep(e, poison_mode).unwrap();
        assert_eq!(h.find_object(a), None);
        assert_eq!(h.freed_object(a + 40), Some(a));
        assert_eq!(h.slot(a, 1), (TAG_FREED, TAG_FREED));
        assert_eq!(
            h.slots(a),
            3,
            "the length stays, so bounds checks still hold"
        );
        // Not reused while in quarantine.
        let c = h.alloc(3).unwrap();
        assert!(c != a && c != b);
        // A write into b is seen by the next sweep.
        set_slot(b, 2, TAG_INT, 7);
        let e = h.begin_cycle();
        h.try_mark(c, e);
        let err = h.sweep(e, poison_mode).unwrap_err();
        assert_eq!(
            err,
            WrittenAfterFree {
                object: b,
                slot: 2,
                tag: TAG_INT,
                value: 7
            }
        );
    }

    #[test]
    fn free_marked_injection_frees_everything() {
        let h = Heap::with_limit(1 << 30);
        let a = h.alloc(1).unwrap();
        let e = h.begin_cycle();
        h.try_mark(a, e);
        let mode = SweepMode {
            poison: true,
            free_marked: true,
        };
        assert_eq!(h.sweep(e, mode).unwrap().freed_objects, 1);
        assert_eq!(h.freed_object(a), Some(a));
    }

    #[test]
    fn coalesced_runs_serve_large_objects_again() {
        let h = Heap::with_limit(1 << 30);
        let keep = h.alloc(1).unwrap();
        let runs: Vec<usize> = (0..8).map(|_| h.alloc(3 * 4096).unwrap()).collect();
        let top = h.alloc(1 << 15).unwrap();
        let e = h.begin_cycle();
        h.try_mark(keep, e);
        h.try_mark(top, e);
        h.sweep(e, SweepMode::default()).unwrap();
        // Eight runs of four spans each (3 * 4096 slots and a header are
        // just over 192 KiB) coalesced: a 16-span object fits where they
        // were.
        let big = h.alloc(15 * 4096).unwrap();
        assert_eq!(big, runs[0]);
    }
}
