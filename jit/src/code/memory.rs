//! Executable memory that is never writable and executable at once, and
//! never moves.
//!
//! Code is assembled position-independently into a byte vector, then
//! published into a shared-memory file (`memfd`) mapped twice: once
//! read+execute (the address code runs at, for the life of the process or
//! of the [`ExecutableMemory`]), and once read+write (a different address,
//! only while bytes are written or patched). No page is ever mapped
//! writable and executable at the same address, which `/proc/self/maps`
//! shows and a test checks. Because the executable view never moves,
//! return addresses held by suspended goroutines stay valid.
//!
//! dynasmrt's own `ExecutableBuffer` is not used: its `commit` may move code
//! to a larger mapping and its `alter` remaps the whole buffer writable
//! while other threads may be executing it.

use std::io;
use std::ptr::NonNull;

/// A published block of machine code.
#[derive(Debug)]
pub struct ExecutableMemory {
    /// The read+execute view.
    exec: NonNull<u8>,
    /// Bytes of code (the mapping is rounded up to whole pages).
    len: usize,
    map_len: usize,
    /// The memfd behind both views, kept so a writable view can be mapped
    /// again for patching.
    fd: libc::c_int,
}

// SAFETY: the executable view is immutable through this type (writes go
// through a separate, temporary view), so sharing it between threads is as
// safe as sharing `&[u8]`.
unsafe impl Send for ExecutableMemory {}
// SAFETY: see `Send`.
unsafe impl Sync for ExecutableMemory {}

/// The system's page size (4096 if it cannot be read).
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// A temporary read+write view of the same pages; unmapped on drop.
#[derive(Debug)]
pub struct WritableView {
    ptr: NonNull<u8>,
    map_len: usize,
    len: usize,
}

// SAFETY: the view is a private mapping this value owns; its bytes are
// reached only through `&mut self`, so moving it to another thread moves
// the only access with it.
unsafe impl Send for WritableView {}

/// Makes code bytes written through a writable view visible to
/// instruction fetch (a no-op on x86-64, `DC CVAU`/`IC IVAU` and barriers
/// on aarch64), given those bytes at their executable address.
pub fn synchronize_icache(code: &[u8]) {
    dynasmrt::cache_control::synchronize_icache(code);
}

impl WritableView {
    /// The bytes of the code, writable. Changes are visible at once through
    /// the executable view (same physical pages); the caller is responsible
    /// for the architecture's cross-modifying-code rules.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` maps at least `len` bytes read+write for the life of
        // `self`, and `&mut self` makes this the only Rust view of them.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for WritableView {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `writable_view`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.map_len);
        }
    }
}

impl ExecutableMemory {
    /// Publishes `code` (position-independent) at a fresh, fixed address.
    pub fn publish(code: &[u8]) -> io::Result<ExecutableMemory> {
        let page = page_size();
        let map_len = code.len().max(1).div_ceil(page) * page;
        // SAFETY: memfd_create with a NUL-terminated name and valid flags.
        let fd = unsafe { libc::memfd_create(c"preempt-jit-code".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fail = |fd| {
            let e = io::Error::last_os_error();
            // SAFETY: closing the fd we opened above.
            unsafe { libc::close(fd) };
            e
        };
        // SAFETY: `fd` is our memfd; ftruncate sizes it.
        if unsafe { libc::ftruncate(fd, map_len as libc::off_t) } != 0 {
            return Err(fail(fd));
        }
        // SAFETY: a shared read+execute mapping of the memfd, at an address
        // the kernel chooses; checked for MAP_FAILED below.
        let exec = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if exec == libc::MAP_FAILED {
            return Err(fail(fd));
        }
        let mem = ExecutableMemory {
            exec: NonNull::new(exec.cast()).expect("mmap never returns null on success"),
            len: code.len(),
            map_len,
            fd,
        };
        // The code goes in through the file, in one system call for the
        // kernel to copy, rather than through a writable mapping faulted
        // in a page at a time.
        let mut written = 0;
        while written < code.len() {
            let rest = &code[written..];
            // SAFETY: writes `rest` (valid for its length) to our memfd at
            // offset `written`, inside the size set above.
            let n = unsafe {
                libc::pwrite(fd, rest.as_ptr().cast(), rest.len(), written as libc::off_t)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the code file took no bytes",
                ));
            }
            written += n as usize;
        }
        mem.synchronize_icache(0, code.len());
        Ok(mem)
    }

