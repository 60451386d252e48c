//! Instruction-set backends. Everything architecture-specific in the JIT
//! lives under `isa/<arch>/`; shared code selects a backend by [`Arch`]
//! value, never by `#[cfg(target_arch)]`.

pub mod x64;

use crate::ir::Program;
use crate::module::{Arch, Assembled};

/// Assembles a verified program for `arch`; `globals[i]` is the address
/// generated code uses for global `i`.
pub fn assemble(arch: Arch, prog: &Program, globals: &[usize]) -> Assembled {
    match arch {
        Arch::X86_64 => x64::assemble(prog, globals),
        Arch::Aarch64 => unimplemented!("the aarch64 backend"),
    }
}
