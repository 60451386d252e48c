//! A compiled program: its code, its tables, and the data generated code
//! refers to by index (print formats, messages, select shapes) or by
//! address (globals).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use crate::code::{CodeRoom, CodeTables, ExecutableMemory};
use crate::ir::{ArmKind, FuncId, Program, Span, TermKind, Type};

/// The storage of a program's globals, at a fixed address generated code
/// embeds. One word per global, in `GlobalId` order.
#[derive(Debug)]
pub struct Globals {
    words: Box<[AtomicU64]>,
}

impl Globals {
    pub fn new(prog: &Program) -> Globals {
        Globals {
            words: prog
                .globals
                .iter()
                .map(|g| AtomicU64::new(g.init as u64))
                .collect(),
        }
    }
    /// The address of global `i` (valid while `self` lives; never moves).
    pub fn address(&self, i: usize) -> usize {
        &self.words[i] as *const AtomicU64 as usize
    }
    pub fn words(&self) -> &[AtomicU64] {
        &self.words
    }
    /// The address of every global, in order.
    pub fn addresses(&self) -> Vec<usize> {
        (0..self.words.len()).map(|i| self.address(i)).collect()
    }
}

/// A `print` instruction: the format split at its placeholders, and the
/// types of its operands.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PrintDesc {
    /// `args.len() + 1` literal pieces surrounding the placeholders.
    pub pieces: Vec<String>,
    pub arg_types: Vec<Type>,
}

impl PrintDesc {
    pub fn new(format: &str, arg_types: Vec<Type>) -> PrintDesc {
        PrintDesc {
            pieces: format.split("{}").map(str::to_string).collect(),
            arg_types,
        }
    }

    /// The printed line (without the newline) for these operand values;
    /// refs and chans print `nil` for 0 and `<ref>`/`<chan>` otherwise.
    pub fn render(&self, values: &[u64]) -> String {
        let mut out = String::new();
        for (i, piece) in self.pieces.iter().enumerate() {
            out.push_str(piece);
            if let (Some(&v), Some(t)) = (values.get(i), self.arg_types.get(i)) {
                match t {
                    Type::I64 => out.push_str(&(v as i64).to_string()),
                    Type::Ref if v == 0 => out.push_str("nil"),
                    Type::Ref => out.push_str("<ref>"),
                    Type::Chan if v == 0 => out.push_str("nil"),
                    Type::Chan => out.push_str("<chan>"),
                }
            }
        }
        out
    }
}

/// One arm of a compiled `select`, in order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SelectArmDesc {
    /// Operand: the channel.
    Recv,
    /// Operands: the channel, the value.
    Send,
    /// No operand.
    Default,
}

/// Constants generated code refers to by index.
#[derive(Clone, Default, Debug)]
pub struct ConstantPool {
    pub messages: Vec<String>,
    pub prints: Vec<PrintDesc>,
    pub selects: Vec<Vec<SelectArmDesc>>,
    /// The index of each message in `messages`, so that a program of many
    /// distinct `assert` messages does not search them all for each one.
    message_index: HashMap<String, u32>,
}

impl ConstantPool {
    pub fn message(&mut self, m: &str) -> u32 {
        if let Some(&i) = self.message_index.get(m) {
            return i;
        }
        let i = self.messages.len() as u32;
        self.messages.push(m.to_string());
        self.message_index.insert(m.to_string(), i);
        i
    }
    pub fn print(&mut self, desc: PrintDesc) -> u32 {
        self.prints.push(desc);
        (self.prints.len() - 1) as u32
    }
    pub fn select(&mut self, kind: &TermKind) -> u32 {
        let TermKind::Select { arms } = kind else {
            panic!("not a select")
        };
        self.selects.push(
            arms.iter()
                .map(|a| match a.kind {
                    ArmKind::Recv { .. } => SelectArmDesc::Recv,
                    ArmKind::Send { .. } => SelectArmDesc::Send,
                    ArmKind::Default => SelectArmDesc::Default,
                })
                .collect(),
        );
        (self.selects.len() - 1) as u32
    }
}

