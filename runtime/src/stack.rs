//! Goroutine stacks: small at first, grown by copying (Go's design).
//!
//! # Sizes and where they come from
//!
//! A goroutine starts on a stack of [`STACK_MIN`] bytes (1,920). When a function
//! entry finds SP below the stack guard (the check every JIT prologue
//! makes, [`STACK_RESERVE`] bytes above the stack's lowest address), the
//! runtime gives the goroutine a stack twice the size (capped at the
//! `--stack-size` limit; a stack already at the limit is `fatal error:
//! stack overflow`), copies the used part to its top, and the function
//! starts again on the new one. The old stack goes back to the pool.
//! Stacks never shrink (Go shrinks them during collections; nothing here
//! does yet): a dead goroutine's grown stack goes back to the pool's list
//! of its size.
//!
//! Stacks of up to [`SLAB_BYTES`] / 2 bytes are carved several to a slab
//! (one `mmap` of [`SLAB_BYTES`], committed lazily), so that a parked
//! goroutine costs its stack's bytes and no more: stacks share pages.
//! They have no guard page: as in Go, the prologue's check is the guard. A stack that would fill half a slab or more gets a mapping of
//! its own with a guard page below (`MADV_GUARD_INSTALL`, which does not
//! split the mapping, or `mprotect` on kernels before 6.13), and is
//! unmapped when freed. Freed small stacks wait on per-size free lists
//! ([`StackPool`]): spawning and exiting take no system call while the
//! lists have some.
//!
//! # The reserve below the guard
//!
//! [`STACK_RESERVE`] covers everything that runs below an SP that passed
//! a check: a leaf function without a check ([`NOSPLIT_FRAME_MAX`] bytes
//! of frame, its return address and frame record), the preemption
//! stub's frame and its runtime call below that ([`PREEMPT_STUB_STACK`]:
//! a trap-page redirect cannot be declined, even in such a leaf; the x86-64
//! hand-off writes the same frame), and the write barrier's call into the
//! collector's `shade`, a small Rust function on the goroutine's stack
//! (what the reserve holds beyond the other two is its room: its
//! deepest path, a contended lock's futex call, is about 200 bytes of
//! frames on x86-64, and it never allocates, see `gc::mark`). A const
//! assertion below ties them.
//!
//! # Copying
//!
//! The copy happens in the goroutine's own `StackCheck` runtime call
//! ([`copy_to`]), on its M's scheduler stack. Every JIT frame starts with
//! the frame record `[fp] = caller's fp, [fp + 8] = return address`, and
//! generated code keeps no other address of its stack anywhere: operands
//! and arguments are addressed from SP or FP, the allocator's registers
//! hold values, and the stubs' frames (the preemption stub's, the
//! hand-off's) are popped before the goroutine's code runs on. So what
//! points into the stack is: the context's saved SP, its saved frame
//! pointer, the chain of saved frame pointers in the frames, and the
//! context's bounds and the guard word; the copy rewrites each.
//!
//! Nothing else reads the stack meanwhile. A goroutine in a runtime call
//! is still running as far as the rest of the runtime is concerned: its
//! M holds its P, so a stop of the world (which the collector's root scan
//! of stacks needs, `gc::roots`) waits until the call is served and the
//! M reaches a scheduling point; tracebacks and the operands of runtime
//! calls are read by the M that owns the goroutine. A preemption signal
//! that lands meanwhile finds the PC in the runtime, not in JIT code, and
//! declines before it looks at the stack bounds; a stop request's undo
//! that puts the guard back races only with the guard's update, which
//! [`crate::g::G::restore_guard`] settles.

use std::io;
use std::sync::Mutex;

use preempt_jit::abi::{NOSPLIT_FRAME_MAX, PREEMPT_STUB_STACK};
use preempt_jit::code::memory::page_size;

/// `madvise` advice installing guard markers (linux/mman.h).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Bytes between the stack guard word and the lowest usable address.
pub const STACK_RESERVE: usize = 1536;
/// The stack a goroutine starts on. Go's is 2 KiB; this one is an eighth
/// of a page smaller, so that a parked goroutine (this stack, about 700
/// bytes of goroutine record, context and waiter) costs less than Go's
/// (2 KiB of stack and its `g`). Slabs hold 34 of them, with 256 bytes
/// left over.
pub const STACK_MIN: usize = 1920;
/// The mapping small stacks are carved from.
pub const SLAB_BYTES: usize = 64 * 1024;

