//! Instruction-set backends. Everything architecture-specific in the JIT
//! lives under `isa/<arch>/`; shared code selects a backend by [`Arch`]
//! value, never by `#[cfg(target_arch)]`, so every backend builds, emits
//! and disassembles on every host.

pub mod aarch64;
pub mod x64;

use crate::code::disasm::DecodedInst;
use crate::ir::Program;
use crate::module::{Arch, Assembled};

/// The porting contract: what a new architecture must provide.
///
/// A port is this trait (decoding, register names) and the hooks of
/// [`Machine`](crate::lower::Machine): the runtime stubs, the frame
/// layout, and one small function per instruction the shared lowering
/// asks for. The shared lowering ([`crate::lower`]) turns a verified,
/// optimised [`Program`] into position-independent machine code plus the
/// metadata the runtime reads: it walks every function, decides what each
/// preemption mode puts on back-edges, lays out the out-of-line paths and
/// records every table entry, so a port writes none of that. Its hooks
/// must keep every convention below; the runtime, the signal layer and
/// the tests rely on them, and on nothing else about the architecture.
///
/// **Registers.** One register permanently holds the running goroutine's
/// [`GoroutineContext`](crate::abi::GoroutineContext) (x86-64 `r15`,
/// aarch64 `x28`). A frame-pointer register ([`Backend::FRAME_POINTER`])
/// holds the address of each frame's record `[fp] = caller's fp,
/// [fp + 8] = return address`; tracebacks walk this chain. A few scratch
/// registers are never allocated and are clobbered by any lowering. On an
/// architecture whose asynchronous-preemption stub needs a register to reach
/// its target (aarch64: `x16`), that register is reserved for the stubs,
/// never allocated, and any JIT sequence that uses it is an unsafe region
/// of kind [`ScratchRegister`](crate::code::UnsafeKind::ScratchRegister).
/// The rest is split between [`RegisterFile::caller_saved`] (clobbered by
/// a PIR `call`) and [`RegisterFile::callee_saved`] (saved by a function
/// that writes them).
///
/// **Calls.** Arguments are stored at `[sp + 8*i]` by the caller; the callee
/// reads them at `[fp + 16 + 8*i]`; the result comes back in the first
/// scratch register. Every function starts by setting up its frame record,
/// then compares SP (after allocating its frame) with the context's
/// `stack_guard` and, below it, makes a [`StackCheck`](crate::abi::RuntimeOp::StackCheck)
/// runtime call and re-checks. The set-up and tear-down instructions are
/// unsafe regions.
///
/// **Runtime calls.** Operands at `[sp + 8*i]`, the request word in the
/// result register, then a call to the `rt_call` stub, which saves every
/// allocatable register and the frame pointer in `ctx.saved` (indexed by
/// hardware number), stores in `ctx.sp` the address of a word holding the
/// return address (so operands are at `ctx.sp + 8 + 8*i`), switches to
/// `ctx.sched_sp` and returns the request from `switch_to`.
///
/// **Stubs.** `switch_to` (an `extern "C" fn(*mut GoroutineContext) -> u64`
/// resuming a goroutine until its next runtime call), `rt_call`, and
/// `goroutine_entry`, which a fresh goroutine's stack enters by
/// `switch_to`: `ctx.sp` points at the entry stub's address, the function's
/// address is the word below it, and the arguments start at `ctx.sp + 8`
/// (16-byte aligned). Each stub is recorded as a
/// [`StubRange`](crate::code::StubRange) and its body as a
/// runtime-transition unsafe region.
///
/// **Loops.** Every loop back-edge is one unconditional direct jump,
/// recorded as a [`BackEdge`](crate::code::BackEdge) and carrying nothing
/// else (so later mechanisms can instrument or patch exactly it).
///
/// **Checks.** Division by zero, bounds, nil and slot-type checks produce
/// the interpreter's results and messages (see [`crate::abi::FaultCode`]);
/// `MIN / -1` is `MIN` and `MIN % -1` is 0 on every architecture. The
/// slot-type check sends any tag it does not read to the runtime with the
/// tag and the object as operands, so that a freed object's poison
/// ([`TAG_FREED`](crate::abi::TAG_FREED)) is reported as such.
///
/// **Write barrier.** Every `set`, `setref` and `store` of a ref global
/// loads `ctx.gc` and tests the [`GcBarrier`](crate::abi::GcBarrier)'s
/// `marking` word; when set, an out-of-line path passes the ref the store
/// overwrites (if any) to `shade`, a C-ABI call made on the goroutine's
/// stack after saving every caller-saved register the function may be
/// using, then returns to the store. Both the inline sequence (flag load
/// through the last store) and the out-of-line path are
/// [`WriteBarrier`](crate::code::UnsafeKind::WriteBarrier) unsafe regions.
///
/// **Metadata.** Everything goes through
/// [`MetadataBuilder`](crate::code::MetadataBuilder) at emission: function
/// and block ranges, instruction starts, unsafe regions, back-edges, poll
/// and patch sites, call-return sites, hoisted loads. The shared lowering
/// records all of it around the hooks. A hook records only a region that
/// exists on its architecture alone (aarch64's LL/SC sequences, through
/// [`Lower::restartable`](crate::lower::Lower::restartable)), and a port
/// says whether entering the preemption stub takes one instruction or a
/// sequence, which the lowering then records as a runtime transition
/// ([`Machine::STUB_ENTRY_IS_A_SEQUENCE`](crate::lower::Machine::STUB_ENTRY_IS_A_SEQUENCE)).
///
/// **Publication.** Code is position-independent: it is assembled at
/// offset 0 and may be copied anywhere; absolute addresses it embeds are
/// only those of globals and host functions.
pub trait Backend {
    const ARCH: Arch;
    /// Hardware number of the frame-pointer register (its slot in
    /// `ctx.saved` starts the traceback of a parked goroutine).
    const FRAME_POINTER: u8;

    /// Decodes `code[start..end]` (code placed at offset 0) for disassembly,
    /// on any host.
    fn decode(code: &[u8], start: usize, end: usize) -> Vec<DecodedInst>;

    /// The assembler name of register `r`.
    fn reg_name(r: u8) -> &'static str;
}

/// Assembles a verified program for `arch`; `globals[i]` is the address
/// generated code uses for global `i`.
pub fn assemble(arch: Arch, prog: &Program, globals: &[usize]) -> Assembled {
    match arch {
        Arch::X86_64 => crate::lower::assemble::<x64::X64>(prog, globals),
        Arch::Aarch64 => crate::lower::assemble::<aarch64::Aarch64>(prog, globals),
    }
}

/// Decodes machine code of `arch` for disassembly.
pub fn decode(arch: Arch, code: &[u8], start: usize, end: usize) -> Vec<DecodedInst> {
    match arch {
        Arch::X86_64 => x64::X64::decode(code, start, end),
        Arch::Aarch64 => aarch64::Aarch64::decode(code, start, end),
    }
}

/// The assembler name of register `r` of `arch`.
pub fn reg_name(arch: Arch, r: u8) -> &'static str {
    match arch {
        Arch::X86_64 => x64::X64::reg_name(r),
        Arch::Aarch64 => aarch64::Aarch64::reg_name(r),
    }
}

/// The frame-pointer register of `arch`.
pub fn frame_pointer(arch: Arch) -> u8 {
    match arch {
        Arch::X86_64 => x64::X64::FRAME_POINTER,
        Arch::Aarch64 => aarch64::Aarch64::FRAME_POINTER,
    }
}
