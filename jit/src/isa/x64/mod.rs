//! The x86-64 backend: the only place with `.arch x64`.
//!
//! # Register roles
//!
//! | register | role |
//! |---|---|
//! | `rsp` | stack pointer (16-byte aligned at calls) |
//! | `rbp` | frame pointer; the frame chain is how tracebacks walk |
//! | `r15` | the running goroutine's [`GoroutineContext`](crate::abi::GoroutineContext) |
//! | `rax rcx rdx r11` | scratch: never allocated, clobbered by any instruction's lowering |
//! | `rsi rdi r8 r9 r10` | allocatable, caller-saved (clobbered by a PIR `call`) |
//! | `rbx r12 r13 r14` | allocatable, callee-saved (saved in the prologue when used) |
//!
//! # Internal calling convention
//!
//! A PIR `call` passes its first three arguments in `rcx`, `rdx` and `r11`
//! (scratch registers: setting them up moves no allocated value), and
//! argument `i` after them at `[rsp + 8*i]` in its outgoing area (whose
//! first three words then stay unused), and calls the callee just past
//! its first instructions. The function's address itself, which the
//! runtime's goroutine entry calls with every argument on the stack,
//! starts by loading the first three from there. The callee moves the
//! register arguments to their homes before its stack check (whose
//! runtime call keeps only allocatable registers) and finds argument `i`
//! after them at `[rbp + 16 + 8*i]`. The result comes back in `rax`.
//! Caller-saved registers do not survive a call; callee-saved ones do.
//! Runtime calls take every operand on the stack and preserve every
//! allocatable register (see [`crate::abi`]).
//!
//! # Frame
//!
//! ```text
//!   [rbp + 16 + 8*i]   incoming stack argument i     (caller's frame)
//!   [rbp + 8]          return address
//!   [rbp]              caller's rbp                  <- rbp
//!   [rbp - 8*(j+1)]    saved callee-saved register j (pushed)
//!   [rbp - 8*(n+1+k)]  spill slot k                  (n saved registers)
//!   ...
//!   [rsp + 8*i]        outgoing argument i           <- rsp
//! ```
//!
//! The prologue pushes `rbp` and the callee-saved registers it writes and
//! allocates the rest; the epilogue frees it from `rsp` and pops them
//! (never `mov rsp, rbp`: `rbp` comes from the callee's `pop`, and every
//! return's stack pointer would wait on that load).
//!
//! The prologue compares the new `rsp` with the goroutine's stack guard
//! (`[r15]`) and calls the runtime when below it: stack overflow, or a
//! poisoned guard asking for a cooperative stop. Loop back-edges are a plain
//! `jmp rel32`, recorded in the tables and carrying nothing else.

// dynasm's dynamic-register operands (`Rq(r)`) expand to `r.into()`,
// which clippy flags when `r` is already a `u8`.
#![allow(clippy::useless_conversion)]

mod emit;
#[cfg(test)]
mod emit_tests;
pub mod handoff;
mod stubs;
pub(crate) use stubs::RESUME_FROM_CTX_SP;

use super::BranchPatch;
use crate::code::disasm::DecodedInst;
use crate::lower::{RegSet, Register, RegisterFile, RegisterTable, Role};
use crate::module::Arch;

/// The x86-64 backend.
#[derive(Debug)]
pub struct X64;

impl super::Backend for X64 {
    const ARCH: Arch = Arch::X86_64;
    const FRAME_POINTER: u8 = RBP;

    fn decode(code: &[u8], start: usize, end: usize) -> Vec<DecodedInst> {
        use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter, OpKind};
        let mut decoder =
            Decoder::with_ip(64, &code[start..end], start as u64, DecoderOptions::NONE);
        let mut fmt = IntelFormatter::new();
        let o = fmt.options_mut();
        o.set_first_operand_char_index(8);
        o.set_space_after_operand_separator(true);
        o.set_branch_leading_zeros(false);
        o.set_hex_prefix("0x");
        o.set_hex_suffix("");
        o.set_uppercase_hex(false);
        let mut out = Vec::new();
        for inst in decoder.iter() {
            let mut text = String::new();
            fmt.format(&inst, &mut text);
            let target = (inst.op_count() == 1 && inst.op0_kind() == OpKind::NearBranch64)
                .then(|| inst.near_branch_target() as usize);
            out.push(DecodedInst {
                offset: inst.ip() as usize,
                len: inst.len(),
                text,
                target,
            });
        }
        out
    }

    fn reg_name(r: u8) -> &'static str {
        reg_name(r)
    }

    /// A back-edge is `jmp rel32`: E9, then the displacement from the end
    /// of the 5-byte instruction, which is the word to store. The emitter
    /// pads so that it lies inside one aligned 8-byte word.
    fn patch_branch(pc: usize, target: usize) -> BranchPatch {
        let displacement = target as i64 - (pc as i64 + 5);
        let word = i32::try_from(displacement).expect("code spans less than 2 GiB");
        BranchPatch {
            offset: 1,
            word: word as u32,
        }
    }
}