/// Addresses of the runtime stubs in a module.
#[derive(Clone, Copy, Default, Debug)]
pub struct StubAddresses {
    /// `extern "C" fn(*mut GoroutineContext) -> u64`: runs the goroutine
    /// until its next runtime call and returns the request word.
    pub switch_to: usize,
    /// Where JIT code calls the runtime.
    pub rt_call: usize,
    /// Where a fresh goroutine starts: calls the function whose address is
    /// in the result register, then makes an `Exit` runtime call.
    pub goroutine_entry: usize,
    /// Where a signal handler redirects an interrupted goroutine
    /// (`MachineContext::push_call(preempt_stub, pc)`): saves every
    /// register, makes an `PreemptStub` runtime call, restores everything
    /// and resumes at `pc`.
    pub preempt_stub: usize,
    /// How the preemption signal's handler hands an interrupted goroutine
    /// straight to the scheduler, without returning (x86-64; `None` where
    /// the handler redirects into `preempt_stub` and returns).
    pub handoff: Option<Handoff>,
}

/// The two addresses of the handler's hand-off (see
/// [`crate::isa::x64::handoff`]): the handler writes the frame
/// `preempt_stub` would have written, with `stub_return` as the return
/// address of its runtime call, and jumps to `leave`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handoff {
    /// `extern "C" fn(*mut GoroutineContext) -> !`: leaves for the
    /// scheduler's stack as `rt_call` does, with the request in the
    /// context.
    pub leave: usize,
    /// The instruction after `preempt_stub`'s call of `rt_call`: where the
    /// goroutine resumes, to restore its registers and return to the
    /// interrupted instruction.
    pub stub_return: usize,
}

