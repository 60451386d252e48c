//! Instruction-set backends. Everything architecture-specific in the JIT
//! lives under `isa/<arch>/`; shared code selects a backend by [`Arch`]
//! value, never by `#[cfg(target_arch)]`, so every backend builds, emits
//! and disassembles on every host.

pub mod aarch64;
pub mod x64;

use crate::code::disasm::DecodedInst;
use crate::ir::Program;
use crate::module::{Arch, Assembled};
use crate::par::Threads;

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
/// else (so later mechanisms can instrument or patch exactly it). Its
/// encoding is the one [`Backend::patch_branch`] rewrites: the runtime
/// takes the patch from the backend and knows no encoding itself.
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

    /// The store that makes the back-edge branch at `pc` jump to `target`
    /// (offsets in the same code). See [`BranchPatch`] for what the
    /// runtime may assume of it.
    fn patch_branch(pc: usize, target: usize) -> BranchPatch;
}

/// How to point a patchable back-edge somewhere else: store `word`, as a
/// little-endian 32-bit value, at `pc + offset`.
///
/// The runtime rewrites back-edges while other threads may be running
/// them (cross-modifying code), so the backend guarantees that one store
/// replaces the word whole and that the branch, read before or after it,
/// is a valid jump to the old or the new target:
///
/// - the word is single-copy atomic to store: the emitter places it
///   inside one naturally aligned 8-byte word (never across a cache
///   line). On x86-64 the runtime stores that aligned 8-byte word with the
///   other four bytes unchanged; on aarch64 the word is the instruction,
///   4-aligned like every instruction, and is stored alone;
/// - only the word changes: on x86-64 the displacement of `jmp rel32`
///   (the opcode stays), on aarch64 the whole `B`, so every rewrite is
///   B to B, one of the few concurrent modifications the architecture
///   permits;
/// - making the new word visible to the instruction fetch of every core
///   is the runtime's part: a serialising event on each core that may run
///   the code (x86-64), cache maintenance to the point of unification and
///   an ISB or exception return on each core (aarch64).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BranchPatch {
    /// Bytes from the branch at `pc` to the 32-bit word to store.
    pub offset: usize,
    /// The value that makes the branch at `pc` jump to the target.
    pub word: u32,
}

/// Assembles a verified program for `arch`; `globals[i]` is the address
/// generated code uses for global `i`.
pub fn assemble(arch: Arch, prog: &Program, globals: &[usize]) -> Assembled {
    assemble_with(arch, prog, globals, Threads::Auto)
}

