//! Phases 0 to 2 of the verifier, the checks that need no types:
//! well-formedness (indices and operand counts), shape (terminators, arity,
//! `print` placeholders, `select` defaults, `@main`'s signature) and
//! registers read but defined nowhere.

use super::Sink;
use crate::ir::{ArmKind, Format, Function, InstKind, Operand, Program, Reg, Span, TermKind};

// ---------------------------------------------------------------------------
// Phase 0: indices and operand counts.

pub(super) fn well_formed(prog: &Program, func: &Function, sink: &mut Sink) {
    let n_funcs = prog.funcs.len();
    let n_globals = prog.globals.len();
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

pub(super) fn shape(prog: &Program, func: &Function, sink: &mut Sink) {
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

pub(super) fn main_signature(prog: &Program, sink: &mut Sink) {
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

pub(super) fn undefined_registers(func: &Function, sink: &mut Sink) {
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

pub(super) fn arm_operands(kind: &ArmKind, mut f: impl FnMut(Operand)) {
    match kind {
        ArmKind::Recv { chan, .. } => f(*chan),
        ArmKind::Send { chan, value } => {
            f(*chan);
            f(*value)
        }
        ArmKind::Default => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::verify::tests::verified;
    use crate::ir::{verify, BlockId};

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
