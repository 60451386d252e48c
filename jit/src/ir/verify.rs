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

use super::cfg::Cfg;
use super::{
    ArmKind, BlockId, Error, Format, FuncId, Function, GlobalId, InstKind, Opcode, Operand,
    Program, Reg, Span, TermKind, Type,
};

/// Checks `prog` against the rules of the language and, when it is valid,
/// records every register's type in [`RegInfo::ty`](super::RegInfo::ty).
///
/// On error the program is left as it was and the returned error is the
/// first one in the text of the earliest phase that failed (see the module
/// documentation).
pub fn verify(prog: &mut Program) -> Result<(), Error> {
    let types = check(prog)?;
    for (func, tys) in prog.funcs.iter_mut().zip(types) {
        for (info, ty) in func.regs.iter_mut().zip(tys) {
            info.ty = ty;
        }
    }
    Ok(())
}

/// Runs every phase and returns the types of the registers of each function.
fn check(prog: &Program) -> Result<Vec<Vec<Option<Type>>>, Error> {
    let mut sink = Sink::default();
    well_formed(prog, &mut sink);
    sink.finish()?;

    for func in &prog.funcs {
        shape(prog, func, &mut sink);
    }
    main_signature(prog, &mut sink);
    sink.finish()?;

    for func in &prog.funcs {
        undefined_registers(func, &mut sink);
    }
    sink.finish()?;

    let types: Vec<Vec<Option<Type>>> = prog
        .funcs
        .iter()
        .map(|func| register_types(prog, func, &mut sink))
        .collect();
    sink.finish()?;

    for (func, tys) in prog.funcs.iter().zip(&types) {
        OperandTypes { prog, func, tys }.check(&mut sink);
    }
    sink.finish()?;

    for func in &prog.funcs {
        definite_assignment(func, &mut sink);
    }
    sink.finish()?;

    if prog.main().is_none() {
        return Err(Error::new(
            Span::new(1, 1),
            "program has no function @main (execution starts at '@main()')",
        ));
    }
    Ok(types)
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

    fn finish(&mut self) -> Result<(), Error> {
        match self.first.take() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// Phase 0: indices and operand counts.

fn well_formed(prog: &Program, sink: &mut Sink) {
    let n_funcs = prog.funcs.len();
    let n_globals = prog.globals.len();
    for func in &prog.funcs {
        let n_regs = func.regs.len();
        let n_blocks = func.blocks.len();
        let reg_ok = |r: Reg| r.index() < n_regs;
        let op_ok = |o: Operand| o.reg().is_none_or(reg_ok);
        let mut bad = |span: Span, what: String| {
            sink.report(span, 0, || {
                format!("malformed program: {what} in @{}", func.name)
            })
        };
        if func.params.len() != func.param_types.len() {
            bad(
                func.span,
                "parameter list and parameter types differ in length".into(),
            );
        }
        for (i, &p) in func.params.iter().enumerate() {
            if !reg_ok(p) {
                bad(
                    func.span,
                    format!("parameter {} is register {p}, out of range", i + 1),
                );
            } else if func.params[..i].contains(&p) {
                bad(func.span, format!("register {p} is two parameters"));
            }
        }
        for block in &func.blocks {
            for inst in &block.insts {
                let kind = &inst.kind;
                let op = kind.opcode();
                let mut ok = kind.def().is_none_or(reg_ok);
                kind.for_each_operand(|o| ok &= op_ok(o));
                ok &= kind.global().is_none_or(|g| g.index() < n_globals);
                ok &= match kind {
                    InstKind::Call { func, .. } | InstKind::Spawn { func, .. } => {
                        func.index() < n_funcs
                    }
                    _ => true,
                };
                if !ok {
                    bad(
                        inst.span,
                        format!("'{op}' refers to an entity that does not exist"),
                    );
                    continue;
                }
                if !format_matches(kind) {
                    bad(
                        inst.span,
                        format!("'{op}' is stored in the wrong instruction form"),
                    );
                    continue;
                }
                match kind {
                    InstKind::Effect { op, args } if args.len() != op.operand_types().len() => bad(
                        inst.span,
                        format!(
                            "'{op}' has {} operands instead of {}",
                            args.len(),
                            op.operand_types().len()
                        ),
                    ),
                    InstKind::CCall { func, arg } if func.takes_arg() != arg.is_some() => bad(
                        inst.span,
                        format!("'ccall {func}' has the wrong number of operands"),
                    ),
                    _ => {}
                }
            }
            if let Some(term) = &block.term {
                let mut ok = true;
                term.kind.for_each_operand(|o| ok &= op_ok(o));
                for s in term.kind.successors() {
                    ok &= s.index() < n_blocks;
                }
                if let TermKind::Select { arms } = &term.kind {
                    if arms.is_empty() {
                        bad(term.span, "'select' has no arms".into());
                    }
                    for arm in arms {
                        if let ArmKind::Recv { into: Some(v), .. } = arm.kind {
                            ok &= reg_ok(v);
                        }
                    }
                }
                if !ok {
                    bad(
                        term.span,
                        format!(
                            "'{}' refers to an entity that does not exist",
                            term.kind.opcode()
                        ),
                    );
                }
            }
        }
    }
}

/// Whether the instruction variant is the one the opcode table gives its
/// opcode (a `Unary` holding `add` would be printed and lowered wrongly).
fn format_matches(kind: &InstKind) -> bool {
    let format = kind.opcode().format();
    match kind {
        InstKind::Const { .. } => format == Format::Const,
        InstKind::Unary { .. } => format == Format::Unary,
        InstKind::Binary { .. } => format == Format::Binary,
        InstKind::Nullary { .. } => format == Format::Nullary,
        InstKind::Effect { .. } => format == Format::Effect,
        InstKind::Load { .. } => format == Format::Load,
        InstKind::Store { .. } => format == Format::Store,
        // These variants fix their opcode.
        InstKind::AtomicAdd { .. }
        | InstKind::Cas { .. }
        | InstKind::Call { .. }
        | InstKind::Spawn { .. }
        | InstKind::Print { .. }
        | InstKind::Assert { .. }
        | InstKind::CCall { .. } => true,
    }
}

// ---------------------------------------------------------------------------
// Phase 1: shape.

fn shape(prog: &Program, func: &Function, sink: &mut Sink) {
    if func.blocks.last().is_none_or(|b| b.term.is_none()) {
        sink.report(func.end, 0, || {
            format!(
                "missing terminator: control reaches the closing '}}' of @{} \
                 (the last block must end in ret, jmp, br, select, goexit or panic)",
                func.name
            )
        });
    }
    for block in &func.blocks {
        for inst in &block.insts {
            match &inst.kind {
                InstKind::Call {
                    dst,
                    func: callee,
                    args,
                } => {
                    let callee = prog.func(*callee);
                    arity(sink, inst.span, "call", callee, args.len());
                    if let (Some(d), None) = (dst, callee.ret) {
                        sink.report(inst.span, 0, || {
                            format!(
                                "@{} returns nothing, so its result cannot be assigned to %{}",
                                callee.name,
                                func.reg_name(*d)
                            )
                        });
                    }
                }
                InstKind::Spawn { func: callee, args } => {
                    arity(sink, inst.span, "spawn", prog.func(*callee), args.len())
                }
                InstKind::Print { format, args } => {
                    let holes = format.matches("{}").count();
                    if holes != args.len() {
                        sink.report(inst.span, 0, || {
                            format!(
                                "print format has {} but {} given",
                                plural(holes, "placeholder '{}'", "placeholders '{}'"),
                                plural(args.len(), "operand is", "operands are")
                            )
                        });
                    }
                }
                _ => {}
            }
        }
        let Some(term) = &block.term else { continue };
        match &term.kind {
            TermKind::Ret { value: Some(_) } if func.ret.is_none() => {
                sink.report(term.span, 0, || {
                    format!(
                        "@{} returns nothing, but 'ret' gives a value \
                         (declare '-> TYPE' to return one)",
                        func.name
                    )
                })
            }
            TermKind::Ret { value: None } => {
                if let Some(t) = func.ret {
                    sink.report(term.span, 0, || {
                        format!(
                            "missing return value: @{} returns {t}, write 'ret VALUE'",
                            func.name
                        )
                    })
                }
            }
            TermKind::Select { arms } => {
                let mut defaults = arms.iter().filter(|a| a.kind == ArmKind::Default);
                if let (Some(first), Some(second)) = (defaults.next(), defaults.next()) {
                    sink.report(second.span, 0, || {
                        format!(
                            "select has more than one 'default' arm (the first is at {})",
                            first.span
                        )
                    });
                }
            }
            _ => {}
        }
    }
}

fn arity(sink: &mut Sink, span: Span, what: &str, callee: &Function, given: usize) {
    let wanted = callee.params.len();
    if wanted != given {
        sink.report(span, 0, || {
            format!(
                "{what} of @{}: it takes {} but {} given",
                callee.name,
                plural(wanted, "argument", "arguments"),
                plural(given, "was", "were")
            )
        });
    }
}

/// `1 argument`, `2 arguments`, `0 arguments`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn main_signature(prog: &Program, sink: &mut Sink) {
    let Some(main) = prog.main() else { return };
    let main = prog.func(main);
    if !main.params.is_empty() {
        sink.report(main.span, 0, || {
            format!(
                "@main must take no parameters, but it takes {}",
                plural(main.params.len(), "parameter", "parameters")
            )
        });
    }
    if let Some(t) = main.ret {
        sink.report(main.span, 1, || {
            format!("@main must return nothing, but it is declared '-> {t}'")
        });
    }
}

// ---------------------------------------------------------------------------
// Phase 2: registers read but defined nowhere.

fn undefined_registers(func: &Function, sink: &mut Sink) {
    let mut defined = vec![false; func.regs.len()];
    for &p in &func.params {
        defined[p.index()] = true;
    }
    for_each_def(func, |r| defined[r.index()] = true);
    for_each_use(func, |r, span, sub| {
        if !defined[r.index()] {
            sink.report(span, sub, || {
                format!("undefined register %{}", func.reg_name(r))
            });
        }
    });
}

/// What the text says a definition gives its register.
#[derive(Clone, Copy)]
enum DefType {
    Known(Type),
    /// `copy %r`: whatever type `%r` has.
    CopyOf(Reg),
}

/// Calls `f(reg)` for every register the function body defines.
fn for_each_def(func: &Function, mut f: impl FnMut(Reg)) {
    for block in &func.blocks {
        for inst in &block.insts {
            if let Some(dst) = inst.kind.def() {
                f(dst);
            }
        }
        if let Some(TermKind::Select { arms }) = block.term.as_ref().map(|t| &t.kind) {
            for arm in arms {
                if let ArmKind::Recv { into: Some(v), .. } = arm.kind {
                    f(v);
                }
            }
        }
    }
}

/// Calls `f(reg, span, operand index)` for every register read, in text
/// order. Select arms report at the arm.
fn for_each_use(func: &Function, mut f: impl FnMut(Reg, Span, usize)) {
    for block in &func.blocks {
        for inst in &block.insts {
            let mut i = 0;
            inst.kind.for_each_operand(|o| {
                if let Operand::Reg(r) = o {
                    f(r, inst.span, i);
                }
                i += 1;
            });
        }
        let Some(term) = &block.term else { continue };
        if let TermKind::Select { arms } = &term.kind {
            for arm in arms {
                let mut i = 0;
                arm_operands(&arm.kind, |o| {
                    if let Operand::Reg(r) = o {
                        f(r, arm.span, i);
                    }
                    i += 1;
                });
            }
        } else {
            term.kind.for_each_operand(|o| {
                if let Operand::Reg(r) = o {
                    f(r, term.span, 0);
                }
            });
        }
    }
}

fn arm_operands(kind: &ArmKind, mut f: impl FnMut(Operand)) {
    match kind {
        ArmKind::Recv { chan, .. } => f(*chan),
        ArmKind::Send { chan, value } => {
            f(*chan);
            f(*value)
        }
        ArmKind::Default => {}
    }
}

// ---------------------------------------------------------------------------
// Phase 3: register types.

/// The type an instruction's destination gets, before `copy` is resolved.
fn inst_def_type(prog: &Program, kind: &InstKind) -> Option<DefType> {
    let copy_of = |o: Operand| match o {
        Operand::Reg(r) => DefType::CopyOf(r),
        Operand::Imm(_) => DefType::Known(Type::I64),
        Operand::Nil => DefType::Known(Type::Ref),
    };
    Some(match kind {
        InstKind::Unary {
            op: Opcode::Copy,
            arg,
            ..
        } => copy_of(*arg),
        InstKind::Load {
            op: Opcode::Load,
            global,
            ..
        } => DefType::Known(prog.global(*global).ty),
        InstKind::Call { func, .. } => DefType::Known(prog.func(*func).ret?),
        other => DefType::Known(other.opcode().result_type()?.exact()?),
    })
}

/// Where a register was first defined, for messages.
#[derive(Clone, Copy)]
enum Origin {
    Param,
    At(Span),
}

/// Resolution state of one register in [`register_types`].
#[derive(Clone, Copy, PartialEq)]
enum State {
    Unvisited,
    OnPath,
    Done,
}

fn register_types(prog: &Program, func: &Function, sink: &mut Sink) -> Vec<Option<Type>> {
    let n = func.regs.len();
    let mut tys: Vec<Option<Type>> = vec![None; n];
    // Every definition of every register, parameters first, in text order.
    let mut defs: Vec<Vec<(Origin, DefType)>> = vec![Vec::new(); n];
    for (&p, &t) in func.params.iter().zip(&func.param_types) {
        defs[p.index()].push((Origin::Param, DefType::Known(t)));
    }
    for block in &func.blocks {
        for inst in &block.insts {
            if let (Some(dst), Some(t)) = (inst.kind.def(), inst_def_type(prog, &inst.kind)) {
                defs[dst.index()].push((Origin::At(inst.span), t));
            }
        }
        // A select ends its block, so its arms follow the block's
        // instructions in the text.
        if let Some(TermKind::Select { arms }) = block.term.as_ref().map(|t| &t.kind) {
            for arm in arms {
                if let ArmKind::Recv { into: Some(v), .. } = arm.kind {
                    defs[v.index()].push((Origin::At(arm.span), DefType::Known(Type::I64)));
                }
            }
        }
    }

    // A register's type is its first definition's. Following the chain of
    // first definitions through copies settles each register once, so a
    // long chain written bottom-up costs linear time, not a fixpoint loop.
    let mut state = vec![State::Unvisited; n];
    let mut path = Vec::new();
    for start in 0..n {
        let mut cur = start;
        let found = loop {
            match state[cur] {
                State::Done => break tys[cur],
                State::OnPath => break None,
                State::Unvisited => {}
            }
            state[cur] = State::OnPath;
            path.push(cur);
            match defs[cur].first() {
                Some((_, DefType::Known(t))) => break Some(*t),
                Some((_, DefType::CopyOf(src))) => cur = src.index(),
                // Only a register nothing defines, which phase 2 (or, for
                // `%d = call` of a void function, phase 1) has rejected.
                None => break None,
            }
        };
        for &r in &path {
            tys[r] = found;
            state[r] = State::Done;
        }
        path.clear();
    }

    for (r, ds) in defs.iter().enumerate() {
        let reg = Reg::new(r);
        let Some(&(first_origin, _)) = ds.first() else {
            continue;
        };
        let Some(ty) = tys[r] else {
            if let Origin::At(span) = first_origin {
                sink.report(span, 0, || unresolvable(func, &defs, reg));
            }
            continue;
        };
        for &(origin, d) in &ds[1..] {
            let Origin::At(span) = origin else { continue };
            let t = match d {
                DefType::Known(t) => t,
                DefType::CopyOf(src) => match tys[src.index()] {
                    Some(t) => t,
                    // Reported at the source's own first definition.
                    None => continue,
                },
            };
            if t != ty {
                sink.report(span, 0, || {
                    let first = match first_origin {
                        Origin::Param => format!("it is a parameter of type {ty}"),
                        Origin::At(at) => format!("its first definition at {at} made it {ty}"),
                    };
                    format!(
                        "register %{} is defined here as {t}, but {first} \
                         (a register has one type)",
                        func.reg_name(reg)
                    )
                });
            }
        }
    }
    tys
}

/// The message for a register whose first definition copies a register
/// that, through first definitions, only ever copies again.
fn unresolvable(func: &Function, defs: &[Vec<(Origin, DefType)>], reg: Reg) -> String {
    let mut chain = vec![reg];
    let mut cur = reg;
    while let Some((_, DefType::CopyOf(src))) = defs[cur.index()].first() {
        let seen = chain.contains(src);
        chain.push(*src);
        if seen || chain.len() > 8 {
            break;
        }
        cur = *src;
    }
    let names: Vec<String> = chain
        .iter()
        .map(|&r| format!("%{}", func.reg_name(r)))
        .collect();
    format!(
        "cannot infer the type of register %{}: its first definition copies {}, \
         and following first definitions ({}) never reaches a typed value",
        func.reg_name(reg),
        names.get(1).map_or("a register", String::as_str),
        names.join(" <- ")
    )
}

// ---------------------------------------------------------------------------
// Phase 4: operand types.

struct OperandTypes<'a> {
    prog: &'a Program,
    func: &'a Function,
    tys: &'a [Option<Type>],
}