/// [`assemble`] on up to `threads` threads: the same code, whatever their
/// number.
pub fn assemble_with(arch: Arch, prog: &Program, globals: &[usize], threads: Threads) -> Assembled {
    match arch {
        Arch::X86_64 => crate::lower::assemble::<x64::X64>(prog, globals, threads),
        Arch::Aarch64 => crate::lower::assemble::<aarch64::Aarch64>(prog, globals, threads),
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

/// The store that makes the patchable back-edge branch at `pc` jump to
/// `target`, for `arch` (see [`BranchPatch`]).
pub fn patch_branch(arch: Arch, pc: usize, target: usize) -> BranchPatch {
    match arch {
        Arch::X86_64 => x64::X64::patch_branch(pc, target),
        Arch::Aarch64 => aarch64::Aarch64::patch_branch(pc, target),
    }
}

/// Where a goroutine stopped in the preemption stub resumes, whichever
/// mechanism sent it there: the word at `ctx.sp` plus this many bytes
/// while the stub's `PreemptStub` runtime call is served (each stub
/// file draws the frame).
pub fn preempt_stub_resume_slot(arch: Arch) -> usize {
    match arch {
        Arch::X86_64 => x64::RESUME_FROM_CTX_SP,
        Arch::Aarch64 => aarch64::RESUME_FROM_CTX_SP,
    }
}

/// The frame-pointer register of `arch`.
pub fn frame_pointer(arch: Arch) -> u8 {
    match arch {
        Arch::X86_64 => x64::X64::FRAME_POINTER,
        Arch::Aarch64 => aarch64::Aarch64::FRAME_POINTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::RegSet;
    use std::collections::BTreeSet;

    const ARCHES: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The target of the branch at `pc` once `patch` is stored into `code`.
    fn patched_target(arch: Arch, code: &[u8], pc: usize, patch: BranchPatch) -> Option<usize> {
        let mut code = code.to_vec();
        let at = pc + patch.offset;
        code[at..at + 4].copy_from_slice(&patch.word.to_le_bytes());
        let branch = decode(arch, &code, pc, at + 4).into_iter().next()?;
        branch.target
    }

    /// Loops whose back-edges start at various offsets modulo 8, under
    /// `--preempt patch`.
    fn loops() -> Program {
        let mut src =
            String::from("set preempt = patch\nset opt = 0\nfunc @main() {\n    %i = const 0\n");
        for k in 1..=12 {
            src.push_str(&format!("loop{k}:\n"));
            for _ in 0..k {
                src.push_str("    %i = add %i, 1\n");
            }
            src.push_str(&format!(
                "    %c = lt %i, {}\n    br %c, loop{k}, next{k}\nnext{k}:\n",
                100 * k
            ));
        }
        src.push_str("    ret\n}\n");
        let mut prog = crate::ir::parse(&src).expect("parses");
        crate::ir::verify(&mut prog).expect("verifies");
        prog
    }

    #[test]
    fn a_backend_has_a_hand_off_where_its_arch_says() {
        let prog = loops();
        for arch in ARCHES {
            let asm = assemble(arch, &prog, &[]);
            assert_eq!(
                asm.stub_offsets.handoff.is_some(),
                arch.has_handoff(),
                "{arch:?}"
            );
        }
    }

    #[test]
    fn a_patched_back_edge_jumps_to_its_trampoline() {
        let prog = loops();
        for arch in ARCHES {
            let asm = assemble(arch, &prog, &[]);
            let sites = &asm.tables.patch_sites;
            assert_eq!(sites.len(), 12, "{arch:?}");
            for site in sites {
                let branch = &decode(arch, &asm.code, site.pc, asm.code.len())[0];
                let head = branch.target.expect("a direct branch");
                // The patch back to the loop head is the emitted word.
                let original = patch_branch(arch, site.pc, head);
                let at = site.pc + original.offset;
                assert_eq!(
                    asm.code[at..at + 4],
                    original.word.to_le_bytes(),
                    "{arch:?}"
                );
                assert!(
                    original.offset + 4 <= branch.len,
                    "{arch:?}: the word is the branch's"
                );
                assert!(
                    at % 8 <= 4,
                    "{arch:?}: one aligned 8-byte store replaces it"
                );
                let patch = patch_branch(arch, site.pc, site.tramp);
                assert_eq!(patch.offset, original.offset);
                assert_eq!(
                    patched_target(arch, &asm.code, site.pc, patch),
                    Some(site.tramp),
                    "{arch:?}"
                );
            }
            if arch == Arch::X86_64 {
                // The padding was exercised: branches start at several
                // offsets modulo 8, their displacements never cross a word.
                let starts: BTreeSet<usize> = sites.iter().map(|s| s.pc % 8).collect();
                assert!(starts.len() >= 4, "{starts:?}");
            }
        }
    }

    /// A C call may clobber every caller-saved register, so the write
    /// barrier's slow path must save them all, and an even number of
    /// words, to keep the stack pointer 16-byte aligned for the call.
    #[test]
    fn the_write_barrier_saves_every_caller_saved_register() {
        for (regs, saved) in [
            (x64::REGISTERS, x64::BARRIER_SAVED),
            (aarch64::REGISTERS, aarch64::BARRIER_SAVED),
        ] {
            assert_eq!(regs.caller_saved.minus(saved), RegSet::EMPTY);
            assert_eq!(saved.len() % 2, 0, "{saved:?}");
        }
        assert!(
            aarch64::BARRIER_SAVED.contains(aarch64::LR),
            "the call clobbers x30"
        );
        assert!(!aarch64::BARRIER_SAVED.contains(aarch64::STUB_SCRATCH));
    }

    #[test]
    fn patches_reach_backwards_and_forwards() {
        for arch in ARCHES {
            let pc = 0x4000;
            let mut code = vec![0u8; 0x10000];
            if arch == Arch::X86_64 {
                code[pc] = 0xe9; // the emitter's `jmp rel32`; the patch keeps it
            }
            for target in [0, 0x100, pc - 4, pc, pc + 8, 0x8000, 0xfffc] {
                let patch = patch_branch(arch, pc, target);
                assert_eq!(
                    patched_target(arch, &code, pc, patch),
                    Some(target),
                    "{arch:?} to {target:#x}"
                );
            }
        }
    }
}
