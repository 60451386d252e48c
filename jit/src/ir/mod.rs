//! PIR: the program representation every pass and backend shares.
//!
//! A [`Program`] holds header settings, globals and functions. A
//! [`Function`] owns its registers and its blocks; blocks hold
//! [`Inst`]ructions and end in an optional [`Terminator`] (a block without
//! one falls through to the next block in text order). References between
//! entities are typed indices ([`FuncId`], [`GlobalId`], [`Reg`],
//! [`BlockId`]), resolved by the parser; names live in the tables so the
//! printer can reproduce the text. The grammar is documented in
//! `docs/pir.md`; the opcode list is the table in [`opcode`].

pub mod cfg;
pub mod entities;
pub mod error;
pub mod lexer;
mod name;
pub mod opcode;
pub mod parser;
pub mod printer;
pub mod verify;

pub use error::Error;
pub use name::Name;
pub use parser::{parse, parse_with};
pub use printer::print;
pub use verify::{verify, verify_with};

use std::fmt;

pub use entities::{BlockId, FuncId, GlobalId, Reg, Span};
pub use opcode::{ForeignFn, Format, Opcode, TypeSpec};

/// The three value types of PIR.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Type {
    I64,
    /// A GC-managed object, or `nil`.
    Ref,
    /// A channel of i64 values; never nil.
    Chan,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::I64 => "i64",
            Type::Ref => "ref",
            Type::Chan => "chan",
        }
    }
    pub fn from_name(name: &str) -> Option<Type> {
        match name {
            "i64" => Some(Type::I64),
            "ref" => Some(Type::Ref),
            "chan" => Some(Type::Chan),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An instruction operand: a register, an integer literal or `nil`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Operand {
    Reg(Reg),
    Imm(i64),
    Nil,
}

impl Operand {
    pub fn reg(self) -> Option<Reg> {
        match self {
            Operand::Reg(r) => Some(r),
            _ => None,
        }
    }
}

/// The preemption mechanisms a program can ask for (`set preempt = ...`).
/// The default, as in Go since 1.14, is `async`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum PreemptMode {
    /// Function entries and runtime operations only (Go before 1.14).
    Coop,
    /// Signals, checked against the unsafe-point tables (Go 1.14+).
    #[default]
    Async,
    /// Back-edges load a per-thread flag.
    Poll,
    /// Back-edges load from a per-thread poll page.
    Trap,
    /// Back-edges are patched to jump to a yield stub.
    Patch,
}

impl PreemptMode {
    pub const ALL: &'static [PreemptMode] = &[
        PreemptMode::Coop,
        PreemptMode::Async,
        PreemptMode::Poll,
        PreemptMode::Trap,
        PreemptMode::Patch,
    ];
    pub fn name(self) -> &'static str {
        match self {
            PreemptMode::Coop => "coop",
            PreemptMode::Async => "async",
            PreemptMode::Poll => "poll",
            PreemptMode::Trap => "trap",
            PreemptMode::Patch => "patch",
        }
    }
    pub fn from_name(name: &str) -> Option<PreemptMode> {
        PreemptMode::ALL.iter().copied().find(|m| m.name() == name)
    }
}

impl fmt::Display for PreemptMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Header settings (`set key = value`); CLI flags override them.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Settings {
    pub procs: Option<i64>,
    pub preempt: Option<PreemptMode>,
    pub gc_percent: Option<i64>,
    pub opt: Option<i64>,
    pub quantum_us: Option<i64>,
    /// 1: small leaf functions get no stack check at entry, as Go's
    /// compiler does (they are then no cooperative preemption point).
    pub nosplit_leaves: Option<i64>,
}

impl Settings {
    pub const KEYS: &'static [&'static str] = &[
        "procs",
        "preempt",
        "gc_percent",
        "opt",
        "quantum_us",
        "nosplit_leaves",
    ];
}

/// A global variable: i64 (with an initialiser) or ref (starts nil).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Global {
    pub name: String,
    pub ty: Type,
    /// The initial value of an i64 global (0 when the text gives none).
    pub init: i64,
    /// Whether the text wrote an initialiser (kept so printing round-trips).
    pub has_init: bool,
    pub span: Span,
}