impl OperandTypes<'_> {
    /// The type of an operand; `None` only for a register phase 3 could not
    /// type, which it has already reported.
    fn ty(&self, o: Operand) -> Option<Type> {
        match o {
            Operand::Reg(r) => self.tys[r.index()],
            Operand::Imm(_) => Some(Type::I64),
            Operand::Nil => Some(Type::Ref),
        }
    }

    /// `%p of type ref`, `the integer 5`, `nil (a ref)`.
    fn describe(&self, o: Operand) -> String {
        match o {
            Operand::Reg(r) => match self.tys[r.index()] {
                Some(t) => format!("%{} of type {t}", self.func.reg_name(r)),
                None => format!("%{}", self.func.reg_name(r)),
            },
            Operand::Imm(v) => format!("the integer {v}"),
            Operand::Nil => "nil (a ref)".to_string(),
        }
    }

    /// Reports `what must be TYPE, found ...` when `o` is not of type `want`.
    fn expect(
        &self,
        sink: &mut Sink,
        span: Span,
        sub: usize,
        o: Operand,
        want: Type,
        what: impl FnOnce() -> String,
    ) {
        if self.ty(o).is_some_and(|t| t != want) {
            sink.report(span, sub, || {
                format!("{} must be {want}, found {}", what(), self.describe(o))
            });
        }
    }

    fn global_must_be_i64(&self, sink: &mut Sink, span: Span, op: Opcode, g: GlobalId) {
        let global = self.prog.global(g);
        if global.ty != Type::I64 {
            sink.report(span, 0, || {
                format!(
                    "'{op}' works on i64 globals only, but @{} is {}",
                    global.name,
                    with_article(global.ty)
                )
            });
        }
    }

    fn args(&self, sink: &mut Sink, span: Span, callee: FuncId, args: &[Operand]) {
        let callee = self.prog.func(callee);
        for (i, (&a, &want)) in args.iter().zip(&callee.param_types).enumerate() {
            self.expect(sink, span, i, a, want, || {
                format!("argument {} of @{}", i + 1, callee.name)
            });
        }
    }

    /// Operands typed by the opcode table, `Same` included.
    fn table(&self, sink: &mut Sink, span: Span, op: Opcode, args: &[Operand]) {
        let specs = op.operand_types();
        let mut same: Option<(Operand, Type)> = None;
        for (i, (&a, &spec)) in args.iter().zip(specs).enumerate() {
            match spec.exact() {
                Some(want) => self.expect(sink, span, i, a, want, || {
                    format!("operand {} of '{op}'", i + 1)
                }),
                None => {
                    let Some(t) = self.ty(a) else { continue };
                    match same {
                        None => same = Some((a, t)),
                        Some((first, ft)) if ft != t => sink.report(span, i, || {
                            format!(
                                "operands of '{op}' must have the same type, found {} and {}",
                                self.describe(first),
                                self.describe(a)
                            )
                        }),
                        Some(_) => {}
                    }
                }
            }
        }
    }

    fn check(&self, sink: &mut Sink) {
        let func = self.func;
        for block in &func.blocks {
            for inst in &block.insts {
                let span = inst.span;
                match &inst.kind {
                    InstKind::Const { .. } | InstKind::Nullary { .. } => {}
                    InstKind::Unary { op, arg, .. } => self.table(sink, span, *op, &[*arg]),
                    InstKind::Binary { op, args, .. } => self.table(sink, span, *op, args),
                    InstKind::Effect { op, args } => self.table(sink, span, *op, args),
                    InstKind::Load { op, global, .. } => {
                        if *op != Opcode::Load {
                            self.global_must_be_i64(sink, span, *op, *global);
                        }
                    }
                    InstKind::Store { op, global, value } => {
                        let g = self.prog.global(*global);
                        if *op == Opcode::Store {
                            self.expect(sink, span, 0, *value, g.ty, || {
                                format!(
                                    "the value stored to @{} ({} global)",
                                    g.name,
                                    with_article(g.ty)
                                )
                            });
                        } else {
                            self.global_must_be_i64(sink, span, *op, *global);
                            self.table(sink, span, *op, &[*value]);
                        }
                    }
                    InstKind::AtomicAdd { global, value, .. } => {
                        self.global_must_be_i64(sink, span, Opcode::AddAtomic, *global);
                        self.table(sink, span, Opcode::AddAtomic, &[*value]);
                    }
                    InstKind::Cas {
                        global, old, new, ..
                    } => {
                        self.global_must_be_i64(sink, span, Opcode::CasAtomic, *global);
                        self.table(sink, span, Opcode::CasAtomic, &[*old, *new]);
                    }
                    InstKind::Call {
                        func: callee, args, ..
                    }
                    | InstKind::Spawn { func: callee, args } => {
                        self.args(sink, span, *callee, args)
                    }
                    // Any type prints.
                    InstKind::Print { .. } => {}
                    InstKind::Assert { cond, .. } => {
                        self.expect(sink, span, 0, *cond, Type::I64, || {
                            "the condition of 'assert'".to_string()
                        })
                    }
                    InstKind::CCall { func: foreign, arg } => {
                        if let Some(a) = arg {
                            self.expect(sink, span, 0, *a, Type::I64, || {
                                format!("the duration of 'ccall {foreign}' (microseconds)")
                            });
                        }
                    }
                }
            }
            let Some(term) = &block.term else { continue };
            let span = term.span;
            match &term.kind {
                TermKind::Br { cond, .. } => self.expect(sink, span, 0, *cond, Type::I64, || {
                    "the condition of 'br'".to_string()
                }),
                TermKind::Ret { value: Some(v) } => {
                    if let Some(want) = func.ret {
                        self.expect(sink, span, 0, *v, want, || {
                            format!("the value returned by @{}", func.name)
                        });
                    }
                }
                TermKind::Select { arms } => {
                    for arm in arms {
                        match &arm.kind {
                            ArmKind::Recv { chan, .. } => {
                                self.expect(sink, arm.span, 0, *chan, Type::Chan, || {
                                    "the channel of a 'recv' arm".to_string()
                                })
                            }
                            ArmKind::Send { chan, value } => {
                                self.expect(sink, arm.span, 0, *chan, Type::Chan, || {
                                    "the channel of a 'send' arm".to_string()
                                });
                                self.expect(sink, arm.span, 1, *value, Type::I64, || {
                                    "the value of a 'send' arm".to_string()
                                });
                            }
                            ArmKind::Default => {}
                        }
                    }
                }
                TermKind::Ret { value: None }
                | TermKind::Jmp { .. }
                | TermKind::Goexit
                | TermKind::Panic { .. } => {}
            }
        }
    }
}

