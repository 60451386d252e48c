//! Goroutine stacks: fixed-size mappings with a guard page below.
//!
//! Pages are committed lazily (`MAP_NORESERVE`), so a large default costs
//! only what a goroutine touches.
//!
//! The guard page is installed with `MADV_GUARD_INSTALL` (Linux 6.13 and
//! later), which marks it in the page tables without splitting the
//! mapping: adjacent stacks then merge into a few kernel VMAs, and a
//! hundred thousand goroutines stay far below the kernel's limit on
//! mappings per process (`vm.max_map_count`, 65530 by default), which
//! `mprotect`-ed guard pages (two VMAs per stack) would exceed at about
//! 32,000. Older kernels fall back to `mprotect`. The prologue of every JIT function
//! compares SP with a guard word [`STACK_RESERVE`] bytes above the lowest
//! usable address; the reserve covers what stubs push below a checked SP,
//! and the guard page turns anything else into a fault instead of silent
//! corruption.

use std::io;
use std::ptr::NonNull;

use preempt_jit::code::memory::page_size;

/// `madvise` advice installing guard markers (linux/mman.h).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Bytes between the stack guard word and the lowest usable address.
pub const STACK_RESERVE: usize = 16 * 1024;
/// The smallest stack a goroutine may have.
pub const MIN_STACK_SIZE: usize = 64 * 1024;

/// An mmap'd stack: `[guard page][usable bytes ... top)`.
#[derive(Debug)]
pub struct Stack {
    map: NonNull<u8>,
    map_len: usize,
    guard_len: usize,
}

// SAFETY: the stack is plain memory owned by this value; which thread runs
// on it is the scheduler's business.
unsafe impl Send for Stack {}

impl Stack {
    /// Maps a stack with `size` usable bytes (rounded up to pages).
    pub fn new(size: usize) -> io::Result<Stack> {
        let page = page_size();
        let usable = size.max(MIN_STACK_SIZE).div_ceil(page) * page;
        let map_len = usable + page;
        // SAFETY: a fresh private anonymous mapping; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the first page of our own mapping becomes a guard:
        // inaccessible, by page-table marker or by protection.
        let guarded = unsafe { libc::madvise(p, page, MADV_GUARD_INSTALL) } == 0
            || unsafe { libc::mprotect(p, page, libc::PROT_NONE) } == 0;
        if !guarded {
            let e = io::Error::last_os_error();
            // SAFETY: unmapping what we just mapped.
            unsafe { libc::munmap(p, map_len) };
            return Err(e);
        }
        Ok(Stack {
            map: NonNull::new(p.cast()).expect("mmap never returns null on success"),
            map_len,
            guard_len: page,
        })
    }

    /// Moves the mapping out, leaving a stack that owns nothing (for
    /// recycling a dead goroutine's stack).
    pub fn take(&mut self) -> Stack {
        std::mem::replace(
            self,
            Stack {
                map: NonNull::dangling(),
                map_len: 0,
                guard_len: 0,
            },
        )
    }

    /// Usable bytes.
    pub fn size(&self) -> usize {
        self.map_len.saturating_sub(self.guard_len)
    }

    /// Lowest usable address (just above the guard page).
    pub fn lo(&self) -> usize {
        self.map.as_ptr() as usize + self.guard_len
    }

    /// One past the highest usable address.
    pub fn hi(&self) -> usize {
        self.map.as_ptr() as usize + self.map_len
    }

    /// The value for the context's stack guard word.
    pub fn guard(&self) -> usize {
        self.lo() + STACK_RESERVE
    }

    /// Whether `[addr, addr + 8)` lies in the usable part.
    pub fn contains_word(&self, addr: usize) -> bool {
        addr >= self.lo() && addr.checked_add(8).is_some_and(|e| e <= self.hi())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.map_len == 0 {
            return;
        }
        // SAFETY: unmaps exactly our mapping; no goroutine runs on a stack
        // being dropped.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}
