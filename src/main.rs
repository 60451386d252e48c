//! `preempt`: see `preempt --help`.

#[global_allocator]
static ALLOCATOR: preempt::alloc::FailCleanly = preempt::alloc::FailCleanly;

fn main() -> std::process::ExitCode {
    preempt::main_with(std::env::args())
}