/// `an i64`, `a ref`, `a chan`.
fn with_article(t: Type) -> &'static str {
    match t {
        Type::I64 => "an i64",
        Type::Ref => "a ref",
        Type::Chan => "a chan",
    }
}

// ---------------------------------------------------------------------------
// Phase 5: definite assignment.

/// The most bits of dataflow state kept at once, in 64-bit words: the
/// registers are analysed in groups small enough that blocks x group stays
/// under this, so a huge function costs time, never gigabytes.
const MAX_STATE_WORDS: usize = 1 << 22;

/// A forward "defined on every path" analysis over the edges of the
/// reachable blocks. Only registers that are read in a reachable block,
/// are not parameters (defined at the entry) and are not read only where
/// a dominating definition covers them are tracked.
fn definite_assignment(func: &Function, sink: &mut Sink) {
    if func.blocks.is_empty() {
        return;
    }
    let n = func.blocks.len();
    let cfg = Cfg::new(func);
    let rpo = &cfg.rpo;
    let outgoing = edges(func);
    let mut incoming: Vec<Vec<(BlockId, Option<Reg>)>> = vec![Vec::new(); n];
    for &b in rpo {
        for &(s, into) in &outgoing[b.index()] {
            incoming[s.index()].push((b, into));
        }
    }

    let mut is_param = vec![false; func.regs.len()];
    for &p in &func.params {
        is_param[p.index()] = true;
    }
    let uncovered = reads_without_dominating_definition(func, &cfg);
    let mut tracked: Vec<Reg> = Vec::new();
    let mut seen = vec![false; func.regs.len()];
    for &b in rpo {
        let block = &func.blocks[b.index()];
        let mut note = |o: Operand| {
            if let Operand::Reg(r) = o {
                if !is_param[r.index()] && uncovered[r.index()] && !seen[r.index()] {
                    seen[r.index()] = true;
                    tracked.push(r);
                }
            }
        };
        for inst in &block.insts {
            inst.kind.for_each_operand(&mut note);
        }
        if let Some(t) = &block.term {
            t.kind.for_each_operand(&mut note);
        }
    }
    if tracked.is_empty() {
        return;
    }

    let words_wanted = tracked.len().div_ceil(64);
    let words = words_wanted.min((MAX_STATE_WORDS / n).max(1));
    for group in tracked.chunks(words * 64) {
        DefinedAnalysis::new(func, rpo, &incoming, group).run(sink);
    }
}

