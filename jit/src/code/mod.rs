//! Executable memory and the metadata tables recorded with the code.
//!
//! [`memory`] publishes code W^X at a fixed address; [`tables`] records
//! function and block ranges, unsafe regions, back-edges, call returns and
//! hoisted loads through one API while a backend emits, and answers
//! lock-free, allocation-free lookups afterwards.

pub mod buffer;
pub mod disasm;
pub mod memory;
pub mod place;
pub mod prefault;
pub mod room;
pub mod tables;

pub use buffer::CodeBuffer;
pub use memory::{
    under_qemu_user, writable_and_executable_mappings, EmulatorRefresh, ExecutableMemory,
    WritableView,
};
pub use room::CodeRoom;
pub use tables::{
    BackEdge, BlockLoop, BlockRange, CallKind, CallSite, CodeTables, FunctionRange, HoistedLoad,
    InstStart, LoopInfo, MetadataBuilder, PatchSite, PollSite, StubRange, UnsafeKind, UnsafeRegion,
};
