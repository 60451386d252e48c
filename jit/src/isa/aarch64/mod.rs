//! The aarch64 backend: the only place with `.arch aarch64`.
//!
//! # Register roles
//!
//! | register | role |
//! |---|---|
//! | `sp` | stack pointer, 16-byte aligned at all times |
//! | `x29` | frame pointer; `[x29] = caller's x29, [x29 + 8] = x30` |
//! | `x30` | link register (saved in the frame record by every prologue) |
//! | `x28` | the running goroutine's [`GoroutineContext`](crate::abi::GoroutineContext) |
//! | `x16` | reserved for the runtime's stubs (the asynchronous-preemption redirect needs one register to reach its target); never allocated, never used by function bodies |
//! | `x18` | the platform register: never touched |
//! | `x0` | result of calls and runtime calls; scratch |
//! | `x1 x2 x3 x17` | scratch: never allocated, clobbered by any instruction's lowering |
//! | `x4`–`x15` | allocatable, caller-saved |
//! | `x19`–`x27` | allocatable, callee-saved (saved in the prologue when used) |
//!
//! # Internal calling convention
//!
//! As on x86-64 (see the [`Backend`](super::Backend) contract): arguments
//! at `[sp + 8*i]` in the caller's outgoing area, read by the callee at
//! `[x29 + 16 + 8*i]`; the result in `x0`.
//!
//! # Frame
//!
//! ```text
//!   [x29 + 16 + 8*i]             incoming argument i      (caller's frame)
//!   [x29 + 8]                    saved x30
//!   [x29]                        caller's x29              <- x29
//!   [sp + 8*(out + spills + j)]  saved callee-saved register j
//!   [sp + 8*(out + k)]           spill slot k
//!   [sp + 8*i]                   outgoing argument i       <- sp
//! ```
//!
//! Slots are addressed from `sp` with the scaled unsigned 12-bit offset
//! form; a frame too large for it goes through `x17`.

// dynasm's dynamic-register operands (`X(r)`) expand to `r.into()`, which
// clippy flags when `r` is already a `u8`.
#![allow(clippy::useless_conversion)]

mod emit;
mod stubs;

use super::BranchPatch;
use crate::code::disasm::DecodedInst;
use crate::lower::RegisterFile;
use crate::module::Arch;

/// The aarch64 backend.
#[derive(Debug)]
pub struct Aarch64;

/// Result register and first scratch.
pub const X0: u8 = 0;
pub const X1: u8 = 1;
pub const X2: u8 = 2;
/// Scratch for global addresses.
pub const X3: u8 = 3;
/// The stubs' scratch register: no function body uses it.
pub const STUB_SCRATCH: u8 = 16;
/// Scratch for large offsets and exclusive-store status.
pub const X17: u8 = 17;
/// Holds the running goroutine's context.
pub const CTX: u8 = 28;
pub const FP: u8 = 29;
pub const LR: u8 = 30;
/// The encoding of `sp` in base-register and add/sub-immediate operands.
pub const SP: u8 = 31;

/// What the register allocator may use.
pub const REGISTERS: RegisterFile = RegisterFile {
    caller_saved: &[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    callee_saved: &[19, 20, 21, 22, 23, 24, 25, 26, 27],
};

/// Registers `rt_call` saves in the context and `switch_to` restores:
/// every allocatable register and the frame pointer.
pub const RUNTIME_SAVED: &[u8] = &[
    4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 19, 20, 21, 22, 23, 24, 25, 26, 27, 29,
];

impl super::Backend for Aarch64 {
    const ARCH: Arch = Arch::Aarch64;
    const FRAME_POINTER: u8 = FP;

    fn decode(code: &[u8], start: usize, end: usize) -> Vec<DecodedInst> {
        use yaxpeax_arch::{Decoder, U8Reader};
        use yaxpeax_arm::armv8::a64::{InstDecoder, Opcode, Operand};
        let decoder = InstDecoder::default();
        let mut out = Vec::new();
        let mut off = start;
        while off + 4 <= end {
            let word: [u8; 4] = code[off..off + 4].try_into().unwrap_or([0; 4]);
            let mut reader = U8Reader::new(&word);
            let (text, target) = match decoder.decode(&mut reader) {
                Ok(inst) => {
                    let direct = matches!(inst.opcode, Opcode::B | Opcode::BL);
                    let target = match inst.operands[0] {
                        Operand::PCOffset(d) if direct => Some((off as i64 + d) as usize),
                        _ => None,
                    };
                    (inst.to_string(), target)
                }
                Err(_) => (format!(".word {:#010x}", u32::from_le_bytes(word)), None),
            };
            out.push(DecodedInst {
                offset: off,
                len: 4,
                text,
                target,
            });
            off += 4;
        }
        out
    }

    fn reg_name(r: u8) -> &'static str {
        const NAMES: [&str; 32] = [
            "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
            "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25",
            "x26", "x27", "x28", "x29", "x30", "sp",
        ];
        NAMES.get(r as usize).copied().unwrap_or("?")
    }

    /// A back-edge is `B imm26`: 0b000101, then the distance in words from
    /// the branch itself. The word to store is the whole instruction.
    fn patch_branch(pc: usize, target: usize) -> BranchPatch {
        let distance = target as i64 - pc as i64;
        assert!(
            distance % 4 == 0 && (-(1 << 27)..1 << 27).contains(&distance),
            "a B reaches ±128 MiB of words"
        );
        BranchPatch {
            offset: 0,
            word: 0x1400_0000 | ((distance / 4) as u32 & 0x03ff_ffff),
        }
    }
}