pub const RAX: u8 = 0;
pub const RCX: u8 = 1;
pub const RDX: u8 = 2;
pub const RBX: u8 = 3;
pub const RSP: u8 = 4;
pub const RBP: u8 = 5;
pub const R11: u8 = 11;
/// Holds the running goroutine's context.
pub const CTX: u8 = 15;

/// Every general register, by hardware number: the one list the
/// allocator, the stubs and the write barrier take theirs from (the
/// roles are the table at the top of this file; the last column is
/// whether SysV preserves the register across a C call).
pub const TABLE: RegisterTable = RegisterTable(&[
    Register::new("rax", Role::Scratch, false),
    Register::new("rcx", Role::Scratch, false),
    Register::new("rdx", Role::Scratch, false),
    Register::new("rbx", Role::CalleeSaved, true),
    Register::new("rsp", Role::StackPointer, true),
    Register::new("rbp", Role::FramePointer, true),
    Register::new("rsi", Role::CallerSaved, false),
    Register::new("rdi", Role::CallerSaved, false),
    Register::new("r8", Role::CallerSaved, false),
    Register::new("r9", Role::CallerSaved, false),
    Register::new("r10", Role::CallerSaved, false),
    Register::new("r11", Role::Scratch, false),
    Register::new("r12", Role::CalleeSaved, true),
    Register::new("r13", Role::CalleeSaved, true),
    Register::new("r14", Role::CalleeSaved, true),
    Register::new("r15", Role::Context, true),
]);

/// The registers a PIR `call` passes its first three arguments in:
/// scratch ones, so that the caller sets them up without moving an
/// allocated value out of the way.
pub const ARG_REGS: [u8; 3] = [RCX, RDX, R11];

/// What the register allocator may use.
pub const REGISTERS: RegisterFile = TABLE.register_file().with_register_params(ARG_REGS.len());

/// Registers `rt_call` saves in the context and `switch_to` restores:
/// every allocatable register and the frame pointer.
pub const RUNTIME_SAVED: RegSet = TABLE.runtime_saved();

/// What `switch_to` saves on the scheduler's stack and `rt_call` restores:
/// the registers SysV preserves, but rsp, which is the stack itself.
pub const SCHEDULER_SAVED: RegSet = TABLE
    .host_preserved()
    .minus(TABLE.with_role(Role::StackPointer));

/// What the preemption stub saves and restores around its runtime call:
/// every general register but rsp and the context, which a redirect never
/// changes.
pub const PREEMPT_STUB_SAVED: RegSet = TABLE
    .all()
    .minus(TABLE.with_role(Role::StackPointer))
    .minus(TABLE.with_role(Role::Context));

/// What `switch_to` clears on its way into JIT code: the scratch
/// registers but rax, which brings the runtime's result.
pub const CLEARED_ON_SWITCH: RegSet = TABLE.with_role(Role::Scratch).minus(RegSet::of(&[RAX]));

/// The write barrier's own scratch: rdx holds the collector's block,
/// which the slow path passes on in rdi.
pub const BARRIER_SCRATCH: RegSet = RegSet::of(&[RDX]);

/// What the write barrier's slow path saves around its C call: every
/// register the call may clobber but the barrier's scratch (the slot or
/// global address, the value, anything allocated may be in them).
pub const BARRIER_SAVED: RegSet = TABLE.host_clobbered().minus(BARRIER_SCRATCH);

/// Register names for disassembly annotations and diagnostics.
pub fn reg_name(r: u8) -> &'static str {
    TABLE.name(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_registers_are_never_allocatable() {
        for r in [RAX, RCX, RDX, R11, CTX, RSP, RBP] {
            assert!(!REGISTERS.caller_saved.contains(r) && !REGISTERS.callee_saved.contains(r));
        }
    }

    /// The stubs' frames, drawn in stubs.rs, hold these.
    #[test]
    fn the_derived_lists_are_what_the_stubs_draw() {
        assert_eq!(
            RUNTIME_SAVED,
            RegSet::of(&[3, 5, 6, 7, 8, 9, 10, 12, 13, 14])
        );
        assert_eq!(SCHEDULER_SAVED, RegSet::of(&[3, 5, 12, 13, 14, 15]));
        assert_eq!(PREEMPT_STUB_SAVED.len(), 14);
        assert_eq!(CLEARED_ON_SWITCH, RegSet::of(&[RCX, RDX, R11]));
    }
}