/// What the compiler knows of a register.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RegInfo {
    pub name: Name,
    /// Fixed by the register's first definition in the text; filled in by
    /// the verifier, `None` before it has run.
    pub ty: Option<Type>,
}

/// One instruction and where it came from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Inst {
    pub kind: InstKind,
    pub span: Span,
    /// Set by LICM on a load it moved out of a loop (and on the copy a
    /// re-hoist leaves in an inner pre-header), naming the loop's header, so
    /// that disassembly and the hang diagnosis can point at it. Not part of
    /// the text.
    pub hoisted: Hoisted,
}

/// Marks a load that LICM moved, comparing equal to any other mark so that
/// optimisation bookkeeping does not change a program's identity.
#[derive(Clone, Copy, Default, Debug)]
pub struct Hoisted(pub Option<BlockId>);

impl PartialEq for Hoisted {
    fn eq(&self, _: &Hoisted) -> bool {
        true
    }
}
impl Eq for Hoisted {}

impl Inst {
    pub fn new(kind: InstKind, span: Span) -> Inst {
        Inst {
            kind,
            span,
            hoisted: Hoisted::default(),
        }
    }
}

/// The data of an instruction, one variant per [`Format`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum InstKind {
    /// `%d = const K`
    Const { dst: Reg, value: i64 },
    /// `%d = op X`: copy, neg, not, new, len, chan, recv, after.
    Unary { op: Opcode, dst: Reg, arg: Operand },
    /// `%d = op X, Y`: arithmetic, comparisons, get, getref.
    Binary {
        op: Opcode,
        dst: Reg,
        args: [Operand; 2],
    },
    /// `%d = op`: now, procs.
    Nullary { op: Opcode, dst: Reg },
    /// `op X...`: set, setref, yield, gc, setgcpercent, sleep, lockthread,
    /// unlockthread, send, close, notify. As many operands as the opcode's
    /// signature lists.
    Effect { op: Opcode, args: Vec<Operand> },
    /// `%d = load @g` / `%d = load.atomic @g`
    Load {
        op: Opcode,
        dst: Reg,
        global: GlobalId,
    },
    /// `store @g, X` / `store.atomic @g, X`
    Store {
        op: Opcode,
        global: GlobalId,
        value: Operand,
    },
    /// `%d = add.atomic @g, X`
    AtomicAdd {
        dst: Reg,
        global: GlobalId,
        value: Operand,
    },
    /// `%d = cas.atomic @g, OLD, NEW`
    Cas {
        dst: Reg,
        global: GlobalId,
        old: Operand,
        new: Operand,
    },
    /// `[%d =] call @f(X, ...)`
    Call {
        dst: Option<Reg>,
        func: FuncId,
        args: Vec<Operand>,
    },
    /// `spawn @f(X, ...)`
    Spawn { func: FuncId, args: Vec<Operand> },
    /// `print "format", X, ...` (the string unescaped; `{}` placeholders).
    Print { format: String, args: Vec<Operand> },
    /// `assert X, "message"`
    Assert { cond: Operand, message: String },
    /// `ccall NAME[, X]`
    CCall {
        func: ForeignFn,
        arg: Option<Operand>,
    },
}

impl InstKind {
    pub fn opcode(&self) -> Opcode {
        match self {
            InstKind::Const { .. } => Opcode::Const,
            InstKind::Unary { op, .. }
            | InstKind::Binary { op, .. }
            | InstKind::Nullary { op, .. }
            | InstKind::Effect { op, .. }
            | InstKind::Load { op, .. }
            | InstKind::Store { op, .. } => *op,
            InstKind::AtomicAdd { .. } => Opcode::AddAtomic,
            InstKind::Cas { .. } => Opcode::CasAtomic,
            InstKind::Call { .. } => Opcode::Call,
            InstKind::Spawn { .. } => Opcode::Spawn,
            InstKind::Print { .. } => Opcode::Print,
            InstKind::Assert { .. } => Opcode::Assert,
            InstKind::CCall { .. } => Opcode::CCall,
        }
    }

