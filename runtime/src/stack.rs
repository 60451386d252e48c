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
//! 32,000. Older kernels fall back to `mprotect`.
//!
//! Stacks come from a [`StackPool`]: dead goroutines' stacks wait on its
//! free list for new ones (no system call on spawn or exit while it has
//! some), and fresh ones are carved from chunks mapped [`CHUNK_STACKS`]
//! at a time (one `mmap` per chunk, one guard `madvise` per stack). The prologue of every JIT function
//! compares SP with a guard word [`STACK_RESERVE`] bytes above the lowest
//! usable address; the reserve covers what stubs push below a checked SP,
//! and the guard page turns anything else into a fault instead of silent
//! corruption.

use std::io;
use std::ptr::NonNull;
use std::sync::Mutex;

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
        let p = map_anon(map_len)?;
        // SAFETY: the whole fresh mapping becomes the stack.
        unsafe { Stack::carve(p as *mut libc::c_void, map_len) }
    }

    /// The stack whose guard page starts at `p`, `map_len` bytes long
    /// with the guard page, inside a mapping of ours that nothing else
    /// uses: installs the guard.
    ///
    /// # Safety
    ///
    /// `[p, p + map_len)` is mapped read-write, page-aligned, and owned by
    /// the new stack alone from now on.
    unsafe fn carve(p: *mut libc::c_void, map_len: usize) -> io::Result<Stack> {
        let page = page_size();
        // SAFETY: the first page of our own mapping becomes a guard:
        // inaccessible, by page-table marker or by protection.
        let guarded = unsafe { libc::madvise(p, page, MADV_GUARD_INSTALL) } == 0
            || unsafe { libc::mprotect(p, page, libc::PROT_NONE) } == 0;
        let stack = Stack {
            map: NonNull::new(p.cast()).expect("mmap never returns null on success"),
            map_len,
            guard_len: page,
        };
        if !guarded {
            let e = io::Error::last_os_error();
            drop(stack);
            return Err(e);
        }
        Ok(stack)
    }

    /// A stack that owns nothing (size 0): a goroutine's before it first
    /// runs.
    pub fn none() -> Stack {
        Stack {
            map: NonNull::dangling(),
            map_len: 0,
            guard_len: 0,
        }
    }

    /// Moves the mapping out, leaving a stack that owns nothing (for
    /// recycling a dead goroutine's stack).
    pub fn take(&mut self) -> Stack {
        std::mem::replace(self, Stack::none())
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

/// Fresh stacks mapped at once: one `mmap` serves this many spawns.
pub const CHUNK_STACKS: usize = 16;

/// Free stacks kept for reuse. Each keeps the pages its goroutine touched
/// (usually one or two), as Go keeps freed stacks until its scavenger
/// runs; past this many, a dead goroutine's stack is unmapped.
pub const MAX_FREE_STACKS: usize = 64 * 1024;

/// Where goroutines' stacks come from and go back to: a free list, and
/// the rest of the last chunk mapped.
#[derive(Debug)]
pub struct StackPool {
    /// Bytes of each mapping, guard page included.
    map_len: usize,
    inner: Mutex<PoolInner>,
}

#[derive(Debug, Default)]
struct PoolInner {
    free: Vec<Stack>,
    /// The uncarved rest of the last chunk: its lowest address (0: none)
    /// and how many stacks it still holds.
    rest: usize,
    rest_count: usize,
}

// SAFETY: the uncarved rest is plain memory owned by the pool.
unsafe impl Send for PoolInner {}

impl StackPool {
    /// A pool of stacks with `size` usable bytes each (rounded up to
    /// pages, at least [`MIN_STACK_SIZE`]).
    pub fn new(size: usize) -> StackPool {
        let page = page_size();
        let usable = size.max(MIN_STACK_SIZE).div_ceil(page) * page;
        StackPool {
            map_len: usable + page,
            inner: Mutex::default(),
        }
    }

    /// A stack: a dead goroutine's if one is free (no system call), else
    /// a fresh one.
    pub fn get(&self) -> io::Result<Stack> {
        let p = {
            let mut inner = crate::sync::lock(&self.inner);
            if let Some(s) = inner.free.pop() {
                return Ok(s);
            }
            if inner.rest_count == 0 {
                inner.rest = self.map_chunk()?;
                inner.rest_count = CHUNK_STACKS;
            }
            // Carve from the top of the chunk, so that a stack's top page
            // and the guard of the next one carved share a page table.
            inner.rest_count -= 1;
            inner.rest + inner.rest_count * self.map_len
        };
        // SAFETY: a page-aligned piece of our chunk, carved once.
        unsafe { Stack::carve(p as *mut libc::c_void, self.map_len) }
    }

    /// Gives a dead goroutine's stack back.
    pub fn put(&self, stack: Stack) {
        if stack.map_len != self.map_len {
            return;
        }
        let mut inner = crate::sync::lock(&self.inner);
        if inner.free.len() < MAX_FREE_STACKS {
            inner.free.push(stack);
            return;
        }
        drop(inner);
        drop(stack);
    }

    /// Free stacks (for tests).
    pub fn free_count(&self) -> usize {
        crate::sync::lock(&self.inner).free.len()
    }

    fn map_chunk(&self) -> io::Result<usize> {
        map_anon(self.map_len * CHUNK_STACKS)
    }
}

/// A fresh private anonymous read-write mapping of `len` bytes, committed
/// lazily: its address.
fn map_anon(len: usize) -> io::Result<usize> {
    // SAFETY: a fresh mapping, at an address the kernel chooses; checked
    // below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p as usize)
}

impl Drop for StackPool {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        if inner.rest_count > 0 {
            // SAFETY: the uncarved rest of our chunk: no stack lies in it.
            unsafe {
                libc::munmap(
                    inner.rest as *mut libc::c_void,
                    inner.rest_count * self.map_len,
                );
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_stack_is_reused_before_a_fresh_one_is_carved() {
        let pool = StackPool::new(MIN_STACK_SIZE);
        let a = pool.get().expect("a stack");
        let lo = a.lo();
        pool.put(a);
        assert_eq!(pool.free_count(), 1);
        let b = pool.get().expect("a stack");
        assert_eq!(b.lo(), lo, "the freed stack comes back");
        assert_eq!(pool.free_count(), 0);
    }

    #[test]
    fn carved_stacks_are_disjoint_usable_and_span_chunks() {
        let pool = StackPool::new(MIN_STACK_SIZE);
        let stacks: Vec<Stack> = (0..CHUNK_STACKS + 3)
            .map(|_| pool.get().expect("a stack"))
            .collect();
        let mut ranges: Vec<(usize, usize)> = stacks.iter().map(|s| (s.lo(), s.hi())).collect();
        ranges.sort();
        for w in ranges.windows(2) {
            assert!(w[0].1 <= w[1].0, "stacks overlap: {w:?}");
        }
        for s in &stacks {
            assert!(s.size() >= MIN_STACK_SIZE);
            // The whole usable range is writable: lowest and highest word.
            // SAFETY: both words lie in the stack's usable part, which
            // nothing else uses.
            unsafe {
                (s.lo() as *mut u64).write(1);
                ((s.hi() - 8) as *mut u64).write(2);
                assert_eq!((s.lo() as *const u64).read(), 1);
            }
        }
        drop(stacks);
    }

    #[test]
    fn a_stack_of_another_size_is_not_kept() {
        let pool = StackPool::new(MIN_STACK_SIZE);
        pool.put(Stack::new(2 * MIN_STACK_SIZE).expect("a stack"));
        assert_eq!(pool.free_count(), 0);
    }
}
