//! Benchmark suites behind `preempt bench`.