    /// The register this instruction writes, if any.
    pub fn def(&self) -> Option<Reg> {
        match self {
            InstKind::Const { dst, .. }
            | InstKind::Unary { dst, .. }
            | InstKind::Binary { dst, .. }
            | InstKind::Nullary { dst, .. }
            | InstKind::Load { dst, .. }
            | InstKind::AtomicAdd { dst, .. }
            | InstKind::Cas { dst, .. } => Some(*dst),
            InstKind::Call { dst, .. } => *dst,
            _ => None,
        }
    }

    /// The register this instruction writes, mutably, for passes that
    /// rename.
    pub fn def_mut(&mut self) -> Option<&mut Reg> {
        match self {
            InstKind::Const { dst, .. }
            | InstKind::Unary { dst, .. }
            | InstKind::Binary { dst, .. }
            | InstKind::Nullary { dst, .. }
            | InstKind::Load { dst, .. }
            | InstKind::AtomicAdd { dst, .. }
            | InstKind::Cas { dst, .. } => Some(dst),
            InstKind::Call { dst, .. } => dst.as_mut(),
            InstKind::Effect { .. }
            | InstKind::Store { .. }
            | InstKind::Spawn { .. }
            | InstKind::Print { .. }
            | InstKind::Assert { .. }
            | InstKind::CCall { .. } => None,
        }
    }

    /// The operands this instruction reads, in text order.
    pub fn operands(&self) -> Vec<Operand> {
        let mut out = Vec::new();
        self.for_each_operand(|o| out.push(o));
        out
    }

    /// Calls `f` on every operand read, in text order, without allocating.
    #[inline(always)]
    pub fn for_each_operand(&self, mut f: impl FnMut(Operand)) {
        match self {
            InstKind::Const { .. } | InstKind::Nullary { .. } | InstKind::Load { .. } => {}
            InstKind::Unary { arg, .. } => f(*arg),
            InstKind::Binary { args, .. } => args.iter().copied().for_each(f),
            InstKind::Effect { args, .. }
            | InstKind::Call { args, .. }
            | InstKind::Spawn { args, .. }
            | InstKind::Print { args, .. } => args.iter().copied().for_each(f),
            InstKind::Store { value, .. } | InstKind::AtomicAdd { value, .. } => f(*value),
            InstKind::Cas { old, new, .. } => {
                f(*old);
                f(*new)
            }
            InstKind::Assert { cond, .. } => f(*cond),
            InstKind::CCall { arg, .. } => arg.iter().copied().for_each(f),
        }
    }

    /// Mutable access to every operand read, for passes that rename.
    pub fn for_each_operand_mut(&mut self, mut f: impl FnMut(&mut Operand)) {
        match self {
            InstKind::Const { .. } | InstKind::Nullary { .. } | InstKind::Load { .. } => {}
            InstKind::Unary { arg, .. } => f(arg),
            InstKind::Binary { args, .. } => args.iter_mut().for_each(f),
            InstKind::Effect { args, .. }
            | InstKind::Call { args, .. }
            | InstKind::Spawn { args, .. }
            | InstKind::Print { args, .. } => args.iter_mut().for_each(f),
            InstKind::Store { value, .. } | InstKind::AtomicAdd { value, .. } => f(value),
            InstKind::Cas { old, new, .. } => {
                f(old);
                f(new)
            }
            InstKind::Assert { cond, .. } => f(cond),
            InstKind::CCall { arg, .. } => arg.iter_mut().for_each(f),
        }
    }

    /// The global this instruction accesses, if any.
    pub fn global(&self) -> Option<GlobalId> {
        match self {
            InstKind::Load { global, .. }
            | InstKind::Store { global, .. }
            | InstKind::AtomicAdd { global, .. }
            | InstKind::Cas { global, .. } => Some(*global),
            _ => None,
        }
    }
}

/// One arm of a `select`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SelectArm {
    pub kind: ArmKind,
    pub target: BlockId,
    pub span: Span,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ArmKind {
    /// `recv %c -> L` or `recv %c into %v -> L` (defines `%v` on the edge to
    /// `L` only).
    Recv { chan: Operand, into: Option<Reg> },
    /// `send %c, X -> L`
    Send { chan: Operand, value: Operand },
    /// `default -> L`
    Default,
}

