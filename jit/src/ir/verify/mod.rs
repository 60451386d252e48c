//! The PIR verifier: the semantic rules of `IR.md` that the parser does not
//! check, and the register types every later pass relies on.
//!
//! The parser has already resolved every name (functions, globals, labels)
//! and range-checked literals and settings. What is left is about values:
//! which type each register has, whether each operand has the type its
//! instruction wants, and whether each register is defined on every path
//! that reads it.
//!
//! # One error, the right one
//!
//! The verifier reports exactly one error. A later rule often fails *because*
//! an earlier one did: a register defined as `%x = call @f()` of a function
//! that returns nothing has no type, so every use of `%x` would look like a
//! type error. To never show such a cascade, the checks run in phases, each
//! assuming what the earlier phases established; within a phase the error
//! that comes first in the text wins, and the next phase runs only when the
//! phase found nothing:
//!
//! 0. **Well-formedness**: every index points into its table and every
//!    instruction has the operand count its opcode wants. The parser always
//!    produces such programs; programs built or rewritten by passes are
//!    checked here instead of panicking later.
//! 1. **Shape**: the last block ends in a terminator, `ret` gives a value
//!    exactly when the function has a return type, call and spawn arity,
//!    `%d = call` of a function that returns nothing, `print` placeholder
//!    counts, at most one `default` arm per `select`, `@main`'s signature.
//!    None of these depend on types; several would otherwise leave a
//!    register without a type.
//! 2. **Undefined registers**: a register read somewhere but defined nowhere
//!    (not a parameter, never a destination, never a `recv ... into`).
//! 3. **Register types**: each register's type is the type of its first
//!    definition in the text: a parameter's declared type, an opcode's
//!    result type, a global's type for `load`, a callee's return type,
//!    `i64` for `recv ... into`, and for `copy X` the type of `X`, which
//!    may itself be decided by a definition further down the text. Every
//!    later definition must agree.
//! 4. **Operand types**: every operand, argument, condition, returned value,
//!    stored value and select arm against the opcode table and the
//!    signatures of callees and globals.
//! 5. **Definite assignment**: over the blocks reachable from the entry, a
//!    register read where some path from the entry has not defined it.
//!    `recv %c into %v -> L` defines `%v` on the edge to `L` only, so the
//!    analysis works on edges, not on blocks. Unreachable blocks only went
//!    through phases 0 to 4.
//! 6. **The program**: `@main` exists. Last, so that a half-written file
//!    gets its real errors first.
//!
//! [`verify`] changes the program only when it succeeds: it then fills
//! every [`RegInfo::ty`](super::RegInfo::ty).
//!
//! # Decisions beyond IR.md
//!
//! - `spawn @f(...)` of a function that returns a value is accepted and the
//!   value is discarded, as Go's `go f()` does. So is a plain `call @f(...)`
//!   without a destination (an expression statement in Go).
//! - `print` counts `{}` pairs left to right without overlap; there is no
//!   escape for a literal `{}`.
//! - A `select` may name the same channel in several arms, and several
//!   arms may lead to the same block (with different `into` registers:
//!   each edge defines its own).
//! - Literal operands that can only panic (`div %x, 0`, `new -1`) are
//!   accepted: they are run-time errors in IR.md, and tests rely on them.
//!
//! The phases live in files by what they need: [`structure`] holds phases
//! 0 to 2, which need no types; [`types`] phases 3 and 4;
//! [`definite_assignment`] phase 5. This file runs them, keeps the first
//! error of each phase, reports the earliest phase's, and checks phase 6.
//! It runs phases 1 to 5 function by function rather than phase by phase,
//! on several threads for a large program ([`crate::par`]): each
//! function's phases see only that function and the others' signatures,
//! so the error reported is the same either way.

mod definite_assignment;
mod structure;
mod types;

use super::{Error, Function, Program, Span, Type};
use crate::par::{self, Threads};
use definite_assignment::definite_assignment;
use structure::{main_signature, shape, undefined_registers, well_formed};
use types::{register_types, OperandTypes};

