//! The async-signal-safe layer.
