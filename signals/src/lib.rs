//! preempt-signals: the async-signal-safe layer.
//!
//! Depends on nothing else in the workspace. [`context`] is the only code
//! that touches `ucontext_t` (one file per architecture behind one
//! [`MachineContext`] type); [`handler`] installs, chains and restores
//! handlers and sends thread-directed signals; [`sampler`] reads another
//! thread's PC (the watchdog uses it to say where a hung program is).
//!
//! Code that runs inside a signal handler here never allocates, takes a
//! lock, panics or formats.

pub mod context;
pub mod handler;
pub mod sampler;

pub use context::{MachineContext, X86State};
