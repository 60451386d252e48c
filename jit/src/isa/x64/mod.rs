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
//! Arguments go on the stack: the caller stores argument `i` at
//! `[rsp + 8*i]` in its outgoing area and executes `call`; the callee finds
//! it at `[rbp + 16 + 8*i]`. The result comes back in `rax`. Caller-saved
//! registers do not survive a call; callee-saved ones do. Runtime calls
//! preserve every allocatable register (see [`crate::abi`]).
//!
//! # Frame
//!
//! ```text
//!   [rbp + 16 + 8*i]   incoming argument i          (caller's frame)
//!   [rbp + 8]          return address
//!   [rbp]              caller's rbp                  <- rbp
//!   [rbp - 8*(j+1)]    saved callee-saved register j
//!   [rbp - 8*(n+1+k)]  spill slot k                  (n saved registers)
//!   ...
//!   [rsp + 8*i]        outgoing argument i           <- rsp
//! ```
//!
//! The prologue compares the new `rsp` with the goroutine's stack guard
//! (`[r15]`) and calls the runtime when below it: stack overflow, or a
//! poisoned guard asking for a cooperative stop. Loop back-edges are a plain
//! `jmp rel32`, recorded in the tables and carrying nothing else.

// dynasm's dynamic-register operands (`Rq(r)`) expand to `r.into()`,
// which clippy flags when `r` is already a `u8`.
#![allow(clippy::useless_conversion)]

mod emit;
mod stubs;

use super::BranchPatch;
use crate::code::disasm::DecodedInst;
use crate::lower::RegisterFile;
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

/// What the register allocator may use.
pub const REGISTERS: RegisterFile = RegisterFile {
    caller_saved: &[6, 7, 8, 9, 10],
    callee_saved: &[3, 12, 13, 14],
};

/// Registers `rt_call` saves in the context and `switch_to` restores:
/// every allocatable register and the frame pointer.
pub const RUNTIME_SAVED: &[u8] = &[3, 5, 6, 7, 8, 9, 10, 12, 13, 14];

/// Register names for disassembly annotations and diagnostics.
pub fn reg_name(r: u8) -> &'static str {
    [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ]
    .get(r as usize)
    .copied()
    .unwrap_or("?")
}