    /// Maps a second, read+write view of the same pages at another address.
    pub fn writable_view(&self) -> io::Result<WritableView> {
        // SAFETY: a shared read+write mapping of our memfd at a fresh
        // address; never executable.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                self.map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(WritableView {
            ptr: NonNull::new(p.cast()).expect("mmap never returns null on success"),
            map_len: self.map_len,
            len: self.len,
        })
    }

    /// What [`EmulatorRefresh::refresh`] needs to map this code again.
    pub fn emulator_refresh(&self) -> EmulatorRefresh {
        EmulatorRefresh {
            fd: self.fd,
            base: self.base(),
            map_len: self.map_len,
        }
    }

    /// Makes bytes written through a writable view visible to instruction
    /// fetch on this core (a no-op on x86-64, cache maintenance on aarch64).
    pub fn synchronize_icache(&self, offset: usize, len: usize) {
        let end = (offset + len).min(self.len);
        if offset < end {
            dynasmrt::cache_control::synchronize_icache(&self.bytes()[offset..end]);
        }
    }

    /// The address the code runs at.
    pub fn base(&self) -> usize {
        self.exec.as_ptr() as usize
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `pc` lies in this code.
    pub fn contains(&self, pc: usize) -> bool {
        pc >= self.base() && pc < self.base() + self.len
    }

    /// The published bytes, read through the executable view.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the executable view maps `len` readable bytes for the life
        // of `self`.
        unsafe { std::slice::from_raw_parts(self.exec.as_ptr(), self.len) }
    }
}

impl Drop for ExecutableMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps the view made in `publish` and closes our fd. The
        // owner guarantees no thread still executes this code (the runtime
        // keeps a program's memory alive until the process ends).
        unsafe {
            libc::munmap(self.exec.as_ptr().cast(), self.map_len);
            libc::close(self.fd);
        }
    }
}

/// Under qemu-user, code rewritten through the writable view stays stale:
/// the emulator keeps its translation of the executable view, and only
/// notices writes through that view's own addresses (which are never
/// writable here) or a change of its mapping. `refresh` maps the
/// executable view again over itself, same file, same address, read and
/// execute, which the kernel does atomically (the bytes never change or
/// go away for a thread running them) and which makes the emulator drop
/// its translations of those pages. Not needed, and not used, on
/// hardware: there the architecture's cache maintenance does the job.
#[derive(Clone, Copy, Debug)]
pub struct EmulatorRefresh {
    fd: libc::c_int,
    base: usize,
    map_len: usize,
}

impl EmulatorRefresh {
    /// # Safety
    ///
    /// The [`ExecutableMemory`] this came from must still be alive.
    pub unsafe fn refresh(&self) -> io::Result<()> {
        // SAFETY: replaces our own read+execute mapping of our memfd with
        // an identical one at the same address (MAP_FIXED over a mapping
        // we own, never writable).
        let p = unsafe {
            libc::mmap(
                self.base as *mut libc::c_void,
                self.map_len,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_SHARED | libc::MAP_FIXED,
                self.fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Whether this process runs under qemu-user, as the aarch64 lane and
/// `make aarch64-demo` say through `PREEMPT_QEMU_USER=1`.
pub fn under_qemu_user() -> bool {
    std::env::var("PREEMPT_QEMU_USER").is_ok_and(|v| v == "1")
}

/// A mapping of the process that is both writable and executable, as
/// `/proc/self/maps` reports it (used by tests and `preempt` self-checks).
pub fn writable_and_executable_mappings() -> io::Result<Vec<String>> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    Ok(maps
        .lines()
        .filter(|l| {
            let perms = l.split_whitespace().nth(1).unwrap_or("");
            perms.len() >= 3 && &perms[1..2] == "w" && &perms[2..3] == "x"
        })
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_keeps_bytes_and_address() {
        let code = vec![0xC3u8; 10_000];
        let mem = ExecutableMemory::publish(&code).unwrap();
        assert_eq!(mem.bytes(), &code[..]);
        assert!(mem.contains(mem.base() + 9_999));
        assert!(!mem.contains(mem.base() + 10_000));
        let base = mem.base();
        {
            let mut w = mem.writable_view().unwrap();
            w.bytes_mut()[5] = 0x90;
        }
        assert_eq!(mem.base(), base, "code never moves");
        assert_eq!(mem.bytes()[5], 0x90, "the writable view aliases the code");
        assert!(writable_and_executable_mappings().unwrap().is_empty());
    }
}
