//! `preempt`: see `preempt --help`.

fn main() -> std::process::ExitCode {
    preempt::main_with(std::env::args())
}
