//! The JIT engine's garbage collector: non-moving, mark-sweep, marking
//! concurrently with the program behind a write barrier.
//!
//! (The interpreter has a heap and a stop-the-world collector of its own,
//! in `preempt_jit::interp::heap`; nothing here touches it.)
//!
//! # A cycle
//!
//! ```text
//!  mutators  ──run──┤ stopped ├──run, barrier on──────────┤ stopped ├──run──────────
//!  collector        │ mark    │ mark, concurrently        │ mark    │ sweep,
//!                   │ start:  │ (drain the grey queues)   │ termin- │ concurrently
//!                   │ roots   │                           │ ation   │ (then pace)
//!             stop the world  start                 stop the world  start
//! ```
//!
//! 1. **Mark start** (world stopped, [`crate::sched::stw`]): the heap's
//!    epoch moves on (every object is white, new objects are black), every
//!    root is greyed ([`roots`]), the barrier is switched on.
//! 2. **Concurrent mark**: the collector's thread scans grey objects until
//!    none is left ([`mark`]) while goroutines run, allocate and store.
//! 3. **Mark termination** (world stopped): the grey objects barriers
//!    queued since are drained; `--gc-verify` checks the marking against
//!    an independent walk ([`verify`]); the barrier is switched off.
//! 4. **Sweep**, concurrently with allocation ([`heap`]), then the next
//!    cycle's trigger is set from the live heap.
//!
//! # The barrier: a deletion barrier, and why
//!
//! Marking concurrently with goroutines that move refs around can lose an
//! object: the marker has scanned object X (black), a goroutine copies a
//! ref to Y from a not-yet-scanned object Z into X, then deletes it from
//! Z. Y is reachable (from X) and the marker never sees a ref to it.
//!
//! - A **Dijkstra insertion barrier** shades the *new* ref of every store,
//!   so Y is greyed when it is written into X. But stores into stack slots
//!   and registers have no barrier, so a goroutine can hold the only ref
//!   to a white object in a register: every stack must be rescanned, with
//!   the world stopped, at mark termination. That pause grows with the
//!   number of goroutines and the depth of their stacks; it is what Go
//!   had until 1.8.
//! - A **Yuasa deletion barrier** shades the *old* ref a store overwrites:
//!   Y is greyed when it is deleted from Z. Everything reachable when
//!   marking started (the snapshot) is then marked, whatever is moved
//!   where afterwards, provided the snapshot is taken atomically: here,
//!   every root is scanned while the world is stopped at mark start, and
//!   objects allocated during marking are black. No stack is ever
//!   rescanned, and mark termination only drains what barriers queued.
//! - **Go's hybrid barrier** (1.8 and later) shades both: the deletion
//!   half for the reason above, the insertion half because Go scans
//!   stacks one goroutine at a time while others run, so a goroutine
//!   whose stack is not scanned yet can still store a ref from it into a
//!   black object. Here stacks are scanned in the stop-the-world, so that
//!   half buys nothing and costs a second load on every slow path.
//!
//! So the barrier is Yuasa's. It applies to every store that can delete a
//! ref: `setref`, `store` to a ref global, and also `set`, because a slot's
//! kind changes with the store, and an `i64` written over a ref deletes
//! it. Its fast path is two loads and a branch (`ctx.gc`, then the flag);
//! its slow path, taken only while marking, checks the old slot holds a
//! ref and calls [`mark`]'s `shade`, on the goroutine's own stack, which
//! greys the object and queues it under a mutex shared with the marker.
//! No goroutine switch, no runtime call. The whole sequence, from the flag
//! load to the store, is an unsafe region: a goroutine that read the flag
//! as clear, then was stopped while marking began, would otherwise delete
//! a ref of the snapshot without shading it.
//!
//! # Who marks
//!
//! A thread of the collector's own, started at the first cycle. Mark work
//! on the allocating goroutine's M would hold that goroutine's P for the
//! whole mark: at one P the program would not run at all while marking,
//! the barrier would never see a concurrent store, and the phase would be
//! a stop-the-world by another name. A dedicated thread marks while every
//! P runs the program, at any `procs`, like Go's dedicated mark workers
//! (it is not counted against `procs`, which Go's are). Allocation does
//! not assist; instead a goroutine that allocates past twice the trigger
//! while a cycle runs waits for the cycle to end, and one that would pass
//! the heap limit waits for a full cycle and tries once more before it is
//! out of memory, so the heap stays bounded when the program allocates
//! faster than the collector marks.
//!
//! # Pacing (GOGC)
//!
//! After a sweep, the next cycle starts when live bytes reach `live * (1 +
//! gc_percent / 100)`, and never below 4 MiB (Go's minimum heap goal);
//! `setgcpercent` changes the percentage at once, a negative one turns
//! automatic cycles off (`gc` still collects, and so does an allocation
//! that would pass the limit). `gc` blocks its goroutine until a cycle
//! that started after the call has swept, as `runtime.GC` does.
//!
//! # Verification
//!
//! `--gc-verify` checks, at every mark termination, that every object an
//! independent walk reaches from the same roots is marked, and poisons
//! what the sweep frees (see [`heap`]), so that a later read is a clear
//! fatal error and a later write is caught by the next sweep, never a
//! silent corruption. [`GcFault`] injects bugs to prove the checks fail.

pub mod cycle;
pub mod heap;
pub mod mark;
pub mod roots;
pub mod verify;

pub use cycle::Collector;
pub use heap::Heap;

/// A bug to inject into the collector (tests of `--gc-verify`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GcFault {
    /// The write barrier's slow path shades nothing.
    SkipBarrier,
    /// Mark start greys nothing from the ref globals.
    SkipGlobalRoots,
    /// The sweep frees marked objects too.
    FreeMarked,
    /// Mark start leaves the stacks below the goroutines' SPs as they are
    /// (see [`roots::clear_dead_stacks`]): the verifier then reads words
    /// of returned frames as roots, and reports the dead objects they
    /// name. Not a bug of the marking: of the verifier's precondition.
    KeepDeadStackWords,
}

impl GcFault {
    pub const ALL: &'static [GcFault] = &[
        GcFault::SkipBarrier,
        GcFault::SkipGlobalRoots,
        GcFault::FreeMarked,
        GcFault::KeepDeadStackWords,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GcFault::SkipBarrier => "skip-barrier",
            GcFault::SkipGlobalRoots => "skip-global-roots",
            GcFault::FreeMarked => "free-marked",
            GcFault::KeepDeadStackWords => "keep-dead-stack-words",
        }
    }
}
