//! The JIT engine's heap: PIR objects in the layout generated code expects
//! (see [`preempt_jit::abi`]), allocated by size class, never moved, freed
//! by the collector's sweep.
//!
//! # Layout
//!
//! The heap is a few **arenas**, each a reservation of address space
//! (`MAP_NORESERVE`: pages cost memory only once touched), made as the
//! heap grows: 4 MiB first, each one twice the last, up to 1 GiB. Arenas
//! are cut into 64 KiB **spans**. A span holds objects of one **size
//! class** (multiples of 16 bytes up to 16 KiB, in steps of about an
//! eighth, as Go's classes), or is part of one **large object** that has a
//! run of spans to itself. One atomic word per span says which (its
//! *kind*), so that the object containing any address is found without a
//! lock: the arena from the address (a handful of bounds compared), the
//! span within it, the object from the span's class (or the run's first
//! span), and the object's GC word says whether an object lives there.
//! That lookup is what conservative stack scanning needs: an interior
//! pointer (generated code keeps `object + 16 * index` in registers)
//! keeps its whole object alive.
//!
//! Why arenas rather than one reservation as large as the limit: address
//! space is free on hardware, but not under emulation. qemu-user keeps
//! bookkeeping for every page a guest maps and, in the version the
//! aarch64 lane uses, does not give it back when the mapping goes: a
//! run-in-process test suite that made a 6 GiB heap per program ran the
//! emulator out of memory.
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
//! fails at the same point on every engine; when it would be passed (or
//! the arenas may grow no more), [`Heap::alloc`] answers
//! [`AllocError::Full`] and the caller collects and asks once more before
//! giving up.
//!
//! The sweep runs after marking, concurrently with allocation, a span at a
//! time under the same mutex: an object whose GC word is not the epoch is
//! freed (its slot goes on the span's free list; a large object's spans go
//! back to their arena's pool of free spans, coalesced, and their pages to
//! the kernel). A span left with no object goes back to the pool too.
//! Allocation during the sweep takes slots the sweep freed or never-used
//! ones; either way the new object carries the epoch and the sweep leaves
//! it alone.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
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

/// The first arena's size; each next one is twice the last, up to
/// [`MAX_ARENA`] (or as large as one object needs).
const FIRST_ARENA: usize = 4 << 20;
const MAX_ARENA: usize = 1 << 30;
/// Arenas a heap may have.
const MAX_ARENAS: usize = 64;
/// A span's number within its arena takes the low bits of a [`SpanId`].
const LOCAL_BITS: u32 = 20;

/// A span: its arena's number and its number within the arena.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct SpanId(u32);

impl SpanId {
    fn new(arena: usize, local: u32) -> SpanId {
        SpanId((arena as u32) << LOCAL_BITS | local)
    }
    fn arena(self) -> usize {
        (self.0 >> LOCAL_BITS) as usize
    }
    fn local(self) -> u32 {
        self.0 & ((1 << LOCAL_BITS) - 1)
    }
    fn plus(self, k: u32) -> SpanId {
        SpanId(self.0 + k)
    }
}

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

/// One reservation of address space, cut into spans. Published once,
/// never changed but for the span kinds, freed with the heap.
#[derive(Debug)]
struct Arena {
    /// The mapping, for `munmap`.
    map: (usize, usize),
    /// Span-aligned start, and the number of spans.
    base: usize,
    nspans: usize,
    kinds: Box<[AtomicU64]>,
}

impl Arena {
    /// Reserves an arena of `nspans` spans.
    fn map(nspans: usize) -> Option<Arena> {
        let len = nspans.checked_mul(SPAN_BYTES)?.checked_add(SPAN_BYTES)?;
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
        if p == libc::MAP_FAILED {
            return None;
        }
        let kinds: Box<[AtomicU64]> = (0..nspans).map(|_| AtomicU64::new(0)).collect();
        Some(Arena {
            map: (p as usize, len),
            base: (p as usize).next_multiple_of(SPAN_BYTES),
            nspans,
            kinds,
        })
    }

    fn contains(&self, addr: usize) -> bool {
        addr >= self.base && addr - self.base < self.nspans * SPAN_BYTES
    }

