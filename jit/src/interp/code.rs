//! The flat form the interpreter runs: every function lowered once, before
//! the first instruction executes, to a vector of small copyable [`Op`]s.
//!
//! Lowering resolves everything the run loop would otherwise look up:
//!
//! - Operands become *slots* of the frame. A frame holds the function's
//!   registers (slots `0..regs`, parameters first) followed by its constants
//!   (each distinct literal and `nil`, once), so every operand is read the
//!   same way, by index, with no match on its kind. A new frame is a copy of
//!   [`FuncCode::frame_init`] (registers zero, constants in place).
//! - Blocks are laid out in text order; a block that falls through gets an
//!   explicit [`Op::Jmp`], so that every block entry goes through a jump and
//!   can be published to the watchdog. Jumps name the target block, whose
//!   first op is [`FuncCode::block_start`].
//! - A `select` whose only arms are `default` becomes a plain jump, as the
//!   JIT compiles it (it is not a runtime operation).
//! - Strings, print formats (split at their `{}` once), argument lists and
//!   the rarely executed runtime operations live in side tables, so an
//!   [`Op`] stays 20 bytes.

use std::collections::HashMap;

use crate::ir::{
    ArmKind, BlockId, Error, ForeignFn, FuncId, Function, InstKind, Opcode, Operand, Program, Span,
    TermKind, Type,
};

use super::value::Value;

/// An index into a frame: a register or a constant.
pub(crate) type Slot = u32;

/// "No slot": a call or `ret` without a value.
pub(crate) const NO_SLOT: Slot = u32::MAX;

/// Bytes a frame is charged on the goroutine's stack besides its registers
/// and outgoing arguments: return address, saved frame pointer and two
/// words of spill space, as a JIT frame has.
pub const FRAME_BASE_BYTES: u64 = 32;

