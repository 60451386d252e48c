//! Executable memory that is never writable and executable at once, and
//! never moves.
//!
//! Code is assembled position-independently into a [`CodeRoom`], then
//! published in one of two ways:
//!
//! - **sealed** ([`ExecutableMemory::seal`]): the room's own pages are
//!   made read+execute where they are, with one `mprotect` (read+write
//!   before, never both). Nothing is copied. This is how code is
//!   published unless it is to be patched.
//! - **through a file** ([`ExecutableMemory::publish`]): the bytes are
//!   copied into a shared-memory file (`memfd`) mapped twice: once
//!   read+execute (the address code runs at), and once read+write (a
//!   different address, only while bytes are patched,
//!   [`ExecutableMemory::writable_view`]). Code compiled for the patch
//!   mechanism is published so.
//!
//! Either way no page is ever mapped writable and executable at the same
//! address, which `/proc/self/maps` shows and a test checks, and the
//! executable view never moves for the life of the process or of the
//! [`ExecutableMemory`], so return addresses held by suspended goroutines
//! stay valid.
//!
//! dynasmrt's own `ExecutableBuffer` is not used: its `commit` may move code
//! to a larger mapping and its `alter` remaps the whole buffer writable
//! while other threads may be executing it.

use std::io;
use std::ptr::NonNull;

use super::room::CodeRoom;

/// A published block of machine code.
#[derive(Debug)]
pub struct ExecutableMemory {
    /// The read+execute view.
    exec: NonNull<u8>,
    /// Bytes of code (the mapping is rounded up to whole pages).
    len: usize,
    map_len: usize,
    /// The memfd behind both views, kept so a writable view can be mapped
    /// again for patching; `None` for a sealed room, which has no other
    /// view.
    fd: Option<libc::c_int>,
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
            fd: Some(fd),
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

    /// Publishes the code assembled in `room` where it is: the pages it
    /// wrote become read+execute, and the room's unused pages are given
    /// back. The code has no writable view (see [`Self::publish`]).
    pub fn seal(room: CodeRoom) -> io::Result<ExecutableMemory> {
        if room.is_empty() {
            // No page to turn executable; a file holds the empty code.
            return ExecutableMemory::publish(&room);
        }
        let (ptr, len, cap) = room.into_raw();
        let map_len = len.next_multiple_of(page_size());
        // SAFETY: `ptr..ptr + cap` is the room's own mapping, given up by
        // `into_raw` to this function: the tail past the code is unmapped,
        // the rest made read+execute (read+write until then; the change
        // is one call, so never both).
        let r = unsafe {
            if cap > map_len {
                libc::munmap(ptr.as_ptr().add(map_len).cast(), cap - map_len);
            }
            libc::mprotect(
                ptr.as_ptr().cast(),
                map_len,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: unmaps what is left of the room, still ours.
            unsafe { libc::munmap(ptr.as_ptr().cast(), map_len) };
            return Err(e);
        }
        let mem = ExecutableMemory {
            exec: ptr,
            len,
            map_len,
            fd: None,
        };
        mem.synchronize_icache(0, len);
        Ok(mem)
    }

    /// Maps a second, read+write view of the same pages at another
    /// address: only for code published through a file.
    pub fn writable_view(&self) -> io::Result<WritableView> {
        let fd = self.fd.ok_or_else(no_writable_view)?;
        // SAFETY: a shared read+write mapping of our memfd at a fresh
        // address; never executable.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                self.map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
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

    /// What [`EmulatorRefresh::refresh`] needs to map this code again:
    /// only for code published through a file.
    pub fn emulator_refresh(&self) -> io::Result<EmulatorRefresh> {
        Ok(EmulatorRefresh {
            fd: self.fd.ok_or_else(no_writable_view)?,
            base: self.base(),
            map_len: self.map_len,
        })
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
        // SAFETY: unmaps the view made in `publish` or `seal` and closes
        // our fd, if any. The owner guarantees no thread still executes
        // this code (the runtime keeps a program's memory alive until the
        // process ends).
        unsafe {
            libc::munmap(self.exec.as_ptr().cast(), self.map_len);
            if let Some(fd) = self.fd {
                libc::close(fd);
            }
        }
    }
}

/// The error for a writable view of sealed code.
fn no_writable_view() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this code was published without a writable view: only code compiled for the patch mechanism has one",
    )
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

    /// A function returning 42, for the host.
    fn returns_42() -> &'static [u8] {
        if cfg!(target_arch = "aarch64") {
            // mov w0, #42; ret
            &[0x40, 0x05, 0x80, 0x52, 0xc0, 0x03, 0x5f, 0xd6]
        } else {
            // mov eax, 42; ret
            &[0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3]
        }
    }

    #[test]
    fn a_sealed_room_runs_where_it_was_written_and_is_never_writable() {
        let mut room = CodeRoom::with_capacity(1 << 20);
        room.extend_from_slice(returns_42());
        room.pad_to(3 * page_size() + 5, 0);
        let at = room.as_ptr() as usize;
        let len = room.len();
        let mem = ExecutableMemory::seal(room).unwrap();
        assert_eq!((mem.base(), mem.len()), (at, len), "sealed in place");
        assert_eq!(&mem.bytes()[..returns_42().len()], returns_42());
        // SAFETY: the code at `base` is a complete function of the C ABI
        // taking nothing and returning an int, published executable.
        let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(mem.base()) };
        assert_eq!(f(), 42);
        // The mapping holding the code is read+execute, from its first
        // page to its last.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let line = maps
            .lines()
            .find(|l| {
                let (lo, hi) = l
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .split_once('-')
                    .unwrap();
                let lo = usize::from_str_radix(lo, 16).unwrap();
                let hi = usize::from_str_radix(hi, 16).unwrap();
                lo <= at && at + len <= hi
            })
            .expect("one mapping holds the code");
        assert!(
            line.split_whitespace().nth(1).unwrap().starts_with("r-x"),
            "{line}"
        );
        assert_eq!(
            mem.writable_view().unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
        assert!(writable_and_executable_mappings().unwrap().is_empty());
    }
}