/// Checks `prog` against the rules of the language and, when it is valid,
/// records every register's type in [`RegInfo::ty`](super::RegInfo::ty).
///
/// On error the program is left as it was and the returned error is the
/// first one in the text of the earliest phase that failed (see the module
/// documentation).
pub fn verify(prog: &mut Program) -> Result<(), Error> {
    verify_with(prog, Threads::Auto)
}

/// [`verify`] on `threads` threads: the same result, whatever their
/// number.
pub fn verify_with(prog: &mut Program, threads: Threads) -> Result<(), Error> {
    let types = check(prog, threads)?;
    for (func, tys) in prog.funcs.iter_mut().zip(types) {
        for (info, ty) in func.regs.iter_mut().zip(tys) {
            info.ty = ty;
        }
    }
    Ok(())
}

/// Runs every phase and returns the types of the registers of each function.
///
/// Phase 0 is checked for every function first. Phases 1 to 5 of one
/// function depend only on that function and on the declared signatures
/// of the others, so each function goes through all of them at once (its
/// data stays in the cache from one phase to the next), stopping at its
/// first phase with an error, and functions are checked in parallel. Each
/// phase keeps its own first error; the earliest phase with one decides,
/// as if the phases had run one after the other over the whole program.
fn check(prog: &Program, threads: Threads) -> Result<Vec<Vec<Option<Type>>>, Error> {
    let pieces = par::function_pieces(&prog.funcs, threads);

    // Phase 0 for every function before any later phase of any: those
    // read other functions' signatures, which must be well formed.
    let mut sink = Sink::default();
    for part in par::map(&pieces, |range| {
        let mut sink = Sink::default();
        for func in &prog.funcs[range] {
            well_formed(prog, func, &mut sink);
        }
        sink
    }) {
        sink.merge(part);
    }
    sink.finish()?;

    let parts = par::map(&pieces, |range| {
        let mut phases = PhaseSinks::default();
        let types: Vec<Vec<Option<Type>>> = prog.funcs[range]
            .iter()
            .map(|func| check_function(prog, func, &mut phases))
            .collect();
        (types, phases)
    });
    let mut phases = PhaseSinks::default();
    main_signature(prog, &mut phases.0[0]);
    let mut types = Vec::with_capacity(prog.funcs.len());
    for (t, p) in parts {
        types.extend(t);
        phases.merge(p);
    }
    for sink in &mut phases.0 {
        sink.finish()?;
    }

    if prog.main().is_none() {
        return Err(Error::new(
            Span::new(1, 1),
            "program has no function @main (execution starts at '@main()')",
        ));
    }
    Ok(types)
}

/// The first error of each of phases 1 to 5.
#[derive(Default)]
struct PhaseSinks([Sink; 5]);

impl PhaseSinks {
    fn merge(&mut self, other: PhaseSinks) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            mine.merge(theirs);
        }
    }
}

/// Phases 1 to 5 on one function, up to the first that reports an error;
/// the register types (meaningless if a phase failed).
fn check_function(prog: &Program, func: &Function, phases: &mut PhaseSinks) -> Vec<Option<Type>> {
    let [shape_sink, undefined, reg_types, operands, assignment] = &mut phases.0;
    let mut local = Sink::default();
    let failed = |local: &mut Sink, into: &mut Sink| {
        let failed = local.first.is_some();
        into.merge(std::mem::take(local));
        failed
    };
    shape(prog, func, &mut local);
    if failed(&mut local, shape_sink) {
        return Vec::new();
    }
    undefined_registers(func, &mut local);
    if failed(&mut local, undefined) {
        return Vec::new();
    }
    let tys = register_types(prog, func, &mut local);
    if failed(&mut local, reg_types) {
        return Vec::new();
    }
    OperandTypes {
        prog,
        func,
        tys: &tys,
    }
    .check(&mut local);
    if failed(&mut local, operands) {
        return Vec::new();
    }
    definite_assignment(func, &mut local);
    failed(&mut local, assignment);
    tys
}