const _: () = assert!(
    STACK_RESERVE >= PREEMPT_STUB_STACK + NOSPLIT_FRAME_MAX as usize + 16 + 256,
    "the reserve holds a leaf's frame, the preemption stub's and room for the barrier's call"
);
const _: () = assert!(
    STACK_MIN >= STACK_RESERVE + 256,
    "a fresh stack leaves room above its guard for a parked goroutine's frames"
);

/// A goroutine's stack: `[lo, lo + size)`, from a slab or a mapping of
/// its own (with a guard page below `lo`).
#[derive(Debug)]
pub struct Stack {
    lo: usize,
    size: usize,
    /// Bytes from `lo` to the guard: [`STACK_RESERVE`], or more for a
    /// program with larger frames (see [`StackPool::new`]).
    reserve: u32,
    /// A mapping of its own, guard page included: unmapped on drop.
    mapped: bool,
}

impl Stack {
    /// A stack that owns nothing (size 0): a goroutine's before it first
    /// runs.
    pub fn none() -> Stack {
        Stack {
            lo: 0,
            size: 0,
            reserve: STACK_RESERVE as u32,
            mapped: false,
        }
    }

    /// A stack with a mapping of its own of `size` usable bytes (a
    /// multiple of the page size) and a guard page below.
    fn map(size: usize, reserve: u32) -> io::Result<Stack> {
        let page = page_size();
        let p = map_anon(size + page)?;
        // SAFETY: the first page of our own fresh mapping becomes a guard:
        // inaccessible, by page-table marker or by protection.
        let guarded = unsafe { libc::madvise(p as *mut libc::c_void, page, MADV_GUARD_INSTALL) }
            == 0
            || unsafe { libc::mprotect(p as *mut libc::c_void, page, libc::PROT_NONE) } == 0;
        let stack = Stack {
            lo: p + page,
            size,
            reserve,
            mapped: true,
        };
        if !guarded {
            let e = io::Error::last_os_error();
            drop(stack);
            return Err(e);
        }
        Ok(stack)
    }

    /// Moves the stack out, leaving one that owns nothing (for recycling
    /// a dead goroutine's stack).
    pub fn take(&mut self) -> Stack {
        std::mem::replace(self, Stack::none())
    }

    /// Usable bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Lowest usable address.
    pub fn lo(&self) -> usize {
        self.lo
    }

    /// One past the highest usable address.
    pub fn hi(&self) -> usize {
        self.lo + self.size
    }

    /// The value for the context's stack guard word.
    pub fn guard(&self) -> usize {
        self.lo() + self.reserve as usize
    }

    /// Whether `[addr, addr + 8)` lies in the usable part.
    pub fn contains_word(&self, addr: usize) -> bool {
        self.size != 0 && addr >= self.lo() && addr.checked_add(8).is_some_and(|e| e <= self.hi())
    }

    /// Zeroes the stack from its lowest address up to `addr` (clamped to
    /// the stack): the part below a stopped goroutine's saved SP, which
    /// holds only the words of frames that have returned.
    ///
    /// # Safety
    ///
    /// Nothing uses the stack below `addr`, and nothing runs on it
    /// meanwhile: the goroutine is stopped with its SP at or above `addr`
    /// (generated code keeps nothing below SP: the stubs push below it
    /// only while they run, and the runtime runs on its M's own stack).
    pub unsafe fn clear_below(&self, addr: usize) {
        let end = addr.clamp(self.lo(), self.hi());
        // SAFETY: `[lo, end)` lies in the usable part of the stack, which
        // is mapped read-write, and nothing uses it (the caller's
        // contract).
        unsafe { std::ptr::write_bytes(self.lo() as *mut u8, 0, end - self.lo()) };
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !self.mapped {
            // A slab's piece (the pool owns the slab) or nothing.
            return;
        }
        let page = page_size();
        // SAFETY: unmaps exactly our mapping, guard page included; no
        // goroutine runs on a stack being dropped.
        unsafe {
            libc::munmap((self.lo - page) as *mut libc::c_void, self.size + page);
        }
    }
}

