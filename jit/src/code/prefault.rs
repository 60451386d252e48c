//! Faulting memory in on one thread ahead of another that is about to
//! write it.
//!
//! A large compilation writes tens of megabytes of code and tables into
//! room it reserved up front, and on a virtual machine each first write to
//! a page costs a fault of microseconds. With two threads assembling, the
//! one that plans functions had time to spare and the one that emits them
//! none: the planner faults in the reserved room a little ahead of the
//! emitter (`madvise(MADV_POPULATE_WRITE)`), which then writes to pages
//! already there. The contents are not touched; only where the kernel
//! does the work changes. (The two threads are now about as busy: more
//! work moved to the planner, such as allocating the file the code is
//! published through, made assembly slower, not faster.)

/// Address ranges to fault in, in step with the progress of the thread
/// that will write them.
#[derive(Debug, Default)]
pub struct Prefault {
    /// Page-aligned `[start, end)` ranges, and how far each is faulted in.
    ranges: Vec<(usize, usize, usize)>,
}

impl Prefault {
    /// Adds the room `v` has reserved beyond its length: the memory its
    /// next pushes write.
    pub fn spare<T>(&mut self, v: &Vec<T>) {
        let size = std::mem::size_of::<T>();
        let base = v.as_ptr() as usize;
        self.range(base + v.len() * size, base + v.capacity() * size);
    }

    /// Adds the whole pages of `[start, end)`, memory that another thread
    /// is about to write.
    pub fn range(&mut self, start: usize, end: usize) {
        let page = super::memory::page_size();
        let (start, end) = (start.next_multiple_of(page), end / page * page);
        if end > start {
            self.ranges.push((start, end, start));
        }
    }

    /// Faults in the first `fraction` (0 to 1) of every range, as far as
    /// it is not already.
    pub fn advance(&mut self, fraction: f64) {
        let page = super::memory::page_size();
        for (start, end, done) in &mut self.ranges {
            let len = ((*end - *start) as f64 * fraction.clamp(0.0, 1.0)) as usize;
            let target = (*start + len / page * page).min(*end);
            if target > *done {
                // Done or not, the writer faults in what is left.
                let _ = populate_write(*done, target - *done);
                *done = target;
            }
        }
    }
}

/// Faults in `len` bytes from page-aligned `addr` as if each page were
/// written, without writing; whether the kernel did. A failure is not an
/// error: a kernel without `MADV_POPULATE_WRITE` (before Linux 5.14) or an
/// emulator that does not pass it on leaves the faults to the writer, as
/// without this module.
fn populate_write(addr: usize, len: usize) -> bool {
    // SAFETY: MADV_POPULATE_WRITE changes no contents and creates no
    // reference to the memory; it only maps the pages of the range
    // writable. The range lies in an allocation of a vector another thread
    // is filling; should that vector move meanwhile, the range is either
    // unmapped (the call fails, harmlessly) or reused by another
    // allocation (whose contents it does not change either).
    unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faulting_in_keeps_what_the_vector_holds_and_what_it_is_given() {
        let mut v: Vec<u64> = Vec::with_capacity(1 << 20);
        v.extend(0..1000);
        let mut p = Prefault::default();
        p.spare(&v);
        assert_eq!(p.ranges.len(), 1);
        let (start, end, _) = p.ranges[0];
        assert!(start >= v.as_ptr() as usize + 1000 * 8);
        assert!(end <= v.as_ptr() as usize + (1 << 20) * 8);
        p.advance(0.5);
        assert!(p.ranges[0].2 > start && p.ranges[0].2 < end);
        p.advance(2.0);
        assert_eq!(p.ranges[0].2, end);
        // Every page of the range is now in memory, where the kernel does
        // it (Linux 5.14 and later; not under qemu-user, which does not
        // pass the advice on).
        if !crate::code::under_qemu_user() {
            let pages = (end - start) / crate::code::memory::page_size();
            let mut resident = vec![0u8; pages];
            // SAFETY: mincore reads the page tables of the range, inside
            // `v`'s allocation, into a vector of one byte per page.
            let r = unsafe {
                libc::mincore(
                    start as *mut libc::c_void,
                    end - start,
                    resident.as_mut_ptr(),
                )
            };
            assert_eq!(r, 0);
            assert!(resident.iter().all(|&b| b & 1 == 1), "pages left out");
        }
        v.extend(1000..(1 << 20));
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
    }

    #[test]
    fn a_full_vector_has_no_room_to_fault_in() {
        let v: Vec<u64> = (0..10).collect();
        let mut p = Prefault::default();
        p.spare(&v);
        p.advance(1.0);
        assert!(p.ranges.is_empty());
    }
}