/// Which registers some reachable block reads before defining it itself,
/// with no definition by an instruction in a block that strictly
/// dominates it. A read with one is defined on every path (every path to
/// the reader runs through the whole dominating block), so only the
/// registers marked here can fail the analysis, and the dense dataflow
/// tracks only them: in a 100,000-block function whose every block
/// defines the register the next one reads, none.
///
/// One walk of the dominator tree, counting for each register its
/// definitions in the blocks on the path from the entry.
fn reads_without_dominating_definition(func: &Function, cfg: &Cfg) -> Vec<bool> {
    let n = func.blocks.len();
    let nregs = func.regs.len();
    let mut children: Vec<Vec<BlockId>> = vec![Vec::new(); n];
    for &b in cfg.rpo.iter().skip(1) {
        if let Some(d) = cfg.idom[b.index()] {
            children[d.index()].push(b);
        }
    }
    let mut uncovered = vec![false; nregs];
    // Definitions in the blocks on the path, each register once per block.
    let mut on_path = vec![0u32; nregs];
    let mut path_defs: Vec<Reg> = Vec::new();
    // The block each register was last defined in during the walk.
    let mut defined_in = vec![u32::MAX; nregs];
    // (block, next child, length of `path_defs` before the block's own).
    let mut stack: Vec<(BlockId, usize, usize)> = Vec::new();
    let mut enter = |b: BlockId, path_defs: &mut Vec<Reg>, on_path: &[u32]| {
        let block = &func.blocks[b.index()];
        let mut read = |o: Operand, defined_in: &[u32]| {
            if let Operand::Reg(r) = o {
                if defined_in[r.index()] != b.0 && on_path[r.index()] == 0 {
                    uncovered[r.index()] = true;
                }
            }
        };
        for inst in &block.insts {
            inst.kind.for_each_operand(|o| read(o, &defined_in));
            if let Some(d) = inst.kind.def() {
                if defined_in[d.index()] != b.0 {
                    defined_in[d.index()] = b.0;
                    path_defs.push(d);
                }
            }
        }
        if let Some(t) = &block.term {
            t.kind.for_each_operand(|o| read(o, &defined_in));
        }
    };
    if let Some(&entry) = cfg.rpo.first() {
        stack.push((entry, 0, 0));
        enter(entry, &mut path_defs, &on_path);
    }
    while let Some(top) = stack.last_mut() {
        let (b, i, mark) = *top;
        if i == 0 {
            // The block's own definitions now cover its children.
            for r in &path_defs[mark..] {
                on_path[r.index()] += 1;
            }
        }
        if let Some(&c) = children[b.index()].get(i) {
            top.1 += 1;
            stack.push((c, 0, path_defs.len()));
            enter(c, &mut path_defs, &on_path);
        } else {
            for r in path_defs.drain(mark..) {
                on_path[r.index()] -= 1;
            }
            stack.pop();
        }
    }
    uncovered
}

