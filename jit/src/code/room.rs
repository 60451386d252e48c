//! [`CodeRoom`]: the memory code is assembled into, which later becomes
//! the memory it runs from.
//!
//! A room is a private anonymous mapping, read+write while the assembler
//! fills it. Publication ([`ExecutableMemory::seal`]) turns the very same
//! pages read+execute with one `mprotect`, so code is never copied after
//! assembly: publishing a large program used to cost a copy into a
//! shared-memory file and a fault per page of it (a third of the compile
//! benchmark's assembly time again). Only code that is patched while it
//! runs needs a second, writable view of its pages, which an anonymous
//! mapping cannot have; such code is copied into a file instead
//! ([`ExecutableMemory::publish`]).
//!
//! Until it is sealed a room may move as it grows (`mremap`), as a vector
//! does; once sealed it never moves. Its pages are never writable and
//! executable at once: the `mprotect` changes both permissions together.
//!
//! [`ExecutableMemory::seal`]: super::ExecutableMemory::seal
//! [`ExecutableMemory::publish`]: super::ExecutableMemory::publish

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::memory::page_size;
use super::prefault::Prefault;

/// Bytes of code being assembled, in memory of their own.
#[derive(Debug)]
pub struct CodeRoom {
    /// The mapping's start (dangling while nothing is mapped).
    ptr: NonNull<u8>,
    /// Bytes written.
    len: usize,
    /// Bytes mapped: a whole number of pages, or 0.
    cap: usize,
}

// SAFETY: the room owns its mapping, reached only through `&self` (shared
// reads) and `&mut self` (writes), as a `Vec<u8>`'s buffer is.
unsafe impl Send for CodeRoom {}
// SAFETY: see `Send`.
unsafe impl Sync for CodeRoom {}

impl Default for CodeRoom {
    fn default() -> Self {
        CodeRoom {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }
}

impl CodeRoom {
    /// An empty room with space for at least `bytes` (mapped, not yet
    /// backed: a page costs memory when it is first written).
    pub fn with_capacity(bytes: usize) -> Self {
        let mut room = CodeRoom::default();
        if bytes > 0 {
            room.grow_to(bytes);
        }
        room
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    #[inline]
    pub fn push(&mut self, byte: u8) {
        if self.len == self.cap {
            self.grow_to(self.len + 1);
        }
        // SAFETY: `len < cap`, and the mapping's `cap` bytes are writable.
        unsafe { self.ptr.as_ptr().add(self.len).write(byte) };
        self.len += 1;
    }

    /// Appends `bytes`.
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if self.cap - self.len < bytes.len() {
            self.grow_to(self.len + bytes.len());
        }
        // SAFETY: the room has `bytes.len()` writable bytes past `len`
        // (just ensured), which `bytes`, a shared borrow, cannot overlap
        // (`&mut self` is the only reference into the room).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                bytes.len(),
            )
        };
        self.len += bytes.len();
    }

    /// Appends what `iter` yields, with room made once for as many bytes
    /// as it says it has.
    #[inline]
    pub fn extend_from_iter(&mut self, iter: impl Iterator<Item = u8>) {
        let (at_least, _) = iter.size_hint();
        if self.cap - self.len < at_least {
            self.grow_to(self.len + at_least);
        }
        for b in iter {
            self.push(b);
        }
    }

    /// Lengthens the code to `len` bytes of `fill` (shortening is not
    /// needed, and not done).
    pub fn pad_to(&mut self, len: usize, fill: u8) {
        if len > self.len {
            if len > self.cap {
                self.grow_to(len);
            }
            // SAFETY: `[self.len, len)` lies inside the writable mapping.
            unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(self.len), fill, len - self.len) };
            self.len = len;
        }
    }

    /// Maps room for at least `needed` bytes: at least twice what there
    /// was, so that pushing byte by byte costs amortised constant time.
    #[cold]
    #[inline(never)]
    fn grow_to(&mut self, needed: usize) {
        let page = page_size();
        let cap = needed
            .max(self.cap.saturating_mul(2))
            .max(page)
            .next_multiple_of(page);
        let p = if self.cap == 0 {
            // SAFETY: a fresh private anonymous read+write mapping at an
            // address the kernel chooses; checked for MAP_FAILED below.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    cap,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            }
        } else {
            // SAFETY: moves (or extends) our own mapping of `self.cap`
            // bytes, contents kept; nothing refers into it but `self`
            // (the room is not yet published: nothing executes it).
            unsafe {
                libc::mremap(
                    self.ptr.as_ptr().cast(),
                    self.cap,
                    cap,
                    libc::MREMAP_MAYMOVE,
                )
            }
        };
        if p == libc::MAP_FAILED {
            // As a vector does when its allocation fails.
            std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(cap, page).expect("a page-aligned size"),
            );
        }
        self.ptr = NonNull::new(p.cast()).expect("mmap never returns null on success");
        self.cap = cap;
    }

    /// Adds the room reserved for code not yet written to `p`.
    pub fn spare(&self, p: &mut Prefault) {
        let base = self.ptr.as_ptr() as usize;
        p.range(base + self.len, base + self.cap);
    }

    /// Gives up the mapping: its address, the bytes written and the bytes
    /// mapped. The caller unmaps it.
    pub(super) fn into_raw(self) -> (NonNull<u8>, usize, usize) {
        let raw = (self.ptr, self.len, self.cap);
        std::mem::forget(self);
        raw
    }
}

impl Deref for CodeRoom {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of the mapping are written; a
        // dangling pointer with length 0 is a valid empty slice.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for CodeRoom {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, and `&mut self` is the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for CodeRoom {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: unmaps exactly our own mapping; nothing executes it
            // (a published room is given up by `into_raw` first).
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.cap) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_keeping_its_bytes() {
        let mut r = CodeRoom::default();
        assert!(r.is_empty());
        for i in 0..100_000u32 {
            r.push(i as u8);
            if i % 1000 == 0 {
                r.extend_from_slice(&i.to_le_bytes());
            }
        }
        let mut want = Vec::new();
        for i in 0..100_000u32 {
            want.push(i as u8);
            if i % 1000 == 0 {
                want.extend_from_slice(&i.to_le_bytes());
            }
        }
        assert_eq!(&r[..], &want[..]);
        assert!(r.capacity() >= r.len() && r.capacity() % page_size() == 0);
        r.pad_to(r.len() + 10, 0xcc);
        assert_eq!(&r[want.len()..], &[0xcc; 10]);
        r[0] = 7;
        assert_eq!(r[0], 7);
    }

    #[test]
    fn an_empty_room_maps_nothing() {
        let r = CodeRoom::with_capacity(0);
        assert_eq!((r.len(), r.capacity()), (0, 0));
        assert_eq!(&r[..], &[] as &[u8]);
    }
}
