//! Typed indices for the entities of a PIR program, and source positions.
//!
//! Every entity is a `u32` index into a table owned by its parent (functions
//! and globals by the [`Program`](super::Program), registers and blocks by
//! their [`Function`](super::Function)). The index types cannot be mixed up,
//! and their `Display` is the neutral index form (`fn2`, `g0`, `r7`, `b3`)
//! used in internal diagnostics; the program's own names are printed by the
//! printer, which looks them up in the tables.

use std::fmt;

macro_rules! entity {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        pub struct $name(pub u32);

        impl $name {
            /// The entity with index `i`.
            pub fn new(i: usize) -> Self {
                Self(u32::try_from(i).expect("entity index fits in u32"))
            }
            /// The index into the owning table.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

entity!(
    /// A function of the program (`@name` in the function namespace).
    FuncId,
    "fn"
);
entity!(
    /// A global variable of the program (`@name` in the global namespace).
    GlobalId,
    "g"
);
entity!(
    /// A register (`%name`) of one function: a mutable local of one type.
    Reg,
    "r"
);
entity!(
    /// A basic block of one function, in text order.
    BlockId,
    "b"
);

/// A 1-based line and column (in characters) in the source text.
///
/// Positions do not take part in equality or hashing: two programs are equal
/// when they say the same thing, wherever their text put it. This is what
/// lets `parse(print(p)) == p` hold although printing normalises layout.
#[derive(Clone, Copy, Default, Debug)]
pub struct Span {
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub fn new(line: u32, col: u32) -> Self {
        Span { line, col }
    }
    /// Positions in source order, since `Ord` would contradict the
    /// position-blind equality.
    pub fn key(self) -> (u32, u32) {
        (self.line, self.col)
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}
impl Eq for Span {}

impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}
