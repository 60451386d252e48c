//! Marking: the grey queue, the marker's loop, and the write barrier's
//! slow path.
//!
//! An object is *grey* once its GC word holds the cycle's epoch and its
//! address is in a queue, *black* once the marker has scanned its slots.
//! There are two queues. The marker thread keeps its own stack of grey
//! objects and takes no lock while it scans. The **shared queue**, a
//! vector under a mutex, is where everyone else puts the objects they
//! grey: the root scan at mark start, and the write barrier's slow path,
//! which runs on the goroutine's own thread and stack (a plain call from
//! generated code, not a runtime call). The marker swaps the whole shared
//! vector out when its own stack runs dry, so the lock is taken once per
//! batch, not per object; a barrier takes it only when it greys an object
//! (the compare-and-swap on the GC word decides who greys), not when the
//! object is already marked, which is the common case once marking is
//! under way.
//!
//! The barrier never allocates. It runs on whatever is left of a
//! goroutine's small stack below the guard (`stack::STACK_RESERVE`), and
//! small stacks share a mapping with no guard page between them, so a
//! call into the allocator there (whose stack use nothing bounds) could
//! write into a neighbour's stack unnoticed. The bound that makes this
//! possible: an object is greyed at most once a cycle (the GC word's
//! compare-and-swap), objects allocated during the cycle are born black,
//! so no more objects are ever queued at once than the heap held at mark
//! start. [`MarkState::reserve_for_cycle`] gives the shared vector that
//! much room while the world is stopped, and the marker's own vector,
//! which it swaps in, gets as much, so a push into either never grows it.
//!
//! Termination: marking is done when both queues are empty and no barrier
//! is halfway through greying an object. The last condition is what the
//! mark-termination stop-the-world gives: a goroutine stops only at a safe
//! point, never inside a barrier (it is an unsafe region, and a call into
//! Rust is not JIT code either), so with the world stopped every grey
//! object is in a queue, and draining the shared queue once more, until
//! it stays empty, finishes the job.
//!
//! Interleaving (`--gc-interleave`): the races the barrier guards against
//! need a pointer store of the program to land between two of the
//! marker's scans. With a dedicated marker thread that happens only when
//! the OS runs both threads at once, and on a loaded machine a whole
//! concurrent phase (a millisecond or two) can pass while the program's
//! thread waits for a CPU. Interleaving takes that out of the OS's hands:
//! [`INTERLEAVE_STEPS`] times a phase (after its first object, then after
//! every so many, by the heap's object count) the concurrent marker waits
//! until the program has made one more store through the barrier's slow
//! path. Not after every object: where the two threads share a CPU each
//! wait costs a scheduler time slice, and a phase of 80,000 objects then
//! took minutes. A program that makes no such store would stall marking,
//! so a wait that lasts [`INTERLEAVE_WAIT`] ends interleaving for the
//! rest of the phase. It is for demonstrating and testing barriers (the
//! collector is slower with it, never less correct); the stop-the-world
//! drain at mark termination never waits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use preempt_jit::abi::{GcBarrier, TAG_REF};

use super::heap::Heap;

/// What the write barrier's slow path reaches from generated code: the
/// barrier block comes first, so the block's address is this value's.
#[repr(C)]
#[derive(Debug)]
pub struct MarkState {
    pub barrier: GcBarrier,
    pub heap: Heap,
    grey: Mutex<Vec<usize>>,
    /// Fault injection: the barrier shades nothing.
    skip_barrier: AtomicBool,
    /// Objects the barrier greyed, for the stats.
    barrier_greyed: AtomicU64,
    /// `--gc-interleave`: the concurrent marker waits for a store after
    /// each object.
    interleave: AtomicBool,
    /// Calls of the barrier's slow path, counted while interleaving.
    barrier_calls: AtomicU64,
    /// Objects in the heap at this cycle's mark start: the most that can
    /// be grey at once, and the room both grey vectors keep.
    cycle_objects: AtomicU64,
    /// Barrier pushes that found the shared vector full and had to grow
    /// it on the goroutine's stack: never, by the bound in the module's
    /// header (the tests hold it to that).
    barrier_grew: AtomicU64,
}