/// How a block ends.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Terminator {
    pub kind: TermKind,
    pub span: Span,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TermKind {
    Jmp {
        target: BlockId,
    },
    /// Taken (to `then_`) when `cond` != 0.
    Br {
        cond: Operand,
        then_: BlockId,
        else_: BlockId,
    },
    Ret {
        value: Option<Operand>,
    },
    Goexit,
    Panic {
        message: String,
    },
    Select {
        arms: Vec<SelectArm>,
    },
}

impl TermKind {
    pub fn opcode(&self) -> Opcode {
        match self {
            TermKind::Jmp { .. } => Opcode::Jmp,
            TermKind::Br { .. } => Opcode::Br,
            TermKind::Ret { .. } => Opcode::Ret,
            TermKind::Goexit => Opcode::Goexit,
            TermKind::Panic { .. } => Opcode::Panic,
            TermKind::Select { .. } => Opcode::Select,
        }
    }

    /// Successor blocks, in text order (a block may appear twice).
    pub fn successors(&self) -> Vec<BlockId> {
        let mut out = Vec::new();
        self.for_each_successor(|b| out.push(b));
        out
    }

    /// Calls `f` on each successor block, in text order.
    pub fn for_each_successor(&self, mut f: impl FnMut(BlockId)) {
        match self {
            TermKind::Jmp { target } => f(*target),
            TermKind::Br { then_, else_, .. } => {
                f(*then_);
                f(*else_)
            }
            TermKind::Ret { .. } | TermKind::Goexit | TermKind::Panic { .. } => {}
            TermKind::Select { arms } => arms.iter().for_each(|a| f(a.target)),
        }
    }

    /// Mutable successor references, for passes that retarget edges.
    pub fn for_each_successor_mut(&mut self, mut f: impl FnMut(&mut BlockId)) {
        match self {
            TermKind::Jmp { target } => f(target),
            TermKind::Br { then_, else_, .. } => {
                f(then_);
                f(else_)
            }
            TermKind::Ret { .. } | TermKind::Goexit | TermKind::Panic { .. } => {}
            TermKind::Select { arms } => arms.iter_mut().for_each(|a| f(&mut a.target)),
        }
    }

    /// The operands the terminator reads.
    pub fn for_each_operand(&self, mut f: impl FnMut(Operand)) {
        match self {
            TermKind::Br { cond, .. } => f(*cond),
            TermKind::Ret { value } => value.iter().copied().for_each(f),
            TermKind::Select { arms } => {
                for arm in arms {
                    match &arm.kind {
                        ArmKind::Recv { chan, .. } => f(*chan),
                        ArmKind::Send { chan, value } => {
                            f(*chan);
                            f(*value)
                        }
                        ArmKind::Default => {}
                    }
                }
            }
            TermKind::Jmp { .. } | TermKind::Goexit | TermKind::Panic { .. } => {}
        }
    }

    pub fn for_each_operand_mut(&mut self, mut f: impl FnMut(&mut Operand)) {
        match self {
            TermKind::Br { cond, .. } => f(cond),
            TermKind::Ret { value } => value.iter_mut().for_each(f),
            TermKind::Select { arms } => {
                for arm in arms {
                    match &mut arm.kind {
                        ArmKind::Recv { chan, .. } => f(chan),
                        ArmKind::Send { chan, value } => {
                            f(chan);
                            f(value)
                        }
                        ArmKind::Default => {}
                    }
                }
            }
            TermKind::Jmp { .. } | TermKind::Goexit | TermKind::Panic { .. } => {}
        }
    }

    /// Whether the terminator enters the runtime. A `select` whose only arm
    /// is `default` is a plain jump (seed Bug 16) and does not.
    pub fn is_runtime_op(&self) -> bool {
        match self {
            TermKind::Select { arms } => !arms.iter().all(|a| a.kind == ArmKind::Default),
            other => other.opcode().is_runtime_op(),
        }
    }
}

/// A basic block.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Block {
    /// `None` only for an unlabelled block (the first one, or code after a
    /// terminator that nothing can reach).
    pub label: Option<String>,
    pub span: Span,
    pub insts: Vec<Inst>,
    /// `None`: falls through to the next block in text order.
    pub term: Option<Terminator>,
}

impl Block {
    /// The label, or a stable stand-in for an unlabelled block.
    pub fn name(&self, id: BlockId) -> String {
        let mut s = String::new();
        self.write_name(id, &mut s);
        s
    }

