//! Lowering shared by every backend: register allocation and what the
//! frame must hold. The backends turn [`regalloc::Location`]s into their
//! own registers and frame offsets.

pub mod plan;
pub mod regalloc;

pub use plan::FunctionPlan;
pub use regalloc::{allocate, Allocation, Location, RegisterFile};
