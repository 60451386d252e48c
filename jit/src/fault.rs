//! Run-time failures of PIR programs and how they are reported.
//!
//! The interpreter and the runtime that runs JIT code report a failure with
//! the same words, so that the differential tests can compare them and a
//! user sees one wording whatever engine ran the program. The wording
//! follows Go's: `panic: runtime error: ...` for runtime errors,
//! `panic: MESSAGE` for an explicit panic, `fatal error: ...` for fatal
//! runtime errors, then a traceback.

use std::fmt::{self, Write};

/// What went wrong.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Fault {
    /// `index out of range [5] with length 3`
    IndexOutOfRange {
        index: i64,
        len: i64,
    },
    /// A heap access through `nil`.
    NilDereference,
    /// `get` of a slot holding a ref, or `getref` of one holding an i64.
    SlotTypeMismatch,
    /// `div` or `rem` by zero.
    DivideByZero,
    /// `new` of a negative size.
    NegativeSize(i64),
    /// `chan` of a negative capacity.
    NegativeChanSize(i64),
    SendOnClosedChannel,
    CloseOfClosedChannel,
    /// `assert X, "message"` with X == 0.
    AssertionFailed(String),
    /// `panic "message"`.
    Panic(String),
    /// A goroutine ran out of stack.
    StackOverflow,
    /// Every goroutine is blocked and no timer is pending.
    Deadlock,
    /// `@main` called `goexit` and every other goroutine finished.
    MainGoexit,
    /// The live heap would pass its limit even after a collection (a huge
    /// `new`, or too much live data).
    OutOfMemory,
    /// `get` or `getref` of an object the collector freed and poisoned
    /// (only `--gc-verify` poisons, so only it can tell): a collector bug.
    UseOfFreedObject(u64),
}

impl Fault {
    /// Whether the runtime treats this as fatal (`fatal error: ...`, no
    /// goroutine-level panic).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Fault::StackOverflow
                | Fault::Deadlock
                | Fault::MainGoexit
                | Fault::OutOfMemory
                | Fault::UseOfFreedObject(_)
        )
    }
}

impl fmt::Display for Fault {
    /// The first line of the report, as Go words it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::IndexOutOfRange { index, len } => {
                write!(
                    f,
                    "panic: runtime error: index out of range [{index}] with length {len}"
                )
            }
            Fault::NilDereference => write!(f, "panic: runtime error: nil dereference"),
            Fault::SlotTypeMismatch => write!(f, "panic: runtime error: slot type mismatch"),
            Fault::DivideByZero => write!(f, "panic: runtime error: integer divide by zero"),
            Fault::NegativeSize(n) => write!(f, "panic: runtime error: new: negative size {n}"),
            Fault::NegativeChanSize(n) => {
                write!(f, "panic: runtime error: makechan: size out of range ({n})")
            }
            Fault::SendOnClosedChannel => write!(f, "panic: send on closed channel"),
            Fault::CloseOfClosedChannel => write!(f, "panic: close of closed channel"),
            Fault::AssertionFailed(m) => write!(f, "panic: assertion failed: {m}"),
            Fault::Panic(m) => write!(f, "panic: {m}"),
            Fault::StackOverflow => write!(f, "fatal error: stack overflow"),
            Fault::Deadlock => write!(f, "fatal error: all goroutines are asleep - deadlock!"),
            Fault::MainGoexit => write!(
                f,
                "fatal error: no goroutines (main called runtime.Goexit) - deadlock!"
            ),
            Fault::OutOfMemory => write!(f, "fatal error: runtime: out of memory"),
            Fault::UseOfFreedObject(addr) => {
                write!(f, "fatal error: use of freed object {addr:#x} (gc-verify)")
            }
        }
    }
}

/// One frame of a traceback, innermost first.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Frame {
    /// The function's name, without `@`.
    pub func: String,
    /// The block's label (or `entry` for an unlabelled first block).
    pub block: String,
    /// 1-based line and column of the instruction executing in this frame
    /// (the faulting one, or the call in outer frames).
    pub line: u32,
    pub col: u32,
}

/// How many frames a traceback shows at each end before eliding the middle,
/// as Go does for deep stacks.
pub const TRACEBACK_EDGE: usize = 50;

/// The whole report: the fault line, then the goroutine's frames.
///
/// ```text
/// panic: runtime error: index out of range [5] with length 3
///
/// goroutine 1 [running]:
/// @get in block loop
///         prog.pir:12:5
/// @main in block entry
///         prog.pir:30:5
/// ```
pub fn report(fault: &Fault, goroutine: u64, frames: &[Frame], file: &str) -> String {
    let mut out = format!("{fault}\n");
    if frames.is_empty() {
        return out;
    }
    write!(out, "\ngoroutine {goroutine} [running]:\n").unwrap();
    let n = frames.len();
    for (i, fr) in frames.iter().enumerate() {
        if n > 2 * TRACEBACK_EDGE && i == TRACEBACK_EDGE {
            writeln!(out, "...{} frames elided...", n - 2 * TRACEBACK_EDGE).unwrap();
        }
        if n > 2 * TRACEBACK_EDGE && (TRACEBACK_EDGE..n - TRACEBACK_EDGE).contains(&i) {
            continue;
        }
        write!(
            out,
            "@{} in block {}\n\t{file}:{}:{}\n",
            fr.func, fr.block, fr.line, fr.col
        )
        .unwrap();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_matches_go() {
        assert_eq!(
            Fault::IndexOutOfRange { index: -1, len: 3 }.to_string(),
            "panic: runtime error: index out of range [-1] with length 3"
        );
        assert_eq!(
            Fault::DivideByZero.to_string(),
            "panic: runtime error: integer divide by zero"
        );
        assert_eq!(
            Fault::Deadlock.to_string(),
            "fatal error: all goroutines are asleep - deadlock!"
        );
    }

    #[test]
    fn deep_tracebacks_are_elided() {
        let frames: Vec<Frame> = (0..1000)
            .map(|i| Frame {
                func: format!("f{i}"),
                block: "entry".into(),
                line: 1,
                col: 1,
            })
            .collect();
        let r = report(&Fault::StackOverflow, 1, &frames, "x.pir");
        assert!(r.contains("...900 frames elided..."));
        assert!(r.contains("@f0 in block entry"));
        assert!(r.contains("@f999 in block entry"));
        assert!(!r.contains("@f500 "));
    }
}
