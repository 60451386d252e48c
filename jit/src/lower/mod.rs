//! Lowering shared by every backend: the register tables, register
//! allocation, what the frame must hold, and the lowering itself, written
//! once over per-architecture hooks.
//!
//! [`function`] and [`control`] walk each function, emit it through the
//! [`Machine`] hooks of the target architecture and record the metadata
//! the runtime trusts; `isa/<arch>/` holds only the hooks, the stubs and
//! the encodings that differ.

mod control;
mod function;
#[cfg(test)]
pub(crate) mod golden;
pub mod machine;
pub mod plan;
pub mod regalloc;
pub mod registers;

pub use function::{assemble, Lower};
pub use machine::Machine;
pub use plan::FunctionPlan;
pub use regalloc::{allocate, Allocation, Location};
pub use registers::{RegSet, Register, RegisterFile, RegisterTable, Role};