/// How long an interleaving marker waits for the program's next store
/// before it marks on alone for the rest of the phase: far longer than
/// a loaded machine keeps a runnable thread off the CPU, short enough
/// that a program without stores only slows its collections down.
pub const INTERLEAVE_WAIT: Duration = Duration::from_millis(100);

/// How many times an interleaving marker waits for a store per phase.
pub const INTERLEAVE_STEPS: u64 = 64;

/// The barrier's `shade`: called by generated code, on the goroutine's
/// stack, with the ref a store is about to overwrite.
extern "C" fn shade_from_barrier(barrier: *const GcBarrier, old: u64) {
    // SAFETY: generated code passes the block its context points at,
    // which is the first field of a `MarkState` (repr(C)) that the
    // collector keeps at a stable address for the whole run.
    let m = unsafe { &*barrier.cast::<MarkState>() };
    if m.interleave.load(Ordering::Relaxed) {
        m.barrier_calls.fetch_add(1, Ordering::Release);
    }
    if m.skip_barrier.load(Ordering::Relaxed) {
        return;
    }
    if m.shade_with(old, |q| {
        if q.len() == q.capacity() {
            // Not reached while `reserve_for_cycle` holds its bound; if it
            // ever is, the object must still be queued, and the count says
            // the bound failed.
            m.barrier_grew.fetch_add(1, Ordering::Relaxed);
        }
    }) {
        m.barrier_greyed.fetch_add(1, Ordering::Relaxed);
    }
}

impl MarkState {
    pub fn new(heap: Heap) -> MarkState {
        MarkState {
            barrier: GcBarrier {
                marking: AtomicU64::new(0),
                shade: shade_from_barrier,
            },
            heap,
            grey: Mutex::new(Vec::new()),
            skip_barrier: AtomicBool::new(false),
            barrier_greyed: AtomicU64::new(0),
            interleave: AtomicBool::new(false),
            barrier_calls: AtomicU64::new(0),
            cycle_objects: AtomicU64::new(0),
            barrier_grew: AtomicU64::new(0),
        }
    }

    /// Gives the shared grey vector room for every object the heap holds,
    /// so that the barrier's pushes this cycle never allocate (see the
    /// module's header). At mark start, while the world is stopped, after
    /// [`Heap::begin_cycle`]: from then on new objects are black.
    pub fn reserve_for_cycle(&self) {
        let n = self.heap.objects();
        self.cycle_objects.store(n, Ordering::Relaxed);
        let mut q = self.queue();
        let room = (n as usize).saturating_sub(q.len());
        q.reserve(room);
    }

    /// Pushes that had to grow the shared vector on a goroutine's stack.
    pub fn barrier_grew(&self) -> u64 {
        self.barrier_grew.load(Ordering::Relaxed)
    }

    fn queue(&self) -> MutexGuard<'_, Vec<usize>> {
        self.grey.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address generated code finds in `ctx.gc`.
    pub fn barrier_address(&self) -> u64 {
        &self.barrier as *const GcBarrier as u64
    }

    /// Turns the barrier on or off. Only while the world is stopped: a
    /// goroutine that tested the flag has finished its store by then.
    pub fn set_marking(&self, on: bool) {
        self.barrier.marking.store(u64::from(on), Ordering::SeqCst);
    }

    pub fn is_marking(&self) -> bool {
        self.barrier.marking.load(Ordering::SeqCst) != 0
    }

    /// Fault injection: the barrier's slow path shades nothing.
    pub fn set_skip_barrier(&self, skip: bool) {
        self.skip_barrier.store(skip, Ordering::Relaxed);
    }

    /// `--gc-interleave` (see the module's header).
    pub fn set_interleave(&self, on: bool) {
        self.interleave.store(on, Ordering::Relaxed);
    }