/// The edges leaving each block, with the register an edge defines (a
/// select's `recv ... into`). The same edges as
/// [`Function::successors`], kept per select arm.
fn edges(func: &Function) -> Vec<Vec<(BlockId, Option<Reg>)>> {
    (0..func.blocks.len())
        .map(|b| {
            let block = &func.blocks[b];
            match block.term.as_ref().map(|t| &t.kind) {
                Some(TermKind::Select { arms }) => arms
                    .iter()
                    .map(|arm| match arm.kind {
                        ArmKind::Recv { into, .. } => (arm.target, into),
                        _ => (arm.target, None),
                    })
                    .collect(),
                _ => func
                    .successors(BlockId::new(b))
                    .into_iter()
                    .map(|s| (s, None))
                    .collect(),
            }
        })
        .collect()
}

/// Definite assignment of one group of registers, as bit sets per block.
struct DefinedAnalysis<'a> {
    func: &'a Function,
    rpo: &'a [BlockId],
    incoming: &'a [Vec<(BlockId, Option<Reg>)>],
    /// Bit of each register of the group (`usize::MAX` outside it).
    bit: Vec<usize>,
    words: usize,
    /// Registers defined on every path to the start of each block.
    defined_in: Vec<u64>,
    /// Registers the block's instructions define.
    gen: Vec<u64>,
}

