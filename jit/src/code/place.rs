//! Where a PC lies in a compiled module, as its tables say: the one
//! description the hang diagnosis and the every-instruction harness share.

use std::fmt::Write;

use super::disasm;
use super::tables::{BlockRange, FunctionRange, StubRange, UnsafeRegion};
use crate::ir::Span;
use crate::module::Module;

/// Where a PC lies.
#[derive(Clone, Copy, Debug)]
pub enum Place<'m> {
    /// In a JIT function.
    Function {
        func: &'m FunctionRange,
        /// Bytes from the function's start.
        offset: usize,
        /// None in the prologue, the epilogue or an out-of-line path.
        block: Option<&'m BlockRange>,
        unsafe_region: Option<&'m UnsafeRegion>,
        /// The PIR instruction's place in the source (the function's
        /// when the PC starts no recorded instruction).
        span: Span,
    },
    /// In one of the runtime's stubs.
    Stub(&'m StubRange),
    /// Outside the module's code: the scheduler, a runtime call, foreign
    /// code.
    Outside,
}

impl Module {
    /// Where `pc` lies.
    pub fn place(&self, pc: usize) -> Place<'_> {
        let t = &self.tables;
        let Some(func) = t.function_at(pc) else {
            return t.stub_at(pc).map_or(Place::Outside, Place::Stub);
        };
        let block = t.block_at(pc);
        Place::Function {
            func,
            offset: pc - func.start,
            block,
            unsafe_region: t.unsafe_region_at(pc),
            // Out-of-line code follows the function's last block: the
            // instruction before it in the code is not the one it serves.
            span: block.and(t.inst_at(pc)).map_or(func.span, |i| i.span),
        }
    }

    /// `pc` in one line: `@f+0x1c in block loop [scratch register]: add
    /// rax, 1`, or the stub's name, or that it is outside the code.
    pub fn describe_pc(&self, pc: usize) -> String {
        let (func, offset, block, unsafe_region) = match self.place(pc) {
            Place::Stub(s) => return format!("in the runtime stub {}", s.name),
            Place::Outside => return format!("outside the JIT code{}", native_place(pc)),
            Place::Function {
                func,
                offset,
                block,
                unsafe_region,
                ..
            } => (func, offset, block, unsafe_region),
        };
        let mut s = format!("@{}+{offset:#x}", func.name);
        match block {
            Some(b) => {
                let _ = write!(s, " in block {}", self.names.block(b.func, b.block));
            }
            None => s.push_str(" (no block: prologue, epilogue or out-of-line path)"),
        }
        if let Some(r) = unsafe_region {
            let _ = write!(s, " [{}]", r.kind.name());
        }
        let base = self.code.base();
        let bytes = self.code.bytes();
        if let Some(d) = disasm::decode(self.arch, bytes, func.start - base, func.end - base)
            .into_iter()
            .find(|d| d.offset + base == pc)
        {
            let _ = write!(s, ": {}", d.text);
        }
        s
    }
}

/// Where `pc` lies in the process's own code, for a PC outside the JIT
/// code: `, in FILE at offset OFF` (the offset from the object's load
/// base, which `addr2line -e FILE OFF` turns into a function and a line
/// for a position-independent executable or a shared library), with the
/// nearest exported symbol when the object has one; empty when no
/// loaded object holds it. Not for a signal handler (`dladdr` may take
/// the loader's lock).
pub fn native_place(pc: usize) -> String {
    // SAFETY: an all-zero Dl_info is a valid value (null pointers); dladdr
    // only writes it, and reads nothing at `pc` itself.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `info` is valid for writes.
    if unsafe { libc::dladdr(pc as *const libc::c_void, &mut info) } == 0
        || info.dli_fname.is_null()
        || info.dli_fbase.is_null()
    {
        return String::new();
    }
    // SAFETY: dladdr set dli_fname to the object's NUL-terminated name,
    // which lives as long as the object stays loaded.
    let file = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_string_lossy();
    let mut s = format!(
        ", in {file} at offset {:#x}",
        pc.wrapping_sub(info.dli_fbase as usize)
    );
    if !info.dli_sname.is_null() && !info.dli_saddr.is_null() {
        // SAFETY: as for dli_fname.
        let sym = unsafe { std::ffi::CStr::from_ptr(info.dli_sname) }.to_string_lossy();
        let _ = write!(
            s,
            " ({sym}+{:#x})",
            pc.wrapping_sub(info.dli_saddr as usize)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::native_place;

    #[inline(never)]
    fn here() -> usize {
        here as *const () as usize
    }

    #[test]
    fn a_pc_in_this_binary_is_placed_in_its_file_at_its_offset() {
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        let s = native_place(here());
        assert!(s.starts_with(", in "), "{s}");
        assert!(s.contains(&name), "{s} names {name}");
        let off = s.split("at offset 0x").nth(1).unwrap();
        let off = usize::from_str_radix(off.split(' ').next().unwrap(), 16).unwrap();
        let len = std::fs::metadata(&exe).unwrap().len() as usize;
        assert!(
            off > 0 && off < len,
            "offset {off:#x} inside the file's {len} bytes"
        );
    }

    #[test]
    fn a_pc_in_libc_names_its_symbol_and_one_in_no_object_nothing() {
        let s = native_place(libc::getpid as *const () as usize);
        assert!(s.contains("libc"), "{s}");
        assert!(s.contains("getpid+0x0"), "{s}");
        assert_eq!(native_place(0x10), "");
    }
}