/// One flat instruction.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Copy {
        dst: Slot,
        src: Slot,
    },
    Add {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Sub {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Mul {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Div {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Rem {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    And {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Or {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Xor {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Shl {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Shr {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Sar {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Neg {
        dst: Slot,
        a: Slot,
    },
    Not {
        dst: Slot,
        a: Slot,
    },
    Eq {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Ne {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Lt {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Le {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Gt {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Ge {
        dst: Slot,
        a: Slot,
        b: Slot,
    },
    Load {
        dst: Slot,
        global: u32,
    },
    LoadAtomic {
        dst: Slot,
        global: u32,
    },
    Store {
        global: u32,
        src: Slot,
    },
    StoreAtomic {
        global: u32,
        src: Slot,
    },
    AddAtomic {
        dst: Slot,
        global: u32,
        src: Slot,
    },
    Cas {
        dst: Slot,
        global: u32,
        old: Slot,
        new: Slot,
    },
    New {
        dst: Slot,
        len: Slot,
    },
    Len {
        dst: Slot,
        obj: Slot,
    },
    Get {
        dst: Slot,
        obj: Slot,
        index: Slot,
    },
    GetRef {
        dst: Slot,
        obj: Slot,
        index: Slot,
    },
    Set {
        obj: Slot,
        index: Slot,
        src: Slot,
    },
    SetRef {
        obj: Slot,
        index: Slot,
        src: Slot,
    },
    /// `args` indexes [`FuncCode::arg_slots`]; `dst` may be [`NO_SLOT`].
    Call {
        dst: Slot,
        func: u32,
        args: u32,
        nargs: u32,
    },
    /// Index into [`FuncCode::prints`].
    Print {
        id: u32,
    },
    /// `msg` indexes [`FuncCode::strings`].
    Assert {
        cond: Slot,
        msg: u32,
    },
    /// An operation that needs the scheduler; index into [`FuncCode::runtime`].
    Runtime {
        id: u32,
    },
    Jmp {
        block: u32,
    },
    Br {
        cond: Slot,
        then_: u32,
        else_: u32,
    },
    /// `src` may be [`NO_SLOT`].
    Ret {
        src: Slot,
    },
    Panic {
        msg: u32,
    },
}

/// A `print`: the format cut at its placeholders, and the operands.
#[derive(Clone, Debug)]
pub(crate) struct PrintOp {
    /// One more piece than operands (extra placeholders stay literal).
    pub pieces: Box<[Box<str>]>,
    pub args: Box<[Slot]>,
}

/// A `select` arm, lowered.
#[derive(Clone, Debug)]
pub(crate) struct SelectCase {
    pub kind: SelectCaseKind,
    pub target: u32,
}

#[derive(Clone, Debug)]
pub(crate) enum SelectCaseKind {
    Recv { chan: Slot, into: Slot },
    Send { chan: Slot, value: Slot },
    Default,
}

/// An operation that needs the scheduler, lowered.
#[derive(Clone, Debug)]
pub(crate) enum RtOp {
    Spawn { func: u32, args: Box<[Slot]> },
    Yield,
    Goexit,
    Gc,
    SetGcPercent { percent: Slot },
    Sleep { micros: Slot },
    Now { dst: Slot },
    LockThread,
    UnlockThread,
    Procs { dst: Slot },
    MakeChan { dst: Slot, cap: Slot },
    Send { chan: Slot, value: Slot },
    Recv { dst: Slot, chan: Slot },
    Close { chan: Slot },
    After { dst: Slot, micros: Slot },
    Notify { chan: Slot },
    Select { arms: Box<[SelectCase]> },
    CCall { func: ForeignFn, arg: Option<Slot> },
}

impl RtOp {
    /// The register the scheduler's result goes to, if the operation has one.
    pub fn dst(&self) -> Option<Slot> {
        match *self {
            RtOp::Now { dst }
            | RtOp::Procs { dst }
            | RtOp::MakeChan { dst, .. }
            | RtOp::Recv { dst, .. }
            | RtOp::After { dst, .. } => Some(dst),
            _ => None,
        }
    }
}

/// One function, lowered.
#[derive(Clone, Debug)]
pub(crate) struct FuncCode {
    pub name: String,
    /// Where `func @name` stands: the position a stack overflow reports for
    /// the frame that could not be entered.
    pub span: Span,
    pub ops: Box<[Op]>,
    /// The source position of each op.
    pub spans: Box<[Span]>,
    /// The first op of each block.
    pub block_start: Box<[u32]>,
    pub block_names: Box<[String]>,
    pub n_params: u32,
    /// Registers (zero) then constants: a fresh frame.
    pub frame_init: Box<[Value]>,
    /// What the frame costs on the goroutine's stack, see
    /// [`frame_bytes`](super::frame_bytes).
    pub frame_bytes: u64,
    pub arg_slots: Box<[Slot]>,
    pub prints: Box<[PrintOp]>,
    pub strings: Box<[String]>,
    pub runtime: Box<[RtOp]>,
}

/// A global as the interpreter needs it.
#[derive(Clone, Debug)]
pub(crate) struct GlobalCode {
    pub ty: Type,
    pub init: i64,
}

/// A whole program, lowered.
#[derive(Clone, Debug)]
pub(crate) struct Code {
    pub funcs: Vec<FuncCode>,
    pub globals: Vec<GlobalCode>,
    pub main: u32,
}

impl Code {
    pub fn lower(prog: &Program) -> Result<Code, Error> {
        let main = prog
            .main()
            .ok_or_else(|| Error::new(Span::new(1, 1), "the program has no function @main"))?;
        if prog.funcs.len() >= u32::MAX as usize || prog.globals.len() >= u32::MAX as usize {
            return Err(Error::new(Span::new(1, 1), "too many functions or globals"));
        }
        let funcs = prog
            .funcs
            .iter()
            .map(|f| Lowerer::new(f).lower(prog))
            .collect::<Result<Vec<_>, Error>>()?;
        let globals = prog
            .globals
            .iter()
            .map(|g| GlobalCode {
                ty: g.ty,
                init: if g.ty == Type::I64 { g.init } else { 0 },
            })
            .collect();
        Ok(Code {
            funcs,
            globals,
            main: main.0,
        })
    }
}

/// What a frame of `f` is charged on a goroutine's stack: 32 bytes, 8 per
/// register (parameters included) and 8 per argument of its widest `call`.
pub fn frame_bytes(f: &Function) -> u64 {
    let max_args = f
        .blocks
        .iter()
        .flat_map(|b| &b.insts)
        .filter_map(|i| match &i.kind {
            InstKind::Call { args, .. } => Some(args.len()),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    FRAME_BASE_BYTES + 8 * f.regs.len() as u64 + 8 * max_args as u64
}

struct Lowerer<'f> {
    f: &'f Function,
    consts: Vec<Value>,
    const_slots: HashMap<Value, Slot>,
    ops: Vec<Op>,
    spans: Vec<Span>,
    arg_slots: Vec<Slot>,
    prints: Vec<PrintOp>,
    strings: Vec<String>,
    runtime: Vec<RtOp>,
}

fn index32(i: usize) -> u32 {
    // Every table is far below 2^32 entries: a source file of that size
    // would not have been parsed.
    u32::try_from(i).unwrap_or(u32::MAX - 1)
}

impl<'f> Lowerer<'f> {
    fn new(f: &'f Function) -> Lowerer<'f> {
        Lowerer {
            f,
            consts: Vec::new(),
            const_slots: HashMap::new(),
            ops: Vec::new(),
            spans: Vec::new(),
            arg_slots: Vec::new(),
            prints: Vec::new(),
            strings: Vec::new(),
            runtime: Vec::new(),
        }
    }

    fn constant(&mut self, v: Value) -> Slot {
        if let Some(&s) = self.const_slots.get(&v) {
            return s;
        }
        let s = index32(self.f.regs.len() + self.consts.len());
        self.consts.push(v);
        self.const_slots.insert(v, s);
        s
    }

    fn slot(&mut self, o: Operand) -> Slot {
        match o {
            Operand::Reg(r) => index32(r.index()),
            Operand::Imm(k) => self.constant(Value::int(k)),
            Operand::Nil => self.constant(Value::NIL),
        }
    }

    /// Operand `i` of a list, or the constant 0 if the list is short
    /// (the parser always gives the full list).
    fn nth(&mut self, args: &[Operand], i: usize) -> Slot {
        let o = args.get(i).copied().unwrap_or(Operand::Imm(0));
        self.slot(o)
    }

    fn string(&mut self, s: &str) -> u32 {
        self.strings.push(s.to_string());
        index32(self.strings.len() - 1)
    }

    fn rt(&mut self, op: RtOp) -> Op {
        self.runtime.push(op);
        Op::Runtime {
            id: index32(self.runtime.len() - 1),
        }
    }

    fn push(&mut self, op: Op, span: Span) {
        self.ops.push(op);
        self.spans.push(span);
    }

    fn lower(mut self, prog: &Program) -> Result<FuncCode, Error> {
        let f = self.f;
        let mut block_start = Vec::with_capacity(f.blocks.len().max(1));
        for (b, block) in f.blocks.iter().enumerate() {
            block_start.push(index32(self.ops.len()));
            for inst in &block.insts {
                let op = self.inst(prog, &inst.kind, inst.span)?;
                self.push(op, inst.span);
            }
            match &block.term {
                Some(t) => {
                    let op = self.term(&t.kind);
                    self.push(op, t.span);
                }
                None if b + 1 < f.blocks.len() => {
                    let span = block.insts.last().map_or(block.span, |i| i.span);
                    self.push(
                        Op::Jmp {
                            block: index32(b + 1),
                        },
                        span,
                    );
                }
                // Falling off the end does not verify; return rather than
                // run past the function.
                None => self.push(Op::Ret { src: NO_SLOT }, f.end),
            }
        }
        if f.blocks.is_empty() {
            block_start.push(0);
            self.push(Op::Ret { src: NO_SLOT }, f.end);
        }
        let block_names = if f.blocks.is_empty() {
            vec!["entry".to_string()]
        } else {
            (0..f.blocks.len())
                .map(|b| f.block_name(BlockId::new(b)))
                .collect()
        };
        let mut frame_init = vec![Value::int(0); f.regs.len()];
        frame_init.extend_from_slice(&self.consts);
        Ok(FuncCode {
            name: f.name.clone(),
            span: f.span,
            ops: self.ops.into(),
            spans: self.spans.into(),
            block_start: block_start.into(),
            block_names: block_names.into(),
            n_params: index32(f.params.len()),
            frame_init: frame_init.into(),
            frame_bytes: frame_bytes(f),
            arg_slots: self.arg_slots.into(),
            prints: self.prints.into(),
            strings: self.strings.into(),
            runtime: self.runtime.into(),
        })
    }

    fn inst(&mut self, prog: &Program, kind: &InstKind, span: Span) -> Result<Op, Error> {
        let malformed = |op: Opcode| {
            Error::new(
                span,
                format!("internal error: '{op}' in a form the interpreter does not know"),
            )
        };
        let r = |reg: crate::ir::Reg| index32(reg.index());
        Ok(match kind {
            InstKind::Const { dst, value } => Op::Copy {
                dst: r(*dst),
                src: self.constant(Value::int(*value)),
            },
            InstKind::Unary { op, dst, arg } => {
                let (dst, a) = (r(*dst), self.slot(*arg));
                match op {
                    Opcode::Copy => Op::Copy { dst, src: a },
                    Opcode::Neg => Op::Neg { dst, a },
                    Opcode::Not => Op::Not { dst, a },
                    Opcode::New => Op::New { dst, len: a },
                    Opcode::Len => Op::Len { dst, obj: a },
                    Opcode::Chan => self.rt(RtOp::MakeChan { dst, cap: a }),
                    Opcode::Recv => self.rt(RtOp::Recv { dst, chan: a }),
                    Opcode::After => self.rt(RtOp::After { dst, micros: a }),
                    other => return Err(malformed(*other)),
                }
            }
            InstKind::Binary { op, dst, args } => {
                let (dst, a, b) = (r(*dst), self.slot(args[0]), self.slot(args[1]));
                match op {
                    Opcode::Add => Op::Add { dst, a, b },
                    Opcode::Sub => Op::Sub { dst, a, b },
                    Opcode::Mul => Op::Mul { dst, a, b },
                    Opcode::Div => Op::Div { dst, a, b },
                    Opcode::Rem => Op::Rem { dst, a, b },
                    Opcode::And => Op::And { dst, a, b },
                    Opcode::Or => Op::Or { dst, a, b },
                    Opcode::Xor => Op::Xor { dst, a, b },
                    Opcode::Shl => Op::Shl { dst, a, b },
                    Opcode::Shr => Op::Shr { dst, a, b },
                    Opcode::Sar => Op::Sar { dst, a, b },
                    Opcode::Eq => Op::Eq { dst, a, b },
                    Opcode::Ne => Op::Ne { dst, a, b },
                    Opcode::Lt => Op::Lt { dst, a, b },
                    Opcode::Le => Op::Le { dst, a, b },
                    Opcode::Gt => Op::Gt { dst, a, b },
                    Opcode::Ge => Op::Ge { dst, a, b },
                    Opcode::Get => Op::Get {
                        dst,
                        obj: a,
                        index: b,
                    },
                    Opcode::GetRef => Op::GetRef {
                        dst,
                        obj: a,
                        index: b,
                    },
                    other => return Err(malformed(*other)),
                }
            }
            InstKind::Nullary { op, dst } => {
                let dst = r(*dst);
                match op {
                    Opcode::Now => self.rt(RtOp::Now { dst }),
                    Opcode::Procs => self.rt(RtOp::Procs { dst }),
                    other => return Err(malformed(*other)),
                }
            }
            InstKind::Effect { op, args } => match op {
                Opcode::Set | Opcode::SetRef => {
                    let obj = self.nth(args, 0);
                    let index = self.nth(args, 1);
                    let src = self.nth(args, 2);
                    if *op == Opcode::Set {
                        Op::Set { obj, index, src }
                    } else {
                        Op::SetRef { obj, index, src }
                    }
                }
                Opcode::Yield => self.rt(RtOp::Yield),
                Opcode::Gc => self.rt(RtOp::Gc),
                Opcode::LockThread => self.rt(RtOp::LockThread),
                Opcode::UnlockThread => self.rt(RtOp::UnlockThread),
                Opcode::SetGcPercent => {
                    let percent = self.nth(args, 0);
                    self.rt(RtOp::SetGcPercent { percent })
                }
                Opcode::Sleep => {
                    let micros = self.nth(args, 0);
                    self.rt(RtOp::Sleep { micros })
                }
                Opcode::Send => {
                    let chan = self.nth(args, 0);
                    let value = self.nth(args, 1);
                    self.rt(RtOp::Send { chan, value })
                }
                Opcode::Close => {
                    let chan = self.nth(args, 0);
                    self.rt(RtOp::Close { chan })
                }
                Opcode::Notify => {
                    let chan = self.nth(args, 0);
                    self.rt(RtOp::Notify { chan })
                }
                other => return Err(malformed(*other)),
            },
            InstKind::Load { op, dst, global } => {
                let (dst, global) = (r(*dst), index32(global.index()));
                match op {
                    Opcode::Load => Op::Load { dst, global },
                    Opcode::LoadAtomic => Op::LoadAtomic { dst, global },
                    other => return Err(malformed(*other)),
                }
            }
            InstKind::Store { op, global, value } => {
                let (global, src) = (index32(global.index()), self.slot(*value));
                match op {
                    Opcode::Store => Op::Store { global, src },
                    Opcode::StoreAtomic => Op::StoreAtomic { global, src },
                    other => return Err(malformed(*other)),
                }
            }
            InstKind::AtomicAdd { dst, global, value } => Op::AddAtomic {
                dst: r(*dst),
                global: index32(global.index()),
                src: self.slot(*value),
            },
            InstKind::Cas {
                dst,
                global,
                old,
                new,
            } => Op::Cas {
                dst: r(*dst),
                global: index32(global.index()),
                old: self.slot(*old),
                new: self.slot(*new),
            },
            InstKind::Call { dst, func, args } => {
                check_func(prog, *func, span)?;
                let start = index32(self.arg_slots.len());
                for &a in args {
                    let s = self.slot(a);
                    self.arg_slots.push(s);
                }
                Op::Call {
                    dst: dst.map_or(NO_SLOT, r),
                    func: func.0,
                    args: start,
                    nargs: index32(args.len()),
                }
            }
            InstKind::Spawn { func, args } => {
                check_func(prog, *func, span)?;
                let args = args.iter().map(|&a| self.slot(a)).collect();
                self.rt(RtOp::Spawn { func: func.0, args })
            }
            InstKind::Print { format, args } => {
                let pieces = format.splitn(args.len() + 1, "{}").map(Box::from).collect();
                let args = args.iter().map(|&a| self.slot(a)).collect();
                self.prints.push(PrintOp { pieces, args });
                Op::Print {
                    id: index32(self.prints.len() - 1),
                }
            }
            InstKind::Assert { cond, message } => Op::Assert {
                cond: self.slot(*cond),
                msg: self.string(message),
            },
            InstKind::CCall { func, arg } => {
                let arg = arg.map(|a| self.slot(a));
                self.rt(RtOp::CCall { func: *func, arg })
            }
        })
    }

    fn term(&mut self, kind: &TermKind) -> Op {
        match kind {
            TermKind::Jmp { target } => Op::Jmp { block: target.0 },
            TermKind::Br { cond, then_, else_ } => Op::Br {
                cond: self.slot(*cond),
                then_: then_.0,
                else_: else_.0,
            },
            TermKind::Ret { value } => Op::Ret {
                src: value.map_or(NO_SLOT, |v| self.slot(v)),
            },
            TermKind::Goexit => self.rt(RtOp::Goexit),
            TermKind::Panic { message } => Op::Panic {
                msg: self.string(message),
            },
            TermKind::Select { arms } if arms.iter().all(|a| a.kind == ArmKind::Default) => {
                match arms.first() {
                    Some(a) => Op::Jmp { block: a.target.0 },
                    None => self.rt(RtOp::Select { arms: Box::new([]) }),
                }
            }
            TermKind::Select { arms } => {
                let arms = arms
                    .iter()
                    .map(|a| SelectCase {
                        kind: match &a.kind {
                            ArmKind::Recv { chan, into } => SelectCaseKind::Recv {
                                chan: self.slot(*chan),
                                into: into.map_or(NO_SLOT, |r| index32(r.index())),
                            },
                            ArmKind::Send { chan, value } => SelectCaseKind::Send {
                                chan: self.slot(*chan),
                                value: self.slot(*value),
                            },
                            ArmKind::Default => SelectCaseKind::Default,
                        },
                        target: a.target.0,
                    })
                    .collect();
                self.rt(RtOp::Select { arms })
            }
        }
    }
}

fn check_func(prog: &Program, f: FuncId, span: Span) -> Result<(), Error> {
    if f.index() < prog.funcs.len() {
        Ok(())
    } else {
        Err(Error::new(
            span,
            format!("internal error: call of unknown function {f}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse;

    #[test]
    fn ops_stay_small() {
        assert!(
            std::mem::size_of::<Op>() <= 20,
            "{}",
            std::mem::size_of::<Op>()
        );
    }

    #[test]
    fn constants_follow_registers_once_each() {
        let p = parse(
            "func @main() {\n    %a = add 1, 2\n    %b = add %a, 1\n    %p = copy nil\n    ret\n}\n",
        )
        .unwrap();
        let code = Code::lower(&p).unwrap();
        let f = &code.funcs[0];
        // registers a, b, p; constants 1, 2, nil
        assert_eq!(f.frame_init.len(), 6);
        assert_eq!(f.frame_init[3], Value::int(1));
        assert_eq!(f.frame_init[4], Value::int(2));
        assert_eq!(f.frame_init[5], Value::NIL);
        assert_eq!(f.frame_bytes, 32 + 8 * 3);
    }

    #[test]
    fn fall_through_becomes_a_jump() {
        let p = parse("func @main() {\n    %a = const 1\nnext:\n    ret\n}\n").unwrap();
        let code = Code::lower(&p).unwrap();
        let f = &code.funcs[0];
        assert!(matches!(f.ops[1], Op::Jmp { block: 1 }));
        assert_eq!(&*f.block_start, &[0, 2]);
    }

    #[test]
    fn default_only_select_is_a_jump() {
        let p = parse("func @main() {\n    select default -> out\nout:\n    ret\n}\n").unwrap();
        let code = Code::lower(&p).unwrap();
        assert!(matches!(code.funcs[0].ops[0], Op::Jmp { block: 1 }));
        assert!(code.funcs[0].runtime.is_empty());
    }

    #[test]
    fn no_main_is_an_error() {
        let p = parse("func @f() {\n    ret\n}\n").unwrap();
        assert!(Code::lower(&p).is_err());
    }
}