impl<'a> DefinedAnalysis<'a> {
    fn new(
        func: &'a Function,
        rpo: &'a [BlockId],
        incoming: &'a [Vec<(BlockId, Option<Reg>)>],
        group: &[Reg],
    ) -> Self {
        let n = func.blocks.len();
        let words = group.len().div_ceil(64);
        let mut bit = vec![usize::MAX; func.regs.len()];
        for (i, r) in group.iter().enumerate() {
            bit[r.index()] = i;
        }
        let mut gen = vec![0u64; n * words];
        for &b in rpo {
            for inst in &func.blocks[b.index()].insts {
                if let Some(d) = inst.kind.def() {
                    set_bit(&mut gen[b.index() * words..][..words], bit[d.index()]);
                }
            }
        }
        // Start from "everything defined" and shrink to the greatest
        // fixpoint; the entry starts empty (only parameters, not tracked).
        let mut defined_in = vec![u64::MAX; n * words];
        if let Some(&entry) = rpo.first() {
            defined_in[entry.index() * words..][..words].fill(0);
        }
        DefinedAnalysis {
            func,
            rpo,
            incoming,
            bit,
            words,
            defined_in,
            gen,
        }
    }

    fn solve(&mut self) {
        let words = self.words;
        let mut scratch = vec![0u64; words];
        let mut changed = true;
        while changed {
            changed = false;
            for &b in self.rpo.iter().skip(1) {
                scratch.fill(u64::MAX);
                for &(p, into) in &self.incoming[b.index()] {
                    let p = p.index() * words;
                    let defined = &self.defined_in[p..][..words];
                    let gen = &self.gen[p..][..words];
                    // A select arm's `into` register is defined on this
                    // edge only.
                    let into = into
                        .map(|v| self.bit[v.index()])
                        .filter(|&i| i != usize::MAX);
                    for (w, acc) in scratch.iter_mut().enumerate() {
                        let mut out = defined[w] | gen[w];
                        if let Some(i) = into.filter(|i| i / 64 == w) {
                            out |= 1 << (i % 64);
                        }
                        *acc &= out;
                    }
                }
                let dst = &mut self.defined_in[b.index() * words..][..words];
                if dst != scratch.as_slice() {
                    dst.copy_from_slice(&scratch);
                    changed = true;
                }
            }
        }
    }