/// The target architectures.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
    /// The architecture this process runs on, if it is one of ours.
    pub fn host() -> Option<Arch> {
        Arch::from_name(std::env::consts::ARCH)
    }

    /// Whether this backend's code has a hand-off (`StubAddresses::handoff`):
    /// a way for the preemption signal's handler to leave for the
    /// scheduler without returning.
    pub fn has_handoff(self) -> bool {
        self == Arch::X86_64
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

/// Machine code for a program, before it is published.
#[derive(Debug)]
pub struct Assembled {
    pub arch: Arch,
    pub code: CodeRoom,
    /// Whether the code is rewritten while it runs (compiled for the
    /// patch mechanism), and so is published with a writable view.
    pub patched: bool,
    /// Offsets, not yet rebased.
    pub tables: CodeTables,
    pub function_offsets: Vec<usize>,
    pub stub_offsets: StubAddresses,
    pub pool: ConstantPool,
}

/// A program compiled and published, ready to run.
#[derive(Debug)]
pub struct Module {
    pub arch: Arch,
    pub code: ExecutableMemory,
    pub tables: CodeTables,
    /// Entry address of each function, by `FuncId`.
    pub functions: Vec<usize>,
    pub stubs: StubAddresses,
    pub pool: ConstantPool,
    /// Kept alive for as long as code refers to it.
    pub globals: Globals,
    /// Names and spans of functions and blocks, for reports.
    pub names: Names,
}

/// What reports need to name code: function names, block names, spans.
///
/// A large program's blocks are tens of thousands: their names are kept
/// in one buffer, indexed by a block's number in the program, not in a
/// string per block. (Instruction spans are in the code's tables, one in
/// each [`InstStart`](crate::code::InstStart), recorded as the code is
/// emitted.)
#[derive(Clone, Debug, Default)]
pub struct Names {
    pub functions: Vec<String>,
    pub function_spans: Vec<Span>,
    /// Parameter count of each function (what `spawn` passes).
    pub param_counts: Vec<usize>,
    /// Global names, for diagnoses.
    pub globals: Vec<String>,
    /// Which globals hold a ref: the collector's global roots.
    pub global_is_ref: Vec<bool>,
    /// The program number of each function's first block, and the block
    /// count after the last.
    first_block: Vec<u32>,
    /// Every block's name, one after the other, in program order.
    block_names: String,
    /// Where each block's name ends in `block_names`.
    block_name_ends: Vec<u32>,
}

impl Names {
    /// The names of `prog`'s functions, blocks and globals.
    pub fn new(prog: &Program) -> Names {
        let mut first_block = Vec::with_capacity(prog.funcs.len() + 1);
        let mut first = 0u32;
        for f in &prog.funcs {
            first_block.push(first);
            first += f.blocks.len() as u32;
        }
        first_block.push(first);
        let mut block_names = String::new();
        let mut block_name_ends = Vec::with_capacity(first as usize);
        for f in &prog.funcs {
            for (b, block) in f.blocks.iter().enumerate() {
                block.write_name(crate::ir::BlockId::new(b), &mut block_names);
                block_name_ends.push(block_names.len() as u32);
            }
        }
        Names {
            functions: prog.funcs.iter().map(|f| f.name.clone()).collect(),
            function_spans: prog.funcs.iter().map(|f| f.span).collect(),
            param_counts: prog.funcs.iter().map(|f| f.params.len()).collect(),
            globals: prog.globals.iter().map(|g| g.name.clone()).collect(),
            global_is_ref: prog.globals.iter().map(|g| g.ty == Type::Ref).collect(),
            first_block,
            block_names,
            block_name_ends,
        }
    }

    /// How many blocks function `f` has.
    pub fn block_count(&self, f: FuncId) -> usize {
        let i = f.index();
        match (self.first_block.get(i), self.first_block.get(i + 1)) {
            (Some(a), Some(b)) => (b - a) as usize,
            _ => 0,
        }
    }

    /// The name of block `b` of function `f`, if both exist.
    pub fn block_name(&self, f: usize, b: usize) -> Option<&str> {
        let first = *self.first_block.get(f)? as usize;
        let end = *self.first_block.get(f + 1)? as usize;
        let i = first + b;
        if i >= end {
            return None;
        }
        let start = match i.checked_sub(1) {
            Some(before) => *self.block_name_ends.get(before)? as usize,
            None => 0,
        };
        self.block_names
            .get(start..*self.block_name_ends.get(i)? as usize)
    }

    pub fn function(&self, f: FuncId) -> &str {
        &self.functions[f.index()]
    }
    /// The name of a block that exists (panics otherwise).
    pub fn block(&self, f: FuncId, b: crate::ir::BlockId) -> &str {
        self.block_name(f.index(), b.index())
            .expect("a block of the program")
    }
}

impl Module {
    /// Publishes assembled code (W^X) and rebases its tables: sealed
    /// where it was assembled, or, for code to be patched, copied into a
    /// file that can be mapped writable elsewhere.
    pub fn publish(asm: Assembled, globals: Globals, names: Names) -> std::io::Result<Module> {
        let code = if asm.patched {
            ExecutableMemory::publish(&asm.code)?
        } else {
            ExecutableMemory::seal(asm.code)?
        };
        let base = code.base();
        let mut tables = asm.tables;
        tables.rebase(base);
        let s = asm.stub_offsets;
        Ok(Module {
            arch: asm.arch,
            functions: asm.function_offsets.iter().map(|o| o + base).collect(),
            stubs: StubAddresses {
                switch_to: s.switch_to + base,
                rt_call: s.rt_call + base,
                goroutine_entry: s.goroutine_entry + base,
                preempt_stub: s.preempt_stub + base,
                handoff: s.handoff.map(|h| Handoff {
                    leave: h.leave + base,
                    stub_return: h.stub_return + base,
                }),
            },
            code,
            tables,
            pool: asm.pool,
            globals,
            names,
        })
    }
}

impl Module {
    /// Compiles a verified (and optimised) program for the host and
    /// publishes it.
    pub fn compile(prog: &Program) -> std::io::Result<Module> {
        let arch = Arch::host()
            .ok_or_else(|| std::io::Error::other("this architecture has no JIT backend"))?;
        let globals = Globals::new(prog);
        let asm = crate::isa::assemble(arch, prog, &globals.addresses());
        Module::publish(asm, globals, Names::new(prog))
    }

    /// The address of `@main`.
    pub fn main(&self) -> Option<usize> {
        self.names
            .functions
            .iter()
            .position(|n| n == "main")
            .map(|i| self.functions[i])
    }
}