/// Moves the used part of `old`, from `sp` up, to the top of `new`, and
/// rewrites the frame-pointer chain that starts at `fp` (see the module
/// docs: the only words of the stack that point into it). Returns the new
/// SP and frame pointer.
///
/// # Safety
///
/// `sp` lies in `old` (the saved SP of a goroutine in a runtime call),
/// `new` is at least as large and unused, and nothing else reads or
/// writes either stack meanwhile.
pub unsafe fn copy_to(old: &Stack, new: &Stack, sp: usize, fp: usize) -> (usize, usize) {
    // From the 16-byte aligned slot at or below SP: aarch64's `rt_call`
    // leaves SP one word above its aligned push.
    let from = (sp & !15).max(old.lo());
    let used = old.hi() - from;
    assert!(
        used <= new.size() && new.hi().is_multiple_of(16) && old.hi().is_multiple_of(16),
        "a grown stack holds the old one's used part"
    );
    let moved = |a: usize| a.wrapping_sub(old.hi()).wrapping_add(new.hi());
    let in_use = |a: usize| {
        a >= from && a.is_multiple_of(8) && a.checked_add(16).is_some_and(|e| e <= old.hi())
    };
    // SAFETY: both ranges lie in their stacks (checked above), which are
    // distinct and which nothing else touches (the caller's contract).
    unsafe { std::ptr::copy_nonoverlapping(from as *const u8, moved(from) as *mut u8, used) };
    let mut frame = fp;
    // Each saved frame pointer lies higher than the frame that saved it;
    // the goroutine entry stub's 0 (or anything outside) ends the chain.
    while in_use(frame) {
        let slot = moved(frame) as *mut usize;
        // SAFETY: `slot` lies in the copied part of `new` (in_use).
        let next = unsafe { slot.read() };
        if !(in_use(next) && next > frame) {
            break;
        }
        // SAFETY: as above.
        unsafe { slot.write(moved(next)) };
        frame = next;
    }
    let fp = if in_use(fp) { moved(fp) } else { fp };
    (moved(sp), fp)
}

/// Free small stacks kept per size: each keeps the pages its goroutine
/// touched, as Go keeps freed stacks until its scavenger runs; past this
/// many, a freed stack's piece is given back to the kernel
/// (`MADV_DONTNEED`) and kept on the list all the same.
pub const MAX_FREE_STACKS: usize = 64 * 1024;

/// Where goroutines' stacks come from and go back to.
#[derive(Debug)]
pub struct StackPool {
    /// The largest stack a goroutine may have (`--stack-size`, in whole
    /// pages).
    limit: usize,
    /// Bytes from a stack's lowest address to its guard.
    reserve: usize,
    /// Whether a freed stack is zeroed when handed out again
    /// ([`StackPool::clearing_reused`]).
    clear_reused: bool,
    inner: Mutex<PoolInner>,
}

#[derive(Debug, Default)]
struct PoolInner {
    /// Per size carved from slabs, smallest first.
    classes: Vec<Class>,
    /// Every slab mapped, unmapped when the pool goes.
    slabs: Vec<usize>,
}

#[derive(Debug)]
struct Class {
    size: usize,
    /// Free stacks' lowest addresses.
    free: Vec<usize>,
    /// The uncarved rest of the last slab: its lowest address and how
    /// many stacks it still holds.
    rest: usize,
    rest_count: usize,
}

impl StackPool {
    /// A pool whose stacks grow up to `limit` bytes (rounded up to pages,
    /// and at least [`STACK_MIN`]), for code whose largest frame is
    /// `max_frame` bytes: the guard sits [`STACK_RESERVE`] above a stack's
    /// lowest address, or higher when a frame allocated below a checked
    /// SP, with the runtime call of its failing check, would not fit
    /// under it (the check comes after the frame's allocation).
    pub fn new(limit: usize, max_frame: usize) -> StackPool {
        let page = page_size();
        let reserve = STACK_RESERVE.max((max_frame + 64).next_multiple_of(16));
        StackPool {
            limit: limit.max(STACK_MIN).div_ceil(page) * page,
            reserve: reserve.min(u32::MAX as usize / 2),
            clear_reused: false,
            inner: Mutex::default(),
        }
    }