    fn run(mut self, sink: &mut Sink) {
        self.solve();
        let func = self.func;
        let words = self.words;
        let mut cur = vec![0u64; words];
        for &b in self.rpo {
            let block = &func.blocks[b.index()];
            cur.copy_from_slice(&self.defined_in[b.index() * words..][..words]);
            let undefined = |cur: &[u64], o: Operand| match o {
                Operand::Reg(r) => {
                    let i = self.bit[r.index()];
                    (i != usize::MAX && cur[i / 64] & (1 << (i % 64)) == 0).then_some(r)
                }
                _ => None,
            };
            let mut report = |span: Span, sub: usize, r: Reg| {
                sink.report(span, sub, || {
                    format!(
                        "register %{} may be used before it is defined \
                         (some path from the entry of @{} reaches this use without defining it)",
                        func.reg_name(r),
                        func.name
                    )
                })
            };
            for inst in &block.insts {
                let mut i = 0;
                inst.kind.for_each_operand(|o| {
                    if let Some(r) = undefined(&cur, o) {
                        report(inst.span, i, r);
                    }
                    i += 1;
                });
                if let Some(d) = inst.kind.def() {
                    set_bit(&mut cur, self.bit[d.index()]);
                }
            }
            let Some(term) = &block.term else { continue };
            if let TermKind::Select { arms } = &term.kind {
                for arm in arms {
                    let mut i = 0;
                    arm_operands(&arm.kind, |o| {
                        if let Some(r) = undefined(&cur, o) {
                            report(arm.span, i, r);
                        }
                        i += 1;
                    });
                }
            } else {
                term.kind.for_each_operand(|o| {
                    if let Some(r) = undefined(&cur, o) {
                        report(term.span, 0, r);
                    }
                });
            }
        }
    }
}