    /// Objects the barrier greyed so far.
    pub fn barrier_greyed(&self) -> u64 {
        self.barrier_greyed.load(Ordering::Relaxed)
    }

    /// Greys the object `v` points into, if it is a white object of the
    /// heap; true if this call greyed it. Anything else (an integer, a
    /// stale pointer to a free slot) is ignored, so a conservative root
    /// may pass any word.
    pub fn shade(&self, v: u64) -> bool {
        self.shade_with(v, |_| {})
    }

    /// [`shade`](Self::shade), showing the shared vector to `before_push`
    /// before it pushes.
    fn shade_with(&self, v: u64, before_push: impl FnOnce(&Vec<usize>)) -> bool {
        let Some(obj) = self.heap.find_object(v as usize) else {
            return false;
        };
        if !self.heap.try_mark(obj, self.heap.epoch()) {
            return false;
        }
        let mut q = self.queue();
        before_push(&q);
        q.push(obj);
        true
    }

    /// Marks until no grey object is left, or `stop` says so (checked
    /// every few hundred objects); false if it stopped early. Concurrent
    /// with mutators: barriers may add to the shared queue meanwhile.
    pub fn drain(&self, stop: impl Fn() -> bool) -> bool {
        self.drain_paced(&stop, |_| {})
    }

    /// The concurrent phase's [`drain`](Self::drain): with interleaving
    /// on, it waits for a store of the program [`INTERLEAVE_STEPS`] times
    /// (see the module's header). Returns what `drain` does, and the
    /// waits that ran out of time (0 or 1).
    pub fn drain_concurrent(&self, stop: impl Fn() -> bool) -> (bool, u64) {
        if !self.interleave.load(Ordering::Relaxed) {
            return (self.drain(stop), 0);
        }
        let stride = (self.heap.objects() / INTERLEAVE_STEPS).max(1);
        let mut pacing = true;
        let mut timeouts = 0;
        let mut seen = self.barrier_calls.load(Ordering::Acquire);
        let done = self.drain_paced(&stop, |scanned| {
            let step = scanned == 1 || scanned.is_multiple_of(stride);
            if pacing && step && !self.await_store(&mut seen, &stop) {
                pacing = false;
                timeouts += 1;
            }
        });
        (done, timeouts)
    }

    /// Waits until the barrier's slow path has been called since `seen`
    /// (and moves `seen` on), or `stop` says so; false after
    /// [`INTERLEAVE_WAIT`] without one.
    fn await_store(&self, seen: &mut u64, stop: &impl Fn() -> bool) -> bool {
        let mut deadline = None;
        let mut spins = 0u32;
        loop {
            let now = self.barrier_calls.load(Ordering::Acquire);
            if now != *seen {
                *seen = now;
                return true;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
                continue;
            }
            // The program's thread may need this CPU to make the store.
            std::thread::yield_now();
            if stop() {
                return true;
            }
            let t = std::time::Instant::now();
            match deadline {
                None => deadline = Some(t + INTERLEAVE_WAIT),
                Some(d) if t >= d => return false,
                Some(_) => {}
            }
        }
    }

    fn drain_paced(&self, stop: &impl Fn() -> bool, mut scanned_one: impl FnMut(u64)) -> bool {
        let epoch = self.heap.epoch();
        // As much room as the shared vector keeps: this one is swapped in
        // for it (see the module's header).
        let room = self.cycle_objects.load(Ordering::Relaxed) as usize;
        let mut local: Vec<usize> = Vec::with_capacity(room);
        let mut scanned = 0u64;
        loop {
            if local.is_empty() {
                std::mem::swap(&mut local, &mut *self.queue());
                if local.is_empty() {
                    return true;
                }
            }
            while let Some(obj) = local.pop() {
                self.scan(obj, epoch, &mut local);
                scanned += 1;
                scanned_one(scanned);
                if scanned.is_multiple_of(256) && stop() {
                    // Whatever is left stays grey for whoever goes on.
                    self.queue().append(&mut local);
                    return false;
                }
            }
        }
    }

