//! The opcode table: one line per PIR instruction, followed by every pass.
//!
//! Each row gives the mnemonic, the syntactic [`Format`], the operand and
//! result types, and the properties passes rely on. The parser looks
//! mnemonics up here, the printer prints them from here, the verifier checks
//! operand types from here, LICM and the backends read the flags from here.
//! Adding an instruction starts with a row in this table.

use std::fmt;

use super::Type;

/// The textual shape of an instruction; it decides how it is parsed and
/// printed and which [`InstKind`](super::InstKind) variant holds it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// `%d = const K`
    Const,
    /// `%d = op X`
    Unary,
    /// `%d = op X, Y`
    Binary,
    /// `%d = op`
    Nullary,
    /// `op`, `op X`, `op X, Y`, `op X, Y, Z`: no result, as many operands as
    /// the signature lists.
    Effect,
    /// `%d = op @g`
    Load,
    /// `op @g, X`
    Store,
    /// `%d = op @g, X`
    AtomicAdd,
    /// `%d = op @g, OLD, NEW`
    Cas,
    /// `[%d =] call @f(X, ...)`
    Call,
    /// `spawn @f(X, ...)`
    Spawn,
    /// `print "format", X, ...`
    Print,
    /// `assert X, "message"`
    Assert,
    /// `ccall NAME[, X]`
    CCall,
    /// `jmp L`
    Jmp,
    /// `br X, L1, L2`
    Br,
    /// `ret [X]`
    Ret,
    /// `goexit`
    Goexit,
    /// `panic "message"`
    Panic,
    /// `select ARM, ARM, ...`
    Select,
}

/// How an operand or result is typed in a signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TypeSpec {
    I64,
    Ref,
    Chan,
    /// Any type, but every `Same` in one signature (operands and result)
    /// is the same type.
    Same,
}

impl TypeSpec {
    pub fn exact(self) -> Option<Type> {
        match self {
            TypeSpec::I64 => Some(Type::I64),
            TypeSpec::Ref => Some(Type::Ref),
            TypeSpec::Chan => Some(Type::Chan),
            TypeSpec::Same => None,
        }
    }
}

/// Properties of an opcode, as bits.
pub mod flags {
    /// Ends a block.
    pub const TERMINATOR: u32 = 1 << 0;
    /// Enters the runtime: a preemption point in every mode, and a barrier
    /// that LICM never hoists across.
    pub const RUNTIME: u32 = 1 << 1;
    /// A sequentially consistent atomic on a global: never hoisted, orders
    /// the plain accesses around it, but is *not* a preemption point.
    pub const ATOMIC: u32 = 1 << 2;
    /// A call of a PIR function.
    pub const CALL: u32 = 1 << 3;
    /// Can panic at run time (bounds, nil, slot type, division, assert).
    pub const MAY_PANIC: u32 = 1 << 4;
    /// Writes a ref into memory that the GC scans: goes through the write
    /// barrier when the stored value is a ref.
    pub const REF_STORE: u32 = 1 << 5;
}

macro_rules! opcodes {
    ($( $(#[$doc:meta])* $variant:ident = $mnemonic:literal, $format:ident,
        ($($arg:ident),*) -> $result:tt, $flags:expr; )*) => {
        /// Every PIR instruction and terminator.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum Opcode {
            $( $(#[$doc])* $variant, )*
        }

        impl Opcode {
            /// Every opcode, in table order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$variant),*];

            /// The mnemonic as written in PIR text.
            pub fn mnemonic(self) -> &'static str {
                match self { $(Opcode::$variant => $mnemonic,)* }
            }

            /// The syntactic shape.
            pub fn format(self) -> Format {
                match self { $(Opcode::$variant => Format::$format,)* }
            }

            /// The types of the fixed operands, in order. Call-like and
            /// print formats have variable operands and list none here.
            pub fn operand_types(self) -> &'static [TypeSpec] {
                match self { $(Opcode::$variant => &[$(TypeSpec::$arg),*],)* }
            }

            /// The type of the result, for formats with a destination.
            pub fn result_type(self) -> Option<TypeSpec> {
                match self { $(Opcode::$variant => opcodes!(@result $result),)* }
            }

            /// The [`flags`] of the opcode.
            pub fn flags(self) -> u32 {
                match self { $(Opcode::$variant => $flags,)* }
            }

            /// The opcode written `mnemonic`, if any.
            pub fn from_mnemonic(mnemonic: &str) -> Option<Opcode> {
                match mnemonic { $($mnemonic => Some(Opcode::$variant),)* _ => None }
            }
        }
    };
    (@result none) => { None };
    (@result $t:ident) => { Some(TypeSpec::$t) };
}

