//! [`CodeBytes`]: the bytes of code being assembled, written straight into
//! the shared-memory file it will be published from.
//!
//! A vector of bytes would be copied into the file at publication (a
//! `pwrite` of the whole code, tens of megabytes for a large program, on
//! top of faulting in the vector's own pages). Instead the bytes are
//! written through a read+write, never executable, mapping of a `memfd`;
//! publication maps the same file read+execute at another address and
//! unmaps the writable view ([`super::ExecutableMemory::publish_code`]):
//! nothing is copied. Where no `memfd` can be had, the bytes live in an
//! anonymous mapping and publication copies them, as before.

use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use super::memory::page_size;

/// A growable byte buffer in a read+write mapping of a `memfd` (or, failing
/// that, of anonymous memory), as a `Vec<u8>` is in the heap.
pub struct CodeBytes {
    /// The read+write view, `cap` bytes long.
    ptr: NonNull<u8>,
    len: usize,
    /// Mapped bytes, a whole number of pages.
    cap: usize,
    /// The file behind the mapping, sized `cap`.
    file: Option<OwnedFd>,
}

// SAFETY: `CodeBytes` owns its mapping as a `Vec<u8>` owns its
// allocation: its bytes are reached only through `&self` / `&mut self`.
unsafe impl Send for CodeBytes {}
// SAFETY: as for `Send`; `&CodeBytes` gives only shared reads.
unsafe impl Sync for CodeBytes {}

/// Gives up as a vector does when memory cannot be had.
#[cold]
fn out_of_memory(bytes: usize) -> ! {
    std::alloc::handle_alloc_error(
        std::alloc::Layout::from_size_align(bytes.max(1), 1).expect("a byte layout"),
    )
}

impl CodeBytes {
    /// An empty buffer with room for at least `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> CodeBytes {
        let cap = capacity.max(1).next_multiple_of(page_size());
        let file = new_file(cap);
        let ptr = map(cap, file.as_ref()).unwrap_or_else(|| out_of_memory(cap));
        CodeBytes {
            ptr,
            len: 0,
            cap,
            file,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The address range of the room not yet written.
    pub fn spare(&self) -> std::ops::Range<usize> {
        let base = self.ptr.as_ptr() as usize;
        base + self.len..base + self.cap
    }

    #[inline]
    pub fn push(&mut self, byte: u8) {
        if self.len == self.cap {
            self.grow(self.len + 1);
        }
        // SAFETY: `len < cap`, and the mapping holds `cap` writable bytes.
        unsafe { self.ptr.as_ptr().add(self.len).write(byte) };
        self.len += 1;
    }

    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if end > self.cap {
            self.grow(end);
        }
        // SAFETY: `end <= cap`; the source is a slice elsewhere (`&mut
        // self` excludes it being our own bytes).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                bytes.len(),
            )
        };
        self.len = end;
    }

    /// Lengthens the buffer to `len` bytes with `byte` (never shortens it).
    pub fn pad_to(&mut self, len: usize, byte: u8) {
        if len > self.cap {
            self.grow(len);
        }
        if len > self.len {
            // SAFETY: `len <= cap`, inside the mapping.
            unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(self.len), byte, len - self.len) };
            self.len = len;
        }
    }

    /// Makes room for at least `min` bytes: twice the room, or `min`.
    #[cold]
    fn grow(&mut self, min: usize) {
        let cap = (self.cap * 2).max(min).next_multiple_of(page_size());
        if let Some(f) = &self.file {
            // SAFETY: sizes our own memfd.
            if unsafe { libc::ftruncate(f.as_raw_fd(), cap as libc::off_t) } != 0 {
                out_of_memory(cap);
            }
        }
        // SAFETY: moves our own mapping of `self.cap` bytes to one of `cap`
        // (the file, if any, now that long); the bytes go with it and
        // nothing else refers to the old address.
        let p = unsafe {
            libc::mremap(
                self.ptr.as_ptr().cast(),
                self.cap,
                cap,
                libc::MREMAP_MAYMOVE,
            )
        };
        if p == libc::MAP_FAILED {
            out_of_memory(cap);
        }
        self.ptr = NonNull::new(p.cast()).expect("mremap never returns null on success");
        self.cap = cap;
    }

    /// The `memfd` holding the bytes, sized to the whole pages they take,
    /// once the writable view is gone; or the bytes themselves, where they
    /// have no file.
    pub(super) fn into_file(self) -> Result<(OwnedFd, usize), CodeBytes> {
        let mut this = std::mem::ManuallyDrop::new(self);
        let Some(file) = this.file.take() else {
            return Err(std::mem::ManuallyDrop::into_inner(this));
        };
        let len = this.len;
        let map_len = len.max(1).next_multiple_of(page_size());
        // SAFETY: unmaps our own view; `this` is not used or dropped again
        // (ManuallyDrop), so nothing refers to it afterwards.
        unsafe { libc::munmap(this.ptr.as_ptr().cast(), this.cap) };
        // The room not used goes back; failing that it stays, unused.
        // SAFETY: sizes our own memfd.
        unsafe { libc::ftruncate(file.as_raw_fd(), map_len as libc::off_t) };
        Ok((file, len))
    }
}

