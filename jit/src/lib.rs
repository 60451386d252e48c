//! preempt-jit: PIR -> machine code and the tables the runtime reads.
//!
//! The pipeline: [`ir`] (text, entities, verifier) -> [`opt`] (LICM) ->
//! `lower` (register allocation, frame layout) -> `isa::<arch>` (emission)
//! -> `code` (executable memory and metadata tables). [`interp`] is the
//! reference interpreter every backend is tested against.

pub mod fault;
pub mod ir;
pub mod opt;
