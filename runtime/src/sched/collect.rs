//! How goroutines meet the collector: `new`, `gc` and `setgcpercent`
//! served for JIT goroutines (the interpreter has its own heap, and for it
//! `gc` and `setgcpercent` stay what they were).

use std::sync::Arc;

use preempt_jit::fault::Fault;

use super::{Next, Runtime};
use crate::g::{Resume, WaitReason, G};
use crate::gc::heap::AllocError;

impl Runtime {
    /// `new n` on the JIT heap. An allocation that would pass the heap
    /// limit waits for a whole cycle and is tried once more; one past
    /// twice the trigger while a cycle runs waits for that cycle to end
    /// (the collector's pacing: see [`crate::gc`]).
    pub(super) fn serve_new(&self, g: &Arc<G>, n: i64) -> Next {
        if self.module().is_none() {
            return self.fault(
                g,
                Fault::Panic("internal error: new outside JIT code".into()),
            );
        }
        match self.gc.heap().alloc(n) {
            Ok(addr) => {
                self.gc.allocated();
                let park = || {
                    // The value waits with the goroutine.
                    g.deliver(Resume {
                        value: Some(addr as u64),
                        ..Resume::default()
                    });
                    self.parking(g, WaitReason::GarbageCollection);
                };
                if self.gc.over_hard_goal() && self.gc.wait_for_running(g, park) {
                    return Next::Park(WaitReason::GarbageCollection);
                }
                self.value(g, addr as u64)
            }
            Err(AllocError::Negative) => self.fault(g, Fault::NegativeSize(n)),
            Err(AllocError::OutOfMemory) => self.fault(g, Fault::OutOfMemory),
            Err(AllocError::Full) => {
                self.parking(g, WaitReason::GarbageCollection);
                self.gc.wait_to_allocate(g.clone(), n);
                Next::Park(WaitReason::GarbageCollection)
            }
        }
    }

    /// `gc` (runtime.GC): parks until a cycle that starts after now has
    /// swept.
    pub(super) fn serve_gc(&self, g: &Arc<G>) -> Next {
        if self.module().is_none() {
            return self.continue_or_preempt(g, Resume::default());
        }
        self.parking(g, WaitReason::GarbageCollection);
        self.gc.wait_for_cycle(g.clone());
        Next::Park(WaitReason::GarbageCollection)
    }

    /// `setgcpercent X` (debug.SetGCPercent; returns nothing in PIR).
    pub(super) fn serve_set_gc_percent(&self, g: &Arc<G>, percent: i64) -> Next {
        if self.module().is_some() {
            self.gc.set_gc_percent(percent);
        }
        self.continue_or_preempt(g, Resume::default())
    }
}

/// The collector's view of the run: the scheduler stops the world for it,
/// hands it the roots and readies whom it woke.
impl crate::gc::cycle::Host for Runtime {
    fn collector(&self) -> &crate::gc::Collector {
        &self.gc
    }

    fn ended(&self) -> bool {
        self.shutdown.load(std::sync::atomic::Ordering::Acquire)
    }

    fn with_world_stopped(
        &self,
        why: &'static str,
        work: crate::gc::cycle::StoppedWork<Self>,
    ) -> bool {
        Runtime::with_world_stopped(self, why, work)
    }

    fn roots(&self) -> Option<crate::gc::roots::Roots<'_>> {
        Some(crate::gc::roots::Roots {
            module: self.module()?,
            goroutines: self.allgs.all(),
        })
    }

    fn ready(&self, g: Arc<G>) {
        Runtime::ready(self, g, None)
    }

    fn finish(&self, outcome: crate::Outcome) {
        Runtime::finish(self, outcome)
    }

    fn check_dead(&self) {
        Runtime::check_dead(self)
    }

    fn stats(&self) -> &crate::stats::Stats {
        &self.obs.stats.sched
    }

    fn tracer(&self) -> &crate::trace::Tracer {
        &self.obs.tracer
    }
}