/// A `memfd` of `len` bytes for code, if one can be had.
fn new_file(len: usize) -> Option<OwnedFd> {
    // SAFETY: memfd_create with a NUL-terminated name and valid flags.
    let fd = unsafe { libc::memfd_create(c"preempt-jit-code".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sizes our own memfd.
    (unsafe { libc::ftruncate(fd, len as libc::off_t) } == 0).then_some(file)
}

/// A read+write mapping of `len` bytes of `file`, or of anonymous memory.
fn map(len: usize, file: Option<&OwnedFd>) -> Option<NonNull<u8>> {
    let (flags, fd) = match file {
        Some(f) => (libc::MAP_SHARED, f.as_raw_fd()),
        None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
    };
    // SAFETY: a fresh read+write (never executable) mapping at an address
    // the kernel chooses; checked for MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
            0,
        )
    };
    (p != libc::MAP_FAILED).then(|| NonNull::new(p.cast()).expect("mmap never returns null"))
}

impl Drop for CodeBytes {
    fn drop(&mut self) {
        // SAFETY: unmaps our own view; the file, if any, closes with it.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.cap) };
    }
}

impl Deref for CodeBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` of the mapping's `cap` bytes are written.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for CodeBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Clone for CodeBytes {
    fn clone(&self) -> CodeBytes {
        let mut c = CodeBytes::with_capacity(self.len);
        c.extend_from_slice(self);
        c
    }
}

impl PartialEq for CodeBytes {
    fn eq(&self, other: &CodeBytes) -> bool {
        **self == **other
    }
}

impl Eq for CodeBytes {}

impl std::fmt::Debug for CodeBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeBytes")
            .field("len", &self.len)
            .field("in_a_file", &self.file.is_some())
            .finish()
    }
}

impl Extend<u8> for CodeBytes {
    fn extend<T: IntoIterator<Item = u8>>(&mut self, iter: T) {
        for b in iter {
            self.push(b);
        }
    }
}

impl<'a> Extend<&'a u8> for CodeBytes {
    fn extend<T: IntoIterator<Item = &'a u8>>(&mut self, iter: T) {
        for &b in iter {
            self.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_keeps_its_bytes_and_reads_as_a_slice() {
        let mut b = CodeBytes::with_capacity(10);
        let page = page_size();
        assert_eq!(b.capacity(), page);
        for i in 0..3 * page + 5 {
            b.push(i as u8);
        }
        b.extend_from_slice(&[7; 9000]);
        b.pad_to(b.len() + 3, 0xcc);
        b.pad_to(1, 0); // never shortens
        assert_eq!(b.len(), 3 * page + 5 + 9000 + 3);
        assert!(b.capacity() >= b.len() && b.capacity().is_multiple_of(page));
        assert!(b[..3 * page + 5]
            .iter()
            .enumerate()
            .all(|(i, &x)| x == i as u8));
        assert!(b[3 * page + 5..b.len() - 3].iter().all(|&x| x == 7));
        assert_eq!(&b[b.len() - 3..], &[0xcc; 3]);
        b[0] = 42;
        let c = b.clone();
        assert_eq!(c, b);
        assert_eq!(c[0], 42);
    }

    #[test]
    fn its_file_holds_what_was_written() {
        let mut b = CodeBytes::with_capacity(1 << 20);
        b.extend_from_slice(b"\x90\xc3");
        let (file, len) = b.into_file().expect("memfd_create works here");
        assert_eq!(len, 2);
        let mut read = [0u8; 2];
        // SAFETY: reads two bytes of our file into a two-byte buffer.
        let n = unsafe { libc::pread(file.as_raw_fd(), read.as_mut_ptr().cast(), 2, 0) };
        assert_eq!((n, read), (2, *b"\x90\xc3"));
        // The unused room went back.
        // SAFETY: a stat is plain data, valid zeroed.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat of our own file into a stat.
        let r = unsafe { libc::fstat(file.as_raw_fd(), &mut st) };
        assert_eq!(r, 0);
        assert_eq!(st.st_size as usize, page_size());
    }
}