    /// The same pool, handing out freed stacks zeroed when `on`: a new
    /// goroutine's frames then never show the collector's conservative
    /// scan a word of the stack's last owner (`--gc-verify`, which must
    /// tell a live ref from a dead one, turns it on; otherwise such a word
    /// only keeps a dead object for a cycle, not worth a `memset` per
    /// spawn).
    pub fn clearing_reused(mut self, on: bool) -> StackPool {
        self.clear_reused = on;
        self
    }

    /// The largest stack a goroutine may have.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The size a stack of `size` bytes grows to: twice, capped at the
    /// limit; None at the limit (the goroutine overflows).
    pub fn grown_size(&self, size: usize) -> Option<usize> {
        (size < self.limit).then(|| (size.max(STACK_MIN / 2) * 2).min(self.limit))
    }

    /// The size of a first stack that holds `bytes` above its reserve:
    /// [`STACK_MIN`], or as grown as needed.
    pub fn first_size(&self, bytes: usize) -> usize {
        let mut size = STACK_MIN.min(self.limit);
        while size < bytes.saturating_add(self.reserve) {
            match self.grown_size(size) {
                Some(s) => size = s,
                None => break,
            }
        }
        size
    }

    /// A stack of `size` usable bytes (a size [`StackPool::first_size`] or
    /// [`StackPool::grown_size`] gave): a freed one if one is free (no
    /// system call), else a fresh one.
    pub fn get(&self, size: usize) -> io::Result<Stack> {
        if size * 2 > SLAB_BYTES {
            return Stack::map(
                size.div_ceil(page_size()) * page_size(),
                self.reserve as u32,
            );
        }
        let mut inner = crate::sync::lock(&self.inner);
        let i = match inner.classes.iter().position(|c| c.size == size) {
            Some(i) => i,
            None => {
                inner.classes.push(Class {
                    size,
                    free: Vec::new(),
                    rest: 0,
                    rest_count: 0,
                });
                inner.classes.sort_by_key(|c| c.size);
                inner
                    .classes
                    .iter()
                    .position(|c| c.size == size)
                    .expect("just added")
            }
        };
        let (lo, reused) = match inner.classes[i].free.pop() {
            Some(lo) => (lo, true),
            None => {
                if inner.classes[i].rest_count == 0 {
                    let slab = map_anon(SLAB_BYTES)?;
                    inner.slabs.push(slab);
                    let c = &mut inner.classes[i];
                    c.rest = slab;
                    c.rest_count = SLAB_BYTES / size;
                }
                let c = &mut inner.classes[i];
                c.rest_count -= 1;
                (c.rest + c.rest_count * size, false)
            }
        };
        drop(inner);
        let stack = Stack {
            lo,
            size,
            reserve: self.reserve as u32,
            mapped: false,
        };
        if reused && self.clear_reused {
            // SAFETY: a free stack, carved from a live slab, which no
            // goroutine uses.
            unsafe { stack.clear_below(stack.hi()) };
        }
        Ok(stack)
    }

    /// Gives a stack back: a small one to its free list, a mapped one to
    /// the kernel.
    pub fn put(&self, stack: Stack) {
        if stack.mapped || stack.size == 0 {
            return;
        }
        let mut inner = crate::sync::lock(&self.inner);
        let Some(c) = inner.classes.iter_mut().find(|c| c.size == stack.size) else {
            return;
        };
        if c.free.len() >= MAX_FREE_STACKS && stack.size >= page_size() {
            // SAFETY: whole pages of a stack no goroutine uses any more
            // (sizes from a page up are page multiples, carved at page
            // multiples): they read as zero when next touched.
            unsafe {
                libc::madvise(
                    stack.lo as *mut libc::c_void,
                    stack.size,
                    libc::MADV_DONTNEED,
                )
            };
        }
        c.free.push(stack.lo);
    }

    /// Free stacks of `size` bytes (for tests).
    pub fn free_count(&self, size: usize) -> usize {
        let inner = crate::sync::lock(&self.inner);
        inner
            .classes
            .iter()
            .find(|c| c.size == size)
            .map_or(0, |c| c.free.len())
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
        for &slab in &inner.slabs {
            // SAFETY: the pool's own slab; the runtime that owned the pool
            // has ended, and no goroutine runs on its stacks any more.
            unsafe { libc::munmap(slab as *mut libc::c_void, SLAB_BYTES) };
        }
    }
}

#[cfg(test)]
mod tests;
