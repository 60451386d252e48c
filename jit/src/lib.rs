//! preempt-jit: PIR -> machine code and the tables the runtime reads.
//!
//! The pipeline: [`ir`] (text, entities, verifier) -> [`opt`] (LICM) ->
//! [`lower`] (register allocation, and the lowering of every function,
//! with the metadata it records, written once) -> [`isa`] (what each
//! architecture spells its own way: instruction hooks, stubs, decoding) ->
//! [`code`] (executable memory and metadata tables), tied together in a
//! [`module::Module`]. [`abi`] is the contract between generated code and
//! the runtime. [`interp`] is the reference interpreter every backend is
//! tested against.

pub mod abi;
pub mod code;
pub mod fault;
pub mod interp;
pub mod ir;
pub mod isa;
pub mod lower;
pub mod module;
pub mod opt;
pub mod par;

/// Counts heap allocations per thread in this crate's unit tests, so tests
/// can check that code meant for signal handlers does not allocate.
#[cfg(test)]
pub(crate) mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }

    struct Counting;

    // SAFETY: forwards to the system allocator unchanged; the counter is a
    // const-initialised thread-local without destructor, which never
    // allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            COUNT.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as ours.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            COUNT.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as ours.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// Allocations made so far by the calling thread.
    pub fn this_thread() -> u64 {
        COUNT.with(|c| c.get())
    }
}