    /// Appends [`Block::name`] to `out`.
    pub fn write_name(&self, id: BlockId, out: &mut String) {
        match &self.label {
            Some(l) => out.push_str(l),
            None if id.index() == 0 => out.push_str("entry"),
            None => {
                use std::fmt::Write as _;
                let _ = write!(out, "_b{}", id.index());
            }
        }
    }
}

/// A function.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Function {
    pub name: String,
    pub span: Span,
    /// Where the closing `}` stands (for "falls off the end" errors).
    pub end: Span,
    /// Parameters are the first registers, in order.
    pub params: Vec<Reg>,
    /// Declared parameter types (also the registers' types).
    pub param_types: Vec<Type>,
    pub ret: Option<Type>,
    pub regs: Vec<RegInfo>,
    pub blocks: Vec<Block>,
    /// The last control-flow graph built by [`Function::cfg`], kept so the
    /// verifier, the optimiser and the register allocator share one.
    pub(crate) cfg: cfg::CfgCache,
}

impl Function {
    /// The function's control-flow graph: the one built last if the edges
    /// are still those it was built from, else a new one (which is kept).
    /// A pass that changes edges needs to do nothing else: the next caller
    /// finds them changed and rebuilds.
    pub fn cfg(&self) -> std::sync::Arc<cfg::Cfg> {
        self.cfg.get(self)
    }

    pub fn reg_name(&self, r: Reg) -> &str {
        &self.regs[r.index()].name
    }

    /// The type of a register. The program must have been verified.
    pub fn reg_type(&self, r: Reg) -> Type {
        self.regs[r.index()].ty.unwrap_or_else(|| {
            panic!(
                "register %{} has no type: verify the program first",
                self.reg_name(r)
            )
        })
    }

    /// The type of an operand (`nil` is a ref, a literal an i64).
    pub fn operand_type(&self, o: Operand) -> Type {
        match o {
            Operand::Reg(r) => self.reg_type(r),
            Operand::Imm(_) => Type::I64,
            Operand::Nil => Type::Ref,
        }
    }

    pub fn block_name(&self, b: BlockId) -> String {
        self.blocks[b.index()].name(b)
    }

    /// The successors of a block, including the fall-through edge.
    pub fn successors(&self, b: BlockId) -> Vec<BlockId> {
        let mut out = Vec::new();
        self.for_each_successor(b, |s| out.push(s));
        out
    }

    /// Calls `f` on each successor of block `b`, in text order.
    pub fn for_each_successor(&self, b: BlockId, mut f: impl FnMut(BlockId)) {
        match &self.blocks[b.index()].term {
            Some(t) => t.kind.for_each_successor(f),
            None if b.index() + 1 < self.blocks.len() => f(BlockId::new(b.index() + 1)),
            None => {}
        }
    }

    /// Adds a register and returns it.
    pub fn add_reg(&mut self, name: impl Into<Name>, ty: Option<Type>) -> Reg {
        self.regs.push(RegInfo {
            name: name.into(),
            ty,
        });
        Reg::new(self.regs.len() - 1)
    }

    /// Number of instructions, terminators included.
    pub fn inst_count(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.insts.len() + usize::from(b.term.is_some()))
            .sum()
    }
}

/// A whole PIR program.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Program {
    pub settings: Settings,
    pub globals: Vec<Global>,
    pub funcs: Vec<Function>,
}

impl Program {
    pub fn func(&self, f: FuncId) -> &Function {
        &self.funcs[f.index()]
    }
    pub fn global(&self, g: GlobalId) -> &Global {
        &self.globals[g.index()]
    }
    pub fn func_by_name(&self, name: &str) -> Option<FuncId> {
        self.funcs
            .iter()
            .position(|f| f.name == name)
            .map(FuncId::new)
    }
    pub fn global_by_name(&self, name: &str) -> Option<GlobalId> {
        self.globals
            .iter()
            .position(|g| g.name == name)
            .map(GlobalId::new)
    }
    /// The entry point, `@main`.
    pub fn main(&self) -> Option<FuncId> {
        self.func_by_name("main")
    }
    /// Number of instructions in the program, terminators included.
    pub fn inst_count(&self) -> usize {
        self.funcs.iter().map(Function::inst_count).sum()
    }
}