use flags::*;

opcodes! {
    /// `%d = const K`
    Const = "const", Const, () -> I64, 0;
    /// `%d = copy X`: any type.
    Copy = "copy", Unary, (Same) -> Same, 0;
    Add = "add", Binary, (I64, I64) -> I64, 0;
    Sub = "sub", Binary, (I64, I64) -> I64, 0;
    Mul = "mul", Binary, (I64, I64) -> I64, 0;
    /// Truncating division; by zero panics; `MIN / -1` is `MIN`.
    Div = "div", Binary, (I64, I64) -> I64, MAY_PANIC;
    /// Remainder with the sign of the dividend; by zero panics; `MIN % -1` is 0.
    Rem = "rem", Binary, (I64, I64) -> I64, MAY_PANIC;
    And = "and", Binary, (I64, I64) -> I64, 0;
    Or = "or", Binary, (I64, I64) -> I64, 0;
    Xor = "xor", Binary, (I64, I64) -> I64, 0;
    /// Shift left by `count & 63`.
    Shl = "shl", Binary, (I64, I64) -> I64, 0;
    /// Logical shift right by `count & 63`.
    Shr = "shr", Binary, (I64, I64) -> I64, 0;
    /// Arithmetic shift right by `count & 63`.
    Sar = "sar", Binary, (I64, I64) -> I64, 0;
    Neg = "neg", Unary, (I64) -> I64, 0;
    /// Bitwise complement.
    Not = "not", Unary, (I64) -> I64, 0;
    /// Equality of two values of one type (i64, ref or chan).
    Eq = "eq", Binary, (Same, Same) -> I64, 0;
    Ne = "ne", Binary, (Same, Same) -> I64, 0;
    Lt = "lt", Binary, (I64, I64) -> I64, 0;
    Le = "le", Binary, (I64, I64) -> I64, 0;
    Gt = "gt", Binary, (I64, I64) -> I64, 0;
    Ge = "ge", Binary, (I64, I64) -> I64, 0;

    /// `%d = load @g`: plain; LICM may keep it in a register.
    Load = "load", Load, () -> Same, 0;
    /// `store @g, X`: plain; a ref store goes through the write barrier.
    Store = "store", Store, (Same) -> none, REF_STORE;
    LoadAtomic = "load.atomic", Load, () -> I64, ATOMIC;
    StoreAtomic = "store.atomic", Store, (I64) -> none, ATOMIC;
    /// Returns the new value.
    AddAtomic = "add.atomic", AtomicAdd, (I64) -> I64, ATOMIC;
    /// Returns 1 if swapped, 0 otherwise.
    CasAtomic = "cas.atomic", Cas, (I64, I64) -> I64, ATOMIC;

    /// `%r = new N`: an object of N slots, all fresh.
    New = "new", Unary, (I64) -> Ref, RUNTIME | MAY_PANIC;
    Len = "len", Unary, (Ref) -> I64, MAY_PANIC;
    Get = "get", Binary, (Ref, I64) -> I64, MAY_PANIC;
    /// `set %r, I, X`
    Set = "set", Effect, (Ref, I64, I64) -> none, MAY_PANIC;
    GetRef = "getref", Binary, (Ref, I64) -> Ref, MAY_PANIC;
    /// `setref %r, I, %p`: goes through the write barrier.
    SetRef = "setref", Effect, (Ref, I64, Ref) -> none, MAY_PANIC | REF_STORE;

    Call = "call", Call, () -> none, CALL | MAY_PANIC;
    Spawn = "spawn", Spawn, () -> none, RUNTIME;
    Yield = "yield", Effect, () -> none, RUNTIME;
    Gc = "gc", Effect, () -> none, RUNTIME;
    SetGcPercent = "setgcpercent", Effect, (I64) -> none, RUNTIME;
    /// Microseconds.
    Sleep = "sleep", Effect, (I64) -> none, RUNTIME;
    /// Monotonic nanoseconds.
    Now = "now", Nullary, () -> I64, RUNTIME;
    LockThread = "lockthread", Effect, () -> none, RUNTIME;
    UnlockThread = "unlockthread", Effect, () -> none, RUNTIME;
    Procs = "procs", Nullary, () -> I64, RUNTIME;

    /// `%c = chan N`: buffered when N > 0.
    Chan = "chan", Unary, (I64) -> Chan, RUNTIME | MAY_PANIC;
    Send = "send", Effect, (Chan, I64) -> none, RUNTIME | MAY_PANIC;
    Recv = "recv", Unary, (Chan) -> I64, RUNTIME;
    Close = "close", Effect, (Chan) -> none, RUNTIME | MAY_PANIC;
    /// A channel that receives `now` once, after X microseconds.
    After = "after", Unary, (I64) -> Chan, RUNTIME;
    /// Every preemption signal that arrives is offered to the channel.
    Notify = "notify", Effect, (Chan) -> none, RUNTIME;

    Print = "print", Print, () -> none, RUNTIME;
    Assert = "assert", Assert, (I64) -> none, MAY_PANIC;
    /// Foreign code: runs outside JIT code.
    CCall = "ccall", CCall, () -> none, RUNTIME;

    Jmp = "jmp", Jmp, () -> none, TERMINATOR;
    Br = "br", Br, (I64) -> none, TERMINATOR;
    Ret = "ret", Ret, () -> none, TERMINATOR;
    Goexit = "goexit", Goexit, () -> none, TERMINATOR | RUNTIME;
    Panic = "panic", Panic, () -> none, TERMINATOR | RUNTIME | MAY_PANIC;
    /// A select whose only arm is `default` is a plain jump, not a
    /// runtime operation; see [`TermKind::is_runtime_op`](super::TermKind::is_runtime_op).
    Select = "select", Select, () -> none, TERMINATOR | RUNTIME;
}