    /// Greys what the ref slots of `obj` point to. A slot another thread is
    /// rewriting may show a new tag with an old value or the reverse: the
    /// value is looked up like a conservative root, so the worst case is
    /// an object kept one cycle too long; a ref that the store removed was
    /// shaded by the store's barrier.
    fn scan(&self, obj: usize, epoch: u64, grey: &mut Vec<usize>) {
        for i in 0..self.heap.slots(obj) {
            let (tag, value) = self.heap.slot(obj, i);
            if tag != TAG_REF || value == 0 {
                continue;
            }
            if let Some(o) = self.heap.find_object(value as usize) {
                if self.heap.try_mark(o, epoch) {
                    grey.push(o);
                }
            }
        }
    }

    /// Whether no grey object waits in the shared queue.
    pub fn queue_is_empty(&self) -> bool {
        self.queue().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preempt_jit::abi::{OBJ_SLOTS, SLOT_SIZE, SLOT_TAG, SLOT_VALUE};

    /// Writes a ref into slot `i` as generated code does (value, then tag).
    fn set_ref(obj: usize, i: usize, target: usize) {
        let at = obj + OBJ_SLOTS as usize + i * SLOT_SIZE as usize;
        // SAFETY: a slot of a live test object.
        unsafe {
            (*((at + SLOT_VALUE as usize) as *const AtomicU64))
                .store(target as u64, Ordering::Relaxed);
            (*((at + SLOT_TAG as usize) as *const AtomicU64)).store(TAG_REF, Ordering::Release);
        }
    }

    fn list(m: &MarkState, n: usize) -> Vec<usize> {
        let nodes: Vec<usize> = (0..n).map(|_| m.heap.alloc(2).unwrap()).collect();
        for w in nodes.windows(2) {
            set_ref(w[0], 1, w[1]);
        }
        nodes
    }

    #[test]
    fn marking_follows_refs_from_the_roots_only() {
        let m = MarkState::new(Heap::with_limit(1 << 30));
        let reached = list(&m, 1000);
        let garbage = list(&m, 1000);
        // A cycle through the garbage does not keep it.
        set_ref(garbage[999], 0, garbage[0]);
        let e = m.heap.begin_cycle();
        // An interior pointer is as good a root as the object's address.
        assert!(m.shade(reached[0] as u64 + 24));
        assert!(!m.shade(reached[0] as u64), "already grey");
        assert!(!m.shade(12345), "not a heap address");
        assert!(m.drain(|| false));
        assert!(reached.iter().all(|&o| m.heap.is_marked(o, e)));
        assert!(garbage.iter().all(|&o| !m.heap.is_marked(o, e)));
        let s = m.heap.sweep(e, Default::default()).unwrap();
        assert_eq!(s.freed_objects, 1000);
    }

    #[test]
    fn the_barrier_keeps_a_ref_moved_behind_the_marker() {
        // The snapshot invariant: A -> B at mark start; the mutator moves
        // B into an object the marker has already scanned, and deletes it
        // from A before the marker gets to A. Only the barrier's shading of
        // the overwritten ref keeps B.
        for with_barrier in [true, false] {
            let m = MarkState::new(Heap::with_limit(1 << 30));
            let (a, b, black) = (
                m.heap.alloc(1).unwrap(),
                m.heap.alloc(1).unwrap(),
                m.heap.alloc(1).unwrap(),
            );
            set_ref(a, 0, b);
            let e = m.heap.begin_cycle();
            m.set_marking(true);
            m.set_skip_barrier(!with_barrier);
            // Roots: black and a; black is scanned first.
            m.shade(black as u64);
            assert!(m.drain(|| false));
            m.shade(a as u64);
            // The mutator: black.0 = a.0; a.0 = nil (with the barrier's
            // call, as generated code makes it, before the store).
            set_ref(black, 0, b);
            (m.barrier.shade)(&m.barrier, b as u64);
            set_ref(a, 0, 0);
            assert!(m.drain(|| false));
            m.set_marking(false);
            assert_eq!(m.heap.is_marked(b, e), with_barrier);
            assert_eq!(m.barrier_greyed(), u64::from(with_barrier));
        }
    }

    #[test]
    fn an_interleaved_drain_waits_for_stores_until_they_stop() {
        // 1000 objects to scan (about 65 steps of 15), and a program that
        // makes 10 barrier calls and then none: each wait takes at least
        // one of them, so the marker waits out one INTERLEAVE_WAIT and
        // finishes alone. The verdict does not depend on how the threads
        // are scheduled.
        let m = MarkState::new(Heap::with_limit(1 << 30));
        let nodes = list(&m, 1000);
        let e = m.heap.begin_cycle();
        m.set_marking(true);
        m.set_interleave(true);
        m.shade(nodes[0] as u64);
        let (done, timeouts) = std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..10 {
                    (m.barrier.shade)(&m.barrier, 0);
                }
            });
            m.drain_concurrent(|| false)
        });
        assert!(done);
        assert_eq!(timeouts, 1);
        assert_eq!(m.barrier_calls.load(Ordering::Relaxed), 10);
        assert!(nodes.iter().all(|&o| m.heap.is_marked(o, e)));

        // Without interleaving nothing waits and no call is counted.
        let m = MarkState::new(Heap::with_limit(1 << 30));
        let nodes = list(&m, 1000);
        let e = m.heap.begin_cycle();
        m.set_marking(true);
        (m.barrier.shade)(&m.barrier, 0);
        m.shade(nodes[0] as u64);
        assert_eq!(m.drain_concurrent(|| false), (true, 0));
        assert_eq!(m.barrier_calls.load(Ordering::Relaxed), 0);
        assert!(nodes.iter().all(|&o| m.heap.is_marked(o, e)));
    }

    #[test]
    fn the_barrier_never_grows_the_grey_queue() {
        // Every object of the heap greyed by the barrier while the marker
        // takes batches, stops early (putting its work back) and goes on:
        // no push finds the shared vector full, and its buffer stays put.
        let m = MarkState::new(Heap::with_limit(1 << 30));
        let nodes = list(&m, 3000);
        let e = m.heap.begin_cycle();
        m.reserve_for_cycle();
        m.set_marking(true);
        for (i, &o) in nodes.iter().enumerate().rev() {
            (m.barrier.shade)(&m.barrier, o as u64);
            if i % 700 == 0 {
                assert!(!m.drain(|| true) || m.queue_is_empty());
            }
        }
        // Allocated during the cycle: black, never queued.
        let born = m.heap.alloc(1).unwrap();
        (m.barrier.shade)(&m.barrier, born as u64);
        assert!(m.drain(|| false));
        assert_eq!(m.barrier_greyed(), 3000);
        assert_eq!(m.barrier_grew(), 0);
        assert!(nodes.iter().all(|&o| m.heap.is_marked(o, e)));
        // The marker swapped vectors of the same room in and out; the
        // one left behind is one of them, with room for the whole cycle.
        assert!(m.queue().capacity() >= 3000);

        // Without the reservation the first push finds no room, and the
        // count says so.
        let m = MarkState::new(Heap::with_limit(1 << 30));
        let nodes = list(&m, 10);
        m.heap.begin_cycle();
        m.set_marking(true);
        (m.barrier.shade)(&m.barrier, nodes[5] as u64);
        assert_eq!(m.barrier_grew(), 1);
    }

    #[test]
    fn a_stopped_drain_leaves_its_work_queued() {
        let m = MarkState::new(Heap::with_limit(1 << 30));
        let nodes = list(&m, 2000);
        let e = m.heap.begin_cycle();
        m.shade(nodes[0] as u64);
        assert!(!m.drain(|| true));
        assert!(!m.queue_is_empty());
        assert!(m.drain(|| false));
        assert!(nodes.iter().all(|&o| m.heap.is_marked(o, e)));
    }
}