    fn span_base(&self, local: u32) -> usize {
        self.base + ((local as usize) << SPAN_SHIFT)
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: the arena's own mapping, unmapped once; nothing uses the
        // heap once it is dropped.
        unsafe { libc::munmap(self.map.0 as *mut libc::c_void, self.map.1) };
    }
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

/// Allocation state of one arena.
#[derive(Debug, Default)]
struct ArenaState {
    nspans: u32,
    /// Per span below `high_water`.
    spans: Vec<SpanState>,
    /// Runs of free spans below `high_water`: first span -> length.
    free_runs: BTreeMap<u32, u32>,
    /// Spans from here up are not in use (nor in `free_runs`).
    high_water: u32,
    /// Spans from here up have never been used, so are still zero.
    peak: u32,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per size class, spans that may have room.
    partial: Vec<Vec<SpanId>>,
    arenas: Vec<ArenaState>,
    /// Bytes of address space reserved so far.
    reserved: usize,
    bytes: u64,
    objects: u64,
}

impl Inner {
    fn span(&mut self, id: SpanId) -> &mut SpanState {
        &mut self.arenas[id.arena()].spans[id.local() as usize]
    }
}

/// The heap of one program.
#[derive(Debug)]
pub struct Heap {
    /// Arenas by number, published once each (then `narenas` grows).
    arenas: Box<[AtomicPtr<Arena>]>,
    narenas: AtomicUsize,
    /// The lowest and highest address of any arena: most integers a
    /// conservative scan looks up fail this test alone.
    lo: AtomicUsize,
    hi: AtomicUsize,
    inner: Mutex<Inner>,
    limit: u64,
    /// Address space the arenas may take in all.
    max_reserved: usize,
    /// `inner.bytes`, readable without the lock (allocation triggers).
    live: AtomicU64,
    /// The current cycle's number (1 before the first).
    epoch: AtomicU64,
}

/// The word at `addr`.
///
/// # Safety
///
/// `addr` is 8-aligned and lies in an arena of a heap, which stays
/// mapped read-write for as long as the returned reference is used.
unsafe fn word<'a>(addr: usize) -> &'a AtomicU64 {
    // SAFETY: per the contract, a valid, aligned, mapped word; AtomicU64
    // has the layout of u64 and generated code only ever stores whole
    // aligned words.
    unsafe { &*(addr as *const AtomicU64) }
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

    /// A heap that refuses to hold more than `limit` bytes of objects. Its
    /// arenas may take twice that in address space (spans are never full),
    /// and at least 64 MiB.
    pub fn with_limit(limit: u64) -> Heap {
        Heap {
            arenas: (0..MAX_ARENAS)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            narenas: AtomicUsize::new(0),
            lo: AtomicUsize::new(usize::MAX),
            hi: AtomicUsize::new(0),
            inner: Mutex::new(Inner {
                partial: vec![Vec::new(); size_classes().len()],
                ..Inner::default()
            }),
            limit,
            max_reserved: usize::try_from(limit.saturating_mul(2))
                .unwrap_or(usize::MAX)
                .max(64 << 20),
            live: AtomicU64::new(0),
            epoch: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arena `k` (below `narenas`).
    fn arena(&self, k: usize) -> &Arena {
        let p = self.arenas[k].load(Ordering::Acquire);
        // SAFETY: arenas below `narenas` were published (Release) before
        // `narenas` counted them, are never changed but for their atomic
        // kinds, and are freed only when the heap is dropped.
        unsafe { &*p }
    }

    fn kind(&self, id: SpanId) -> &AtomicU64 {
        &self.arena(id.arena()).kinds[id.local() as usize]
    }

    fn span_base(&self, id: SpanId) -> usize {
        self.arena(id.arena()).span_base(id.local())
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
        // an arena, owned by the heap.
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
        while let Some(&id) = inner.partial[class].last() {
            let base = self.span_base(id);
            let st = inner.span(id);
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
        let (id, fresh) = self.take_spans(inner, 1)?;
        let base = self.span_base(id);
        if !fresh {
            // SAFETY: a whole span of an arena, free, ours.
            unsafe { zero(base, SPAN_BYTES) };
        }
        *inner.span(id) = SpanState {
            free: 0,
            bump: 1,
            used: 1,
            quarantined: 0,
            in_partial: true,
        };
        inner.partial[class].push(id);
        self.kind(id)
            .store(KIND_SMALL << 32 | class as u64, Ordering::Release);
        Some(base)
    }

    fn alloc_large(&self, inner: &mut Inner, size: usize) -> Option<usize> {
        let n = size.div_ceil(SPAN_BYTES) as u32;
        let (id, fresh) = self.take_spans(inner, n)?;
        let base = self.span_base(id);
        if !fresh {
            // SAFETY: the run's first `size` bytes, free, ours.
            unsafe { zero(base, size) };
        }
        *inner.span(id) = SpanState {
            used: 1,
            ..SpanState::default()
        };
        for k in 1..n {
            self.kind(id.plus(k))
                .store(KIND_TAIL << 32 | u64::from(k), Ordering::Release);
        }
        self.kind(id)
            .store(KIND_LARGE << 32 | u64::from(n), Ordering::Release);
        Some(base)
    }

    /// A run of `n` free spans in one arena, and whether it was never used
    /// (so zero); a new arena if none has room.
    fn take_spans(&self, inner: &mut Inner, n: u32) -> Option<(SpanId, bool)> {
        for (k, a) in inner.arenas.iter_mut().enumerate() {
            let fit = a
                .free_runs
                .iter()
                .find(|&(_, &len)| len >= n)
                .map(|(&s, &len)| (s, len));
            if let Some((start, len)) = fit {
                a.free_runs.remove(&start);
                if len > n {
                    a.free_runs.insert(start + n, len - n);
                }
                return Some((SpanId::new(k, start), false));
            }
            if a.high_water + n <= a.nspans {
                let start = a.high_water;
                let fresh = start >= a.peak;
                a.high_water += n;
                a.peak = a.peak.max(a.high_water);
                a.spans.resize(a.high_water as usize, SpanState::default());
                return Some((SpanId::new(k, start), fresh));
            }
        }
        let k = self.grow(inner, n as usize)?;
        let a = &mut inner.arenas[k];
        a.high_water = n;
        a.peak = n;
        a.spans.resize(n as usize, SpanState::default());
        Some((SpanId::new(k, 0), true))
    }

    /// Reserves a new arena of at least `n` spans; its number.
    fn grow(&self, inner: &mut Inner, n: usize) -> Option<usize> {
        let k = inner.arenas.len();
        if k >= MAX_ARENAS {
            return None;
        }
        let size = (FIRST_ARENA << k.min(20)).min(MAX_ARENA);
        let nspans = (size / SPAN_BYTES).max(n).min(1 << LOCAL_BITS);
        if nspans < n || inner.reserved + nspans * SPAN_BYTES > self.max_reserved {
            return None;
        }
        let arena = Arena::map(nspans)?;
        let (lo, hi) = (arena.base, arena.base + nspans * SPAN_BYTES);
        self.lo.fetch_min(lo, Ordering::AcqRel);
        self.hi.fetch_max(hi, Ordering::AcqRel);
        self.arenas[k].store(Box::into_raw(Box::new(arena)), Ordering::Release);
        self.narenas.store(k + 1, Ordering::Release);
        inner.reserved += nspans * SPAN_BYTES;
        inner.arenas.push(ArenaState {
            nspans: nspans as u32,
            ..ArenaState::default()
        });
        Some(k)
    }

    /// Gives spans `[id, id + n)` back to their arena's pool, and their
    /// pages to the kernel.
    fn release_spans(&self, inner: &mut Inner, id: SpanId, n: u32) {
        let arena = self.arena(id.arena());
        for k in 0..n {
            arena.kinds[(id.local() + k) as usize].store(0, Ordering::Release);
        }
        // SAFETY: whole spans of an arena that hold no object. If the
        // kernel (or an emulator) ignores the advice, the pages keep their
        // contents, which is why reused spans are zeroed.
        unsafe {
            libc::madvise(
                arena.span_base(id.local()) as *mut libc::c_void,
                n as usize * SPAN_BYTES,
                libc::MADV_DONTNEED,
            );
        }
        let a = &mut inner.arenas[id.arena()];
        for k in 0..n {
            a.spans[(id.local() + k) as usize] = SpanState::default();
        }
        let (mut start, mut len) = (id.local(), n);
        if let Some((&s, &l)) = a.free_runs.range(..start).next_back() {
            if s + l == start {
                a.free_runs.remove(&s);
                start = s;
                len += l;
            }
        }
        if let Some(l) = a.free_runs.remove(&(start + len)) {
            len += l;
        }
        if start + len == a.high_water {
            a.high_water = start;
            a.spans.truncate(start as usize);
        } else {
            a.free_runs.insert(start, len);
        }
    }

    /// The object slot containing `addr`, with its GC word, if `addr` lies
    /// in the slot of some object of the heap (allocated or not).
    fn slot_at(&self, addr: usize) -> Option<(usize, u64)> {
        if addr < self.lo.load(Ordering::Acquire) || addr >= self.hi.load(Ordering::Acquire) {
            return None;
        }
        let k =
            (0..self.narenas.load(Ordering::Acquire)).find(|&k| self.arena(k).contains(addr))?;
        let arena = self.arena(k);
        let local = (addr - arena.base) >> SPAN_SHIFT;
        let kind = arena.kinds[local].load(Ordering::Acquire);
        let span = arena.span_base(local as u32);
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
                let head = local.checked_sub(kind as u32 as usize)?;
                if arena.kinds[head].load(Ordering::Acquire) >> 32 != KIND_LARGE {
                    return None;
                }
                arena.span_base(head as u32)
            }
            _ => return None,
        };
        // SAFETY: an object slot's first words, inside an arena.
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
        // SAFETY: a slot inside the object, inside an arena.
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
        let arenas = self.lock().arenas.len();
        for k in 0..arenas {
            let spans = self.lock().arenas[k].high_water;
            for local in 0..spans {
                let mut inner = self.lock();
                if local >= inner.arenas[k].high_water {
                    break;
                }
                let id = SpanId::new(k, local);
                let kind = self.kind(id).load(Ordering::Acquire);
                match kind >> 32 {
                    KIND_SMALL => self.sweep_small(
                        &mut inner,
                        id,
                        kind as u32 as usize,
                        epoch,
                        mode,
                        &mut stats,
                    )?,
                    KIND_LARGE => {
                        self.sweep_large(&mut inner, id, kind as u32, epoch, mode, &mut stats)?
                    }
                    _ => {}
                }
            }
        }
        stats.live_bytes = self.lock().bytes;
        Ok(stats)
    }

    /// What the sweep does with an object, given its GC word.
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
        id: SpanId,
        class: usize,
        epoch: u64,
        mode: SweepMode,
        stats: &mut SweepStats,
    ) -> Result<(), WrittenAfterFree> {
        let size = size_classes()[class];
        let base = self.span_base(id);
        let bump = inner.span(id).bump as usize;
        for i in 0..bump {
            let obj = base + i * size;
            // SAFETY: an object slot of this span, handed out before.
            let gc = unsafe { word(obj + OBJ_GC as usize) }.load(Ordering::Acquire);
            match Self::verdict(gc, epoch, mode) {
                Verdict::Free | Verdict::Live => {}
                Verdict::Quarantined => {
                    check_poison(obj, self.slots(obj))?;
                    let st = inner.span(id);
                    st.quarantined -= 1;
                    push_free(st, obj);
                }
                Verdict::Garbage => {
                    let len = self.slots(obj);
                    self.account_free(inner, len, stats);
                    let st = inner.span(id);
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
        let st = *inner.span(id);
        if st.used == 0 && st.quarantined == 0 {
            if st.in_partial {
                inner.partial[class].retain(|&s| s != id);
            }
            self.release_spans(inner, id, 1);
        } else if st.free != 0 && !st.in_partial {
            inner.span(id).in_partial = true;
            inner.partial[class].push(id);
        }
        Ok(())
    }

    fn sweep_large(
        &self,
        inner: &mut Inner,
        id: SpanId,
        n: u32,
        epoch: u64,
        mode: SweepMode,
        stats: &mut SweepStats,
    ) -> Result<(), WrittenAfterFree> {
        let obj = self.span_base(id);
        // SAFETY: the first span of a large object.
        let gc = unsafe { word(obj + OBJ_GC as usize) }.load(Ordering::Acquire);
        match Self::verdict(gc, epoch, mode) {
            Verdict::Free | Verdict::Live => {}
            Verdict::Quarantined => {
                check_poison(obj, self.slots(obj))?;
                self.release_spans(inner, id, n);
            }
            Verdict::Garbage => {
                let len = self.slots(obj);
                self.account_free(inner, len, stats);
                if mode.poison {
                    poison(obj, len);
                } else {
                    self.release_spans(inner, id, n);
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

    /// Address space the arenas take.
    pub fn reserved(&self) -> usize {
        self.lock().reserved
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
        for k in 0..*self.narenas.get_mut() {
            let p = *self.arenas[k].get_mut();
            // SAFETY: made by `Box::into_raw` in `grow`, dropped once, here;
            // nothing uses the heap once it is dropped.
            drop(unsafe { Box::from_raw(p) });
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
        let first = h.arena(0).base;
        assert_eq!(h.find_object(first - 8), None);
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
        // Everything was given back, so every high-water mark fell to 0;
        // and the arenas made for the first round served the others.
        let inner = h.lock();
        assert!(inner.arenas.iter().all(|a| a.high_water == 0));
        assert!(inner.reserved <= 64 << 20, "{}", inner.reserved);
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
    fn arenas_grow_as_needed_up_to_the_limit() {
        let h = Heap::with_limit(256 << 20);
        assert_eq!(h.reserved(), 0, "nothing reserved before the first object");
        h.alloc(1).unwrap();
        assert_eq!(h.reserved(), FIRST_ARENA);
        // An object larger than the next arena gets an arena its size.
        let big = h.alloc(3 << 20).unwrap(); // 48 MiB
        assert!(h.find_object(big + (40 << 20)).is_some());
        // Live bytes, not address space, are what the limit counts.
        let mut n = 0;
        while h.alloc(1 << 16).is_ok() {
            n += 1;
        }
        assert!(n >= 200 - 48, "{n} MiB objects");
        assert!(h.reserved() <= 512 << 20);
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
