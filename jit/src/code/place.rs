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
            Place::Outside => return "outside the JIT code".into(),
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
