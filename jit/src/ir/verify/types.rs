//! Phases 3 and 4 of the verifier: each register's type, from its first
//! definition in the text, and every operand's type against the opcode
//! table and the signatures of callees and globals.

use super::Sink;
use crate::ir::{
    ArmKind, FuncId, Function, GlobalId, InstKind, Opcode, Operand, Program, Reg, Span, TermKind,
    Type,
};

// ---------------------------------------------------------------------------
// Phase 3: register types.

/// What the text says a definition gives its register.
#[derive(Clone, Copy)]
enum DefType {
    Known(Type),
    /// `copy %r`: whatever type `%r` has.
    CopyOf(Reg),
}

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

pub(super) fn register_types(
    prog: &Program,
    func: &Function,
    sink: &mut Sink,
) -> Vec<Option<Type>> {
    let n = func.regs.len();
    let mut tys: Vec<Option<Type>> = vec![None; n];
    // Each register's first definition, parameters first, in text order;
    // the definitions after a first one, in text order, in one list.
    let mut first: Vec<Option<(Origin, DefType)>> = vec![None; n];
    let mut later: Vec<(Reg, Span, DefType)> = Vec::new();
    let mut define = |r: Reg, origin: Origin, d: DefType| match (&first[r.index()], origin) {
        (None, _) => first[r.index()] = Some((origin, d)),
        (Some(_), Origin::At(span)) => later.push((r, span, d)),
        // A parameter listed twice: phase 0 reports it.
        (Some(_), Origin::Param) => {}
    };
    for (&p, &t) in func.params.iter().zip(&func.param_types) {
        define(p, Origin::Param, DefType::Known(t));
    }
    for block in &func.blocks {
        for inst in &block.insts {
            if let (Some(dst), Some(t)) = (inst.kind.def(), inst_def_type(prog, &inst.kind)) {
                define(dst, Origin::At(inst.span), t);
            }
        }
        // A select ends its block, so its arms follow the block's
        // instructions in the text.
        if let Some(TermKind::Select { arms }) = block.term.as_ref().map(|t| &t.kind) {
            for arm in arms {
                if let ArmKind::Recv { into: Some(v), .. } = arm.kind {
                    define(v, Origin::At(arm.span), DefType::Known(Type::I64));
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
            match first[cur] {
                Some((_, DefType::Known(t))) => break Some(t),
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

    for (r, f) in first.iter().enumerate() {
        if let (Some((Origin::At(span), _)), None) = (f, tys[r]) {
            sink.report(*span, 0, || unresolvable(func, &first, Reg::new(r)));
        }
    }
    for &(reg, span, d) in &later {
        let (Some(ty), Some((first_origin, _))) = (tys[reg.index()], first[reg.index()]) else {
            continue;
        };
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
    tys
}

/// The message for a register whose first definition copies a register
/// that, through first definitions, only ever copies again.
fn unresolvable(func: &Function, first: &[Option<(Origin, DefType)>], reg: Reg) -> String {
    let mut chain = vec![reg];
    let mut cur = reg;
    while let Some((_, DefType::CopyOf(src))) = first[cur.index()] {
        let seen = chain.contains(&src);
        chain.push(src);
        if seen || chain.len() > 8 {
            break;
        }
        cur = src;
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

pub(super) struct OperandTypes<'a> {
    pub(super) prog: &'a Program,
    pub(super) func: &'a Function,
    pub(super) tys: &'a [Option<Type>],
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

    pub(super) fn check(&self, sink: &mut Sink) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::verify::tests::{error, verified};

    fn types(p: &Program, f: &str) -> Vec<(String, Type)> {
        let f = p.func(p.func_by_name(f).unwrap());
        f.regs
            .iter()
            .map(|r| (r.name.to_string(), r.ty.expect("typed")))
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
}
