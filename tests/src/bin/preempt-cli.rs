//! The `preempt` command line, built inside the tests package so that
//! integration tests can run it as a subprocess (`CARGO_BIN_EXE_preempt-cli`)
//! without depending on a separately built binary.

#[global_allocator]
static ALLOCATOR: preempt::alloc::FailCleanly = preempt::alloc::FailCleanly;

fn main() -> std::process::ExitCode {
    preempt::main_with(std::env::args())
}