fn set_bit(words: &mut [u64], i: usize) {
    if i != usize::MAX {
        words[i / 64] |= 1 << (i % 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse;

    fn verified(src: &str) -> Program {
        let mut p = parse(src).unwrap_or_else(|e| panic!("{}", e.render("t.pir", src)));
        verify(&mut p).unwrap_or_else(|e| panic!("{}", e.render("t.pir", src)));
        p
    }

    fn error(src: &str) -> (u32, u32, String) {
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

    fn types(p: &Program, f: &str) -> Vec<(String, Type)> {
        let f = p.func(p.func_by_name(f).unwrap());
        f.regs
            .iter()
            .map(|r| (r.name.clone(), r.ty.expect("typed")))
            .collect()
    }

    #[test]
    fn every_register_gets_the_type_of_its_first_definition() {
        let p = verified(
            "global @g: ref\n\
             func @f(%n: i64, %c: chan) -> ref {\n\
             \x20   %r = load @g\n\
             \x20   %x = recv %c\n\
             \x20   %q = copy %r\n\
             \x20   ret %q\n\
             }\n\
             func @main() {\n\
             \x20   %c = chan 1\n\
             \x20   %r = call @f(1, %c)\n\
             \x20   %t = now\n\
             \x20   ret\n\
             }\n",
        );
        let t = |n: &str, ty| (n.to_string(), ty);
        assert_eq!(
            types(&p, "f"),
            [
                t("n", Type::I64),
                t("c", Type::Chan),
                t("r", Type::Ref),
                t("x", Type::I64),
                t("q", Type::Ref)
            ]
        );
        assert_eq!(
            types(&p, "main"),
            [t("c", Type::Chan), t("r", Type::Ref), t("t", Type::I64)]
        );
    }

    #[test]
    fn copy_takes_the_type_of_a_register_defined_later_in_the_text() {
        let p = verified(
            "func @main() {\n\
             \x20   jmp second\n\
             first:\n\
             \x20   %a = copy %b\n\
             \x20   %z = copy %a\n\
             \x20   print \"{}\", %z\n\
             \x20   ret\n\
             second:\n\
             \x20   %b = copy nil\n\
             \x20   jmp first\n\
             }\n",
        );
        assert!(types(&p, "main").iter().all(|(_, t)| *t == Type::Ref));
    }

    #[test]
    fn copy_cycles_are_reported_at_the_first_definition() {
        let (l, c, m) = error(
            "func @main() {\n\
             \x20   %a = copy %b\n\
             \x20   %b = copy %a\n\
             \x20   ret\n\
             }\n",
        );
        assert_eq!((l, c), (2, 5));
        assert!(m.contains("cannot infer the type of register %a"), "{m}");
        assert!(m.contains("%a <- %b <- %a"), "{m}");
    }

    #[test]
    fn a_later_definition_of_another_type_names_both() {
        let (l, c, m) = error(
            "func @main() {\n\
             \x20   %a = const 1\n\
             \x20   %a = copy nil\n\
             \x20   ret\n\
             }\n",
        );
        assert_eq!((l, c), (3, 5));
        assert!(m.contains("defined here as ref"), "{m}");
        assert!(m.contains("first definition at 2:5 made it i64"), "{m}");
        let (_, _, m) = error(
            "func @f(%p: ref) {\n\
             \x20   %p = const 0\n\
             \x20   ret\n\
             }\n\
             func @main() {\n\
             \x20   ret\n\
             }\n",
        );
        assert!(m.contains("parameter of type ref"), "{m}");
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
    fn recv_into_defines_its_register_on_its_own_edge_only() {
        let src = |use_block: &str| {
            format!(
                "func @main() {{\n\
                 \x20   %c = chan 1\n\
                 \x20   send %c, 1\n\
                 \x20   select recv %c into %v -> got, default -> none\n\
                 got:\n\
                 \x20   print \"{{}}\", %v\n\
                 \x20   ret\n\
                 none:\n\
                 {use_block}\
                 \x20   ret\n\
                 }}\n"
            )
        };
        verified(&src(""));
        let (l, _, m) = error(&src("    print \"{}\", %v\n"));
        assert_eq!(l, 9);
        assert!(m.contains("%v may be used before it is defined"), "{m}");
        // Two arms into one block: defined only if both edges define it.
        let two_arms = |second: &str| {
            format!(
                "func @main() {{\n\
                 \x20   %c = chan 1\n\
                 \x20   %d = chan 1\n\
                 \x20   select recv %c into %v -> l, {second} -> l\n\
                 l:\n\
                 \x20   print \"{{}}\", %v\n\
                 \x20   ret\n\
                 }}\n"
            )
        };
        verified(&two_arms("recv %d into %v"));
        assert_eq!(error(&two_arms("recv %d")).0, 6);
        assert_eq!(error(&two_arms("send %d, 1")).0, 6);
    }

    #[test]
    fn definite_assignment_follows_every_path_and_ignores_dead_code() {
        let diamond = |else_def: &str| {
            format!(
                "func @main() {{\n\
                 \x20   %c = const 1\n\
                 \x20   br %c, a, b\n\
                 a:\n\
                 \x20   %x = const 1\n\
                 \x20   jmp join\n\
                 b:\n\
                 {else_def}\
                 join:\n\
                 \x20   print \"{{}}\", %x\n\
                 \x20   ret\n\
                 }}\n"
            )
        };
        verified(&diamond("    %x = const 2\n"));
        assert_eq!(error(&diamond("")).0, 9);
        // Defined in the loop body only: not defined on the first entry.
        let (l, _, m) = error(
            "func @main() {\n\
             \x20   %i = const 0\n\
             loop:\n\
             \x20   %s = add %s, %i\n\
             \x20   %i = add %i, 1\n\
             \x20   %d = lt %i, 10\n\
             \x20   br %d, loop, out\n\
             out:\n\
             \x20   ret\n\
             }\n",
        );
        assert_eq!(l, 4, "{m}");
        // Unreachable code reads what it likes, but is still type-checked.
        verified(
            "func @main() {\n\
             \x20   ret\n\
             \x20   print \"{}\", %never\n\
             \x20   %never = const 1\n\
             \x20   ret\n\
             }\n",
        );
        let (l, _, m) = error(
            "func @main() {\n\
             \x20   ret\n\
             \x20   %x = add nil, 1\n\
             \x20   ret\n\
             }\n",
        );
        assert_eq!(l, 3, "{m}");
    }

    #[test]
    fn a_loop_back_to_the_entry_does_not_define_registers_at_the_entry() {
        let (l, _, m) = error(
            "func @main() {\n\
             top:\n\
             \x20   print \"{}\", %x\n\
             \x20   %x = const 1\n\
             \x20   jmp top\n\
             }\n",
        );
        assert_eq!(l, 3, "{m}");
    }

    #[test]
    fn only_reads_without_a_dominating_definition_need_the_dataflow() {
        let p = parse(
            "func @main() {\n\
             \x20   %a = const 1\n\
             \x20   %c = const 0\n\
             \x20   br %c, t, e\n\
             t:\n\
             \x20   %b = const 2\n\
             \x20   %d = add %a, 1\n\
             \x20   jmp j\n\
             e:\n\
             \x20   %b = const 3\n\
             j:\n\
             \x20   %x = add %b, %a\n\
             \x20   %x = add %x, %d\n\
             \x20   ret\n\
             dead:\n\
             \x20   %y = add %y, 1\n\
             \x20   ret\n\
             }\n",
        )
        .unwrap();
        let f = &p.funcs[0];
        let uncovered: Vec<&str> = reads_without_dominating_definition(f, &Cfg::new(f))
            .iter()
            .enumerate()
            .filter(|&(_, &u)| u)
            .map(|(r, _)| f.reg_name(Reg::new(r)))
            .collect();
        // %b is defined on both arms (the dataflow decides), %d on one
        // only; %a and %c are covered by the entry, %x by its own block,
        // and the dead block is not looked at.
        assert_eq!(uncovered, ["b", "d"]);
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

    #[test]
    fn hand_built_programs_with_bad_indices_are_errors_not_panics() {
        let mut p =
            verified("func @main() {\n    %x = const 1\n    print \"{}\", %x\n    ret\n}\n");
        let mut broken = p.clone();
        if let InstKind::Print { args, .. } = &mut broken.funcs[0].blocks[0].insts[1].kind {
            args[0] = Operand::Reg(Reg::new(99));
        }
        assert!(verify(&mut broken)
            .unwrap_err()
            .message
            .starts_with("malformed program"));
        let mut broken = p.clone();
        broken.funcs[0].blocks[0].term = Some(crate::ir::Terminator {
            kind: TermKind::Jmp {
                target: BlockId::new(7),
            },
            span: Span::default(),
        });
        assert!(verify(&mut broken).is_err());
        // Verifying twice is harmless.
        verify(&mut p).unwrap();
    }
}
