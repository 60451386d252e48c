//! The PIR printer: a [`Program`] back to text that parses to an equal
//! program (`parse(print(p)) == p`).
//!
//! Layout is normalised (four-space indentation, one blank line between
//! top-level items, comments dropped); everything that carries meaning is
//! kept, including which blocks fall through and which are unlabelled.

use std::fmt::Write;

use super::{ArmKind, Function, InstKind, Operand, Program, TermKind};

/// Prints a whole program.
pub fn print(prog: &Program) -> String {
    let mut out = String::new();
    let s = &prog.settings;
    if let Some(v) = s.procs {
        writeln!(out, "set procs = {v}").unwrap();
    }
    if let Some(v) = s.preempt {
        writeln!(out, "set preempt = {v}").unwrap();
    }
    if let Some(v) = s.gc_percent {
        writeln!(out, "set gc_percent = {v}").unwrap();
    }
    if let Some(v) = s.opt {
        writeln!(out, "set opt = {v}").unwrap();
    }
    if let Some(v) = s.quantum_us {
        writeln!(out, "set quantum_us = {v}").unwrap();
    }
    if let Some(v) = s.nosplit_leaves {
        writeln!(out, "set nosplit_leaves = {v}").unwrap();
    }
    if !out.is_empty() {
        out.push('\n');
    }
    for g in &prog.globals {
        write!(out, "global @{}: {}", g.name, g.ty).unwrap();
        if g.has_init {
            write!(out, " = {}", g.init).unwrap();
        }
        out.push('\n');
    }
    if !prog.globals.is_empty() {
        out.push('\n');
    }
    for (i, f) in prog.funcs.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        print_function(&mut out, prog, f);
    }
    out
}

/// Escapes a string for a PIR string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An operand as PIR text.
pub fn operand(f: &Function, o: Operand) -> String {
    match o {
        Operand::Reg(r) => format!("%{}", f.reg_name(r)),
        Operand::Imm(v) => v.to_string(),
        Operand::Nil => "nil".to_string(),
    }
}

fn operands(f: &Function, ops: &[Operand]) -> String {
    ops.iter()
        .map(|&o| operand(f, o))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One instruction as PIR text, without indentation.
pub fn inst(prog: &Program, f: &Function, kind: &InstKind) -> String {
    let reg = |r| format!("%{}", f.reg_name(r));
    let op = kind.opcode();
    match kind {
        InstKind::Const { dst, value } => format!("{} = const {value}", reg(*dst)),
        InstKind::Unary { dst, arg, .. } => format!("{} = {op} {}", reg(*dst), operand(f, *arg)),
        InstKind::Binary { dst, args, .. } => format!("{} = {op} {}", reg(*dst), operands(f, args)),
        InstKind::Nullary { dst, .. } => format!("{} = {op}", reg(*dst)),
        InstKind::Effect { args, .. } if args.is_empty() => op.to_string(),
        InstKind::Effect { args, .. } => format!("{op} {}", operands(f, args)),
        InstKind::Load { dst, global, .. } => {
            format!("{} = {op} @{}", reg(*dst), prog.global(*global).name)
        }
        InstKind::Store { global, value, .. } => {
            format!(
                "{op} @{}, {}",
                prog.global(*global).name,
                operand(f, *value)
            )
        }
        InstKind::AtomicAdd { dst, global, value } => format!(
            "{} = {op} @{}, {}",
            reg(*dst),
            prog.global(*global).name,
            operand(f, *value)
        ),
        InstKind::Cas {
            dst,
            global,
            old,
            new,
        } => format!(
            "{} = {op} @{}, {}, {}",
            reg(*dst),
            prog.global(*global).name,
            operand(f, *old),
            operand(f, *new)
        ),
        InstKind::Call { dst, func, args } => {
            let call = format!("call @{}({})", prog.func(*func).name, operands(f, args));
            match dst {
                Some(d) => format!("{} = {call}", reg(*d)),
                None => call,
            }
        }
        InstKind::Spawn { func, args } => {
            format!("spawn @{}({})", prog.func(*func).name, operands(f, args))
        }
        InstKind::Print { format, args } => {
            let mut s = format!("print {}", quote(format));
            for &a in args {
                write!(s, ", {}", operand(f, a)).unwrap();
            }
            s
        }
        InstKind::Assert { cond, message } => {
            format!("assert {}, {}", operand(f, *cond), quote(message))
        }
        InstKind::CCall { func, arg } => match arg {
            Some(a) => format!("ccall {func}, {}", operand(f, *a)),
            None => format!("ccall {func}"),
        },
    }
}

/// A terminator as PIR text, without indentation.
pub fn terminator(f: &Function, kind: &TermKind) -> String {
    let label = |b| f.block_name(b);
    match kind {
        TermKind::Jmp { target } => format!("jmp {}", label(*target)),
        TermKind::Br { cond, then_, else_ } => {
            format!(
                "br {}, {}, {}",
                operand(f, *cond),
                label(*then_),
                label(*else_)
            )
        }
        TermKind::Ret { value: Some(v) } => format!("ret {}", operand(f, *v)),
        TermKind::Ret { value: None } => "ret".to_string(),
        TermKind::Goexit => "goexit".to_string(),
        TermKind::Panic { message } => format!("panic {}", quote(message)),
        TermKind::Select { arms } => {
            let arms: Vec<String> = arms
                .iter()
                .map(|arm| {
                    let t = label(arm.target);
                    match &arm.kind {
                        ArmKind::Recv {
                            chan,
                            into: Some(v),
                        } => {
                            format!("recv {} into %{} -> {t}", operand(f, *chan), f.reg_name(*v))
                        }
                        ArmKind::Recv { chan, into: None } => {
                            format!("recv {} -> {t}", operand(f, *chan))
                        }
                        ArmKind::Send { chan, value } => {
                            format!("send {}, {} -> {t}", operand(f, *chan), operand(f, *value))
                        }
                        ArmKind::Default => format!("default -> {t}"),
                    }
                })
                .collect();
            format!("select {}", arms.join(", "))
        }
    }
}

fn print_function(out: &mut String, prog: &Program, f: &Function) {
    let params: Vec<String> = f
        .params
        .iter()
        .zip(&f.param_types)
        .map(|(&r, t)| format!("%{}: {t}", f.reg_name(r)))
        .collect();
    write!(out, "func @{}({})", f.name, params.join(", ")).unwrap();
    if let Some(t) = f.ret {
        write!(out, " -> {t}").unwrap();
    }
    out.push_str(" {\n");
    for (i, b) in f.blocks.iter().enumerate() {
        // An unlabelled block re-parses as a new block only after a
        // terminator (or at the start); give it a name otherwise.
        let needs_label = b.label.is_none() && i > 0 && f.blocks[i - 1].term.is_none();
        match &b.label {
            Some(l) => writeln!(out, "{l}:").unwrap(),
            None if needs_label => writeln!(out, "{}:", b.name(super::BlockId::new(i))).unwrap(),
            None => {}
        }
        for ins in &b.insts {
            writeln!(out, "    {}", inst(prog, f, &ins.kind)).unwrap();
        }
        if let Some(t) = &b.term {
            writeln!(out, "    {}", terminator(f, &t.kind)).unwrap();
        }
    }
    out.push_str("}\n");
}
