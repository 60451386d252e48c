//! The runtime preempt runs PIR goroutines on.
