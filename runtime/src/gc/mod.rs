//! The PIR heap.

pub mod heap;

pub use heap::Heap;
