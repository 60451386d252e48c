//! Running a program on the reference interpreter with the runtime's
//! conventions: the same output sink, configuration, watchdog and exit
//! statuses as JIT runs, so `--engine interp` is a drop-in comparison.

use preempt_jit::ir::Program;

use crate::{Observers, Outcome, Output, RunConfig};

/// Runs `prog` (verified) at optimisation `level` on the interpreter, on
/// the same scheduler as JIT code.
pub fn run(prog: &Program, level: u8, cfg: &RunConfig, obs: &Observers, out: Output) -> Outcome {
    let mut prog = prog.clone();
    preempt_jit::opt::optimize(&mut prog, level);
    crate::sched::run_interp(&prog, cfg, obs, out)
}
