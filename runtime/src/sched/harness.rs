//! The one hook through which a harness watches a run: the
//! every-instruction harness (crate `preempt-stress`) lives outside the
//! runtime and talks to it only through [`Harness`] (and the runtime's
//! public API from its own threads).
//!
//! A harness needs three things of the runtime: to enter a goroutine its
//! own way at a context switch (single-stepped), to hear from the
//! preemption handlers what they decided ([`Watcher`], async-signal-safe),
//! and to start its threads once the run's workers exist.

use std::sync::Arc;

use preempt_jit::abi::GoroutineContext;

use super::Runtime;
pub use crate::preempt::worker::Watcher;

/// The `switch_to` stub: resumes a goroutine until its next runtime call.
pub type SwitchTo = extern "C" fn(*mut GoroutineContext) -> u64;

/// A harness watching a run ([`crate::RunConfig::harness`]).
pub trait Harness: Watcher + Send + std::fmt::Debug {
    /// The harness as the handlers see it.
    fn as_watcher(&self) -> &dyn Watcher;

    /// A worker switches into the JIT goroutine whose context is `ctx`
    /// (the scheduler's `switch_to(ctx)`); returns the request word
    /// `switch_to` returns. The default is the plain call.
    ///
    /// # Safety
    ///
    /// `ctx` is the context of a goroutine the calling worker owns, ready
    /// to be resumed, and `switch_to` the module's stub.
    unsafe fn switch_into(&self, switch_to: SwitchTo, ctx: *mut GoroutineContext) -> u64 {
        switch_to(ctx)
    }

    /// The run has started (its workers exist): the harness starts the
    /// threads it needs. An error ends the run before its first goroutine.
    fn start(&self, rt: &Arc<Runtime>) -> std::io::Result<()> {
        let _ = rt;
        Ok(())
    }
}
