//! Optimisation passes over verified PIR.
//!
//! There is one optimisation level that does something. Its first pass
//! exists to build a hazard, not to win benchmarks: at level 1 (the
//! default) [`licm`] moves plain global loads out of loops that cannot
//! change them, which is exactly what a Go compiler may do to `for !done
//! {}` (seed Bug 1). The program then spins on a stale register until
//! something outside the loop ends it. Its second, [`tailrec`], turns the
//! last self-call of a recursion into a loop (accumulator recursion
//! elimination, as LLVM does), only where no traceback, stack overflow or
//! preemption point can tell. Level 0 leaves the program untouched, so the
//! same source can be run both ways and compared.
//!
//! Contract with the rest of the pipeline:
//!
//! - Input: a program that parsed and verified (register types filled in).
//! - Output: a program that still prints, re-parses to an equal program
//!   (`parse(print(p)) == p`, registers are renumbered into text order for
//!   that) and verifies. New registers carry their type.
//! - Loads that were moved carry [`Hoisted`](crate::ir::Hoisted) marks;
//!   [`hoisted_loads`] and [`loads_hoisted_out_of`] are the queries that
//!   disassembly and the hang diagnosis use to find them.

pub mod licm;
pub mod tailrec;

pub use licm::{
    hoisted_loads, loads_hoisted_out_of, loop_barrier, Barrier, HoistedLoad, LicmStats,
};

use crate::ir::{FuncId, Program};
use crate::par::Threads;

/// The level used when neither the program (`set opt = N`) nor the command
/// line says otherwise.
pub const DEFAULT_LEVEL: u8 = 1;

/// Optimises `prog` in place at `level`.
///
/// - `0`: nothing at all; the program is left exactly as it was.
/// - `1` and above: loop-invariant code motion of plain global loads
///   ([`licm::run_function`]), then accumulator recursion elimination
///   ([`tailrec::run_function`]), function by function. Levels above 1
///   are accepted and mean 1, so a newer program asking for more still
///   gets the hazard it is about.
pub fn optimize(prog: &mut Program, level: u8) {
    optimize_with(prog, level, Threads::Auto);
}

/// [`optimize`] on up to `threads` threads. Both passes work on one
/// function at a time, reading only the program's globals, so functions
/// are optimised in runs on several threads ([`crate::par`]) with the
/// result one thread gives.
pub fn optimize_with(prog: &mut Program, level: u8, threads: Threads) {
    if level == 0 {
        return;
    }
    let pieces = crate::par::function_pieces(&prog.funcs, threads);
    let Program { globals, funcs, .. } = prog;
    let globals = &*globals;
    crate::par::map_mut(funcs, &pieces, |first, run| {
        for (k, func) in run.iter_mut().enumerate() {
            licm::run_function(globals, func);
            tailrec::run_function(FuncId::new(first + k), func);
        }
    });
}
