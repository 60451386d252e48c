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
#[cfg(test)]
mod emit_tests;
mod stubs;
pub(crate) use stubs::RESUME_FROM_CTX_SP;

use super::BranchPatch;
use crate::code::disasm::DecodedInst;
use crate::lower::{RegSet, Register, RegisterFile, RegisterTable, Role};
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

/// Every general register, by hardware number (31 is `sp`): the one list
/// the allocator, the stubs and the write barrier take theirs from (the
/// roles are the table at the top of this file; the last column is
/// whether AAPCS64 preserves the register across a C call).
pub const TABLE: RegisterTable = RegisterTable(&[
    Register::new("x0", Role::Scratch, false),
    Register::new("x1", Role::Scratch, false),
    Register::new("x2", Role::Scratch, false),
    Register::new("x3", Role::Scratch, false),
    Register::new("x4", Role::CallerSaved, false),
    Register::new("x5", Role::CallerSaved, false),
    Register::new("x6", Role::CallerSaved, false),
    Register::new("x7", Role::CallerSaved, false),
    Register::new("x8", Role::CallerSaved, false),
    Register::new("x9", Role::CallerSaved, false),
    Register::new("x10", Role::CallerSaved, false),
    Register::new("x11", Role::CallerSaved, false),
    Register::new("x12", Role::CallerSaved, false),
    Register::new("x13", Role::CallerSaved, false),
    Register::new("x14", Role::CallerSaved, false),
    Register::new("x15", Role::CallerSaved, false),
    Register::new("x16", Role::StubScratch, false),
    Register::new("x17", Role::Scratch, false),
    Register::new("x18", Role::Platform, false),
    Register::new("x19", Role::CalleeSaved, true),
    Register::new("x20", Role::CalleeSaved, true),
    Register::new("x21", Role::CalleeSaved, true),
    Register::new("x22", Role::CalleeSaved, true),
    Register::new("x23", Role::CalleeSaved, true),
    Register::new("x24", Role::CalleeSaved, true),
    Register::new("x25", Role::CalleeSaved, true),
    Register::new("x26", Role::CalleeSaved, true),
    Register::new("x27", Role::CalleeSaved, true),
    Register::new("x28", Role::Context, true),
    Register::new("x29", Role::FramePointer, true),
    Register::new("x30", Role::LinkRegister, false),
    Register::new("sp", Role::StackPointer, true),
]);

/// What the register allocator may use.
pub const REGISTERS: RegisterFile = TABLE.register_file();

/// Registers `rt_call` saves in the context and `switch_to` restores:
/// every allocatable register and the frame pointer.
pub const RUNTIME_SAVED: RegSet = TABLE.runtime_saved();

/// What `switch_to` saves on the scheduler's stack and `rt_call` restores:
/// the registers AAPCS64 preserves (but sp, the stack itself) and x30,
/// the return into the scheduler.
pub const SCHEDULER_SAVED: RegSet = TABLE
    .host_preserved()
    .minus(TABLE.with_role(Role::StackPointer))
    .union(TABLE.with_role(Role::LinkRegister));

/// What the preemption stub saves, at `[sp + 8 * n]` for `xn`: every
/// general register but sp and x30 (which the redirect set to the resume
/// address; the stub keeps it in a slot of its own).
pub const PREEMPT_STUB_SAVED: RegSet = TABLE
    .all()
    .minus(TABLE.with_role(Role::StackPointer))
    .minus(TABLE.with_role(Role::LinkRegister));

/// What the preemption stub restores: all it saved but x16, which it
/// keeps for its own return.
pub const PREEMPT_STUB_RESTORED: RegSet =
    PREEMPT_STUB_SAVED.minus(TABLE.with_role(Role::StubScratch));

/// What `switch_to` clears on its way into JIT code: the scratch and
/// platform registers but x0, which brings the runtime's result.
pub const CLEARED_ON_SWITCH: RegSet = TABLE
    .with_role(Role::Scratch)
    .union(TABLE.with_role(Role::Platform))
    .minus(RegSet::of(&[X0]));

/// The write barrier's own scratch: x1 holds the flag and the old ref,
/// x17 the address of `shade`.
pub const BARRIER_SCRATCH: RegSet = RegSet::of(&[X1, X17]);

/// What the write barrier's slow path saves around its C call, in pairs:
/// every register the call may clobber but the barrier's scratch and the
/// registers that never hold a value (x16, x18); x30 among them.
pub const BARRIER_SAVED: RegSet = TABLE
    .host_clobbered()
    .minus(BARRIER_SCRATCH)
    .minus(TABLE.with_role(Role::StubScratch))
    .minus(TABLE.with_role(Role::Platform));

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
        TABLE.name(r)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_registers_are_never_allocatable() {
        for r in [X0, X1, X2, X3, STUB_SCRATCH, X17, 18, CTX, FP, LR, SP] {
            assert!(
                !REGISTERS.caller_saved.contains(r) && !REGISTERS.callee_saved.contains(r),
                "x{r}"
            );
        }
    }

    /// The stubs' frames, drawn in stubs.rs, hold these.
    #[test]
    fn the_derived_lists_are_what_the_stubs_draw() {
        assert_eq!(
            RUNTIME_SAVED,
            RegSet::of(&[
                4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 19, 20, 21, 22, 23, 24, 25, 26, 27, 29
            ])
        );
        assert_eq!(
            SCHEDULER_SAVED,
            RegSet::of(&[19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30])
        );
        assert_eq!(PREEMPT_STUB_SAVED.len(), 30);
        assert!(!PREEMPT_STUB_RESTORED.contains(STUB_SCRATCH));
        assert_eq!(CLEARED_ON_SWITCH, RegSet::of(&[1, 2, 3, 17, 18]));
    }
}
