//! The allocator of the `preempt` executables: the system's, except that
//! an allocation that fails ends the process with Go's words and status
//! 1, rather than Rust's abort (a `SIGABRT` and "memory allocation of N
//! bytes failed"): a program too big for the address space it was given
//! is an error of the run, not a crash of preempt. Each executable names
//! it its `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, failing cleanly (see the module docs).
#[derive(Debug)]
pub struct FailCleanly;

const OUT_OF_MEMORY: &[u8] = b"fatal error: out of memory\n";

fn out_of_memory() -> ! {
    // SAFETY: write(2) and _exit(2) are async-signal-safe and allocate
    // nothing, which is all that is left to do when memory has run out.
    unsafe {
        libc::write(2, OUT_OF_MEMORY.as_ptr().cast(), OUT_OF_MEMORY.len());
        libc::_exit(1)
    }
}

// SAFETY: every call forwards to the system allocator with the same
// arguments; a failure, which the contract lets us report with a null
// pointer, ends the process instead.
unsafe impl GlobalAlloc for FailCleanly {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }
}