/// Keeps the first error in the text among those reported in one phase.
///
/// The key is the position and then a sub-position (the operand index),
/// so that two errors on one line come out in the order of their operands
/// whichever order the analysis found them in. Messages are built only for
/// an error that becomes the first, which keeps pathological inputs with
/// thousands of errors cheap.
#[derive(Default)]
struct Sink {
    first: Option<((u32, u32, usize), Error)>,
}

impl Sink {
    fn report(&mut self, span: Span, sub: usize, message: impl FnOnce() -> String) {
        let key = (span.line, span.col, sub);
        if self.first.as_ref().is_none_or(|(k, _)| key < *k) {
            self.first = Some((key, Error::new(span, message())));
        }
    }

    /// Keeps the earlier of this sink's error and `other`'s.
    fn merge(&mut self, other: Sink) {
        if let Some((key, e)) = other.first {
            if self.first.as_ref().is_none_or(|(k, _)| key < *k) {
                self.first = Some((key, e));
            }
        }
    }

    fn finish(&mut self) -> Result<(), Error> {
        match self.first.take() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse;

    pub(super) fn verified(src: &str) -> Program {
        let mut p = parse(src).unwrap_or_else(|e| panic!("{}", e.render("t.pir", src)));
        verify(&mut p).unwrap_or_else(|e| panic!("{}", e.render("t.pir", src)));
        p
    }

    pub(super) fn error(src: &str) -> (u32, u32, String) {
        let mut p = parse(src).unwrap_or_else(|e| panic!("{}", e.render("t.pir", src)));
        let before = p.clone();
        let e = verify(&mut p).expect_err("should not verify");
        // A failed verification leaves the program untouched.
        assert!(p.funcs.iter().zip(&before.funcs).all(|(a, b)| a
            .regs
            .iter()
            .map(|r| r.ty)
            .eq(b.regs.iter().map(|r| r.ty))));
        (e.span.line, e.span.col, e.message)
    }

    #[test]
    fn shape_errors_come_before_the_type_errors_they_cause() {
        // `%x` has no type because @v returns nothing; the use of %x on
        // line 2 must not be what the user sees.
        let (l, c, m) = error(
            "func @v() {\n\
             \x20   ret\n\
             }\n\
             func @main() {\n\
             \x20   %y = add %x, 1\n\
             \x20   %x = call @v()\n\
             \x20   ret\n\
             }\n",
        );
        assert_eq!((l, c), (6, 5), "{m}");
        assert!(m.contains("@v returns nothing"), "{m}");
    }

    #[test]
    fn the_first_error_in_the_text_wins_across_functions() {
        let (l, _, m) = error(
            "func @f() -> i64 {\n\
             \x20   %a = add nil, 1\n\
             \x20   ret %a\n\
             }\n\
             func @main() {\n\
             \x20   %b = sub 1, nil\n\
             \x20   ret\n\
             }\n",
        );
        assert_eq!(l, 2, "{m}");
        // Two bad operands on one line: the first operand is reported.
        let (_, _, m) = error(
            "func @main() {\n\
             \x20   %p = copy nil\n\
             \x20   %c = chan 0\n\
             \x20   %b = sub %p, %c\n\
             \x20   ret\n\
             }\n",
        );
        assert!(m.starts_with("operand 1 of 'sub'"), "{m}");
    }

    #[test]
    fn main_is_required_and_has_a_fixed_signature() {
        let mut p = parse("").unwrap();
        let e = verify(&mut p).unwrap_err();
        assert_eq!(e.span.key(), (1, 1));
        assert!(e.message.contains("no function @main"));
        let (l, c, m) = error("func @main(%a: i64) {\n    ret\n}\n");
        assert_eq!((l, c, m.contains("no parameters")), (1, 6, true));
        let (_, _, m) = error("func @main() -> i64 {\n    ret 0\n}\n");
        assert!(m.contains("must return nothing"), "{m}");
    }
}