impl Opcode {
    pub fn is_terminator(self) -> bool {
        self.flags() & TERMINATOR != 0
    }
    pub fn is_runtime_op(self) -> bool {
        self.flags() & RUNTIME != 0
    }
    pub fn is_atomic(self) -> bool {
        self.flags() & ATOMIC != 0
    }
    pub fn is_call(self) -> bool {
        self.flags() & CALL != 0
    }
    pub fn may_panic(self) -> bool {
        self.flags() & MAY_PANIC != 0
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mnemonic())
    }
}

/// The foreign functions `ccall` can name (stand-ins for cgo).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ForeignFn {
    /// Blocks the OS thread for X microseconds.
    Sleep,
    /// Busy-loops for X microseconds.
    Spin,
    /// Masks the preemption signal on this OS thread.
    BlockPreemptSignal,
    UnblockPreemptSignal,
    /// Installs `SIG_IGN` for the preemption signal, process-wide.
    IgnorePreemptSignal,
    /// Puts the runtime's handler back.
    RestorePreemptSignal,
}

impl ForeignFn {
    pub const ALL: &'static [ForeignFn] = &[
        ForeignFn::Sleep,
        ForeignFn::Spin,
        ForeignFn::BlockPreemptSignal,
        ForeignFn::UnblockPreemptSignal,
        ForeignFn::IgnorePreemptSignal,
        ForeignFn::RestorePreemptSignal,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ForeignFn::Sleep => "sleep",
            ForeignFn::Spin => "spin",
            ForeignFn::BlockPreemptSignal => "block_preempt_signal",
            ForeignFn::UnblockPreemptSignal => "unblock_preempt_signal",
            ForeignFn::IgnorePreemptSignal => "ignore_preempt_signal",
            ForeignFn::RestorePreemptSignal => "restore_preempt_signal",
        }
    }
    pub fn from_name(name: &str) -> Option<ForeignFn> {
        ForeignFn::ALL.iter().copied().find(|f| f.name() == name)
    }
    /// Whether the call takes an i64 argument (microseconds).
    pub fn takes_arg(self) -> bool {
        matches!(self, ForeignFn::Sleep | ForeignFn::Spin)
    }
}

impl fmt::Display for ForeignFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnemonics_are_unique_and_round_trip() {
        for &op in Opcode::ALL {
            assert_eq!(Opcode::from_mnemonic(op.mnemonic()), Some(op));
        }
        let mut names: Vec<_> = Opcode::ALL.iter().map(|o| o.mnemonic()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Opcode::ALL.len());
    }

    #[test]
    fn terminators_are_exactly_the_terminator_formats() {
        for &op in Opcode::ALL {
            let term_format = matches!(
                op.format(),
                Format::Jmp
                    | Format::Br
                    | Format::Ret
                    | Format::Goexit
                    | Format::Panic
                    | Format::Select
            );
            assert_eq!(op.is_terminator(), term_format, "{op}");
        }
    }

    #[test]
    fn atomics_are_not_runtime_operations() {
        for &op in Opcode::ALL {
            assert!(!(op.is_atomic() && op.is_runtime_op()), "{op}");
        }
    }
}
