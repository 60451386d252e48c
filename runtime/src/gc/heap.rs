//! Allocation of PIR objects in the layout generated code expects
//! (see [`preempt_jit::abi`]): a length word, a GC word, then a tag word
//! and a value word per slot, all zero (fresh) when allocated.
//!
//! Objects are bump-allocated from 1 MiB chunks of zeroed anonymous memory;
//! an object larger than a chunk gets its own mapping. Nothing is freed yet.

use std::sync::Mutex;

use preempt_jit::abi::{object_bytes, DEFAULT_HEAP_LIMIT};

const CHUNK: usize = 1 << 20;

#[derive(Debug, Default)]
struct Arena {
    /// Next free byte and end of the current chunk.
    next: usize,
    end: usize,
    /// Every mapping, as (address, length).
    mappings: Vec<(usize, usize)>,
    bytes_allocated: u64,
    objects_allocated: u64,
}

/// Why an allocation failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AllocError {
    Negative,
    /// Past the heap limit, or the system refused memory.
    OutOfMemory,
}

/// The heap of one program.
#[derive(Debug)]
pub struct Heap {
    arena: Mutex<Arena>,
    limit: u64,
}

impl Default for Heap {
    fn default() -> Heap {
        Heap::with_limit(DEFAULT_HEAP_LIMIT)
    }
}

fn map_zeroed(len: usize) -> Option<usize> {
    // SAFETY: a fresh private anonymous mapping; checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}

impl Heap {
    pub fn new() -> Heap {
        Heap::default()
    }

    /// A heap that refuses to grow past `limit` bytes of objects.
    pub fn with_limit(limit: u64) -> Heap {
        Heap {
            arena: Mutex::new(Arena::default()),
            limit,
        }
    }

    /// Allocates an object of `slots` fresh slots and returns its address.
    pub fn alloc(&self, slots: i64) -> Result<usize, AllocError> {
        if slots < 0 {
            return Err(AllocError::Negative);
        }
        let bytes = object_bytes(slots);
        let mut a = self.arena.lock().unwrap_or_else(|e| e.into_inner());
        if a.bytes_allocated.saturating_add(bytes) > self.limit {
            return Err(AllocError::OutOfMemory);
        }
        let size = bytes as usize;
        let addr = if size > CHUNK / 4 {
            let len = size.div_ceil(4096) * 4096;
            let p = map_zeroed(len).ok_or(AllocError::OutOfMemory)?;
            a.mappings.push((p, len));
            p
        } else {
            if a.next + size > a.end {
                let p = map_zeroed(CHUNK).ok_or(AllocError::OutOfMemory)?;
                a.mappings.push((p, CHUNK));
                a.next = p;
                a.end = p + CHUNK;
            }
            let p = a.next;
            a.next += size.div_ceil(16) * 16;
            p
        };
        a.bytes_allocated += size as u64;
        a.objects_allocated += 1;
        // SAFETY: `addr` is the start of `size` fresh, zeroed, writable
        // bytes owned by the heap; the length word is written once here.
        unsafe { (addr as *mut i64).write(slots) };
        Ok(addr)
    }

    pub fn bytes_allocated(&self) -> u64 {
        self.arena
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bytes_allocated
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        let a = self.arena.get_mut().unwrap_or_else(|e| e.into_inner());
        for &(p, len) in &a.mappings {
            // SAFETY: each mapping was made by `map_zeroed` and is unmapped
            // once; no code uses the heap once it is dropped.
            unsafe { libc::munmap(p as *mut libc::c_void, len) };
        }
    }
}
