//! What the shared lowering asks of an architecture: the [`Machine`] hooks,
//! and the vocabulary they speak ([`Val`], [`Slot`], [`Frame`], [`Cond`],
//! [`Test`], [`OldRef`]).
//!
//! The split follows Cranelift's `machinst`: the shared lowering walks a
//! function once for every architecture (the prologue, the blocks, the
//! instructions, the terminators, the out-of-line paths) and records every
//! piece of metadata the runtime trusts; a backend only says how each step
//! is spelled in its instructions. A hook emits code and nothing else,
//! unless its doc comment says otherwise: the regions, sites and starts
//! around it are the walk's business, so they are written once.
//!
//! Hooks are associated functions taking the function being lowered
//! ([`Lower`]) as their first argument, so that one hook can call another
//! and the shared helpers (`cx.load`, `cx.store`, `cx.val`) alike.

use dynasmrt::relocations::Relocation;
use dynasmrt::DynamicLabel;

use crate::code::CodeBuffer;

use crate::code::MetadataBuilder;
use crate::ir::{Opcode, Reg};
use crate::isa::Backend;
use crate::lower::{Allocation, Lower, RegisterFile};
use crate::module::StubAddresses;

/// A frame slot: `[base + offset]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Slot {
    /// Hardware number of the base register (frame or stack pointer).
    pub base: u8,
    pub offset: i32,
}

/// Where an operand's value is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Val {
    Reg(u8),
    Mem(Slot),
    Imm(i64),
}

/// Consecutive frame slots: the `k`-th is `[base + first + step * k]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SlotRun {
    pub base: u8,
    pub first: i32,
    pub step: i32,
}

impl SlotRun {
    pub fn at(self, k: usize) -> Slot {
        Slot {
            base: self.base,
            offset: self.first + self.step * k as i32,
        }
    }
}

/// Where a function keeps what its frame holds. Each architecture places
/// the saved registers differently (x86-64 pushes them under the frame
/// record, aarch64 stores them above the spill slots, to address all of
/// them from `sp`), so [`Machine::frame_layout`] decides.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Frame {
    /// Bytes the prologue allocates below the frame record: the saved
    /// callee-saved registers, the spill slots and the outgoing area,
    /// rounded up to keep the stack pointer 16-byte aligned.
    pub size: i32,
    /// Callee-saved register `j` of [`Allocation::used_callee_saved`].
    pub saved: SlotRun,
    /// Spill slot `k`.
    pub spills: SlotRun,
    /// Incoming argument `i`, in the caller's outgoing area.
    pub params: SlotRun,
}

impl Frame {
    /// The frame size both conventions share: one word per saved
    /// register, spill slot and outgoing operand, 16-byte aligned.
    pub fn size_of(alloc: &Allocation) -> i32 {
        let words = alloc.used_callee_saved.len() as u32 + alloc.spill_slots + alloc.outgoing_words;
        ((words * 8).div_ceil(16) * 16) as i32
    }
}

/// Signed integer conditions, after a compare `a` with `b`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cond {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cond {
    /// The condition a PIR compare tests.
    pub fn of(op: Opcode) -> Option<Cond> {
        Some(match op {
            Opcode::Eq => Cond::Eq,
            Opcode::Ne => Cond::Ne,
            Opcode::Lt => Cond::Lt,
            Opcode::Le => Cond::Le,
            Opcode::Gt => Cond::Gt,
            Opcode::Ge => Cond::Ge,
            _ => return None,
        })
    }

    pub fn inverse(self) -> Cond {
        match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Lt => Cond::Ge,
            Cond::Le => Cond::Gt,
            Cond::Gt => Cond::Le,
            Cond::Ge => Cond::Lt,
        }
    }
}

/// What a conditional branch tests: the flags (every architecture), or a
/// register against zero where the architecture branches on that
/// directly (aarch64 `cbnz`/`cbz`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Test {
    Flags(Cond),
    NonZero(u8),
    Zero(u8),
}

impl Test {
    pub fn inverse(self) -> Test {
        match self {
            Test::Flags(c) => Test::Flags(c.inverse()),
            Test::NonZero(r) => Test::Zero(r),
            Test::Zero(r) => Test::NonZero(r),
        }
    }
}

/// Where the write barrier's slow path finds the ref a store overwrites.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OldRef {
    /// A heap slot, whose address [`Machine::slot_address`] left in
    /// [`Machine::RESULT`].
    Slot,
    /// A ref global, whose address [`Machine::global_address`] left where
    /// [`Machine::store_global`] stores.
    Global,
}

/// The instructions one architecture emits for the shared lowering.
///
/// Registers named here are hardware numbers. The fixed ones
/// ([`Machine::RESULT`], [`Machine::INDEX`], [`Machine::VALUE`],
/// [`Machine::SCRATCH`]) are scratch registers that the allocator never
/// hands out; any hook may clobber them, and no other register unless it
/// says so. Every hook that takes a label may be given one bound later (a
/// forward branch) or earlier (a loop).
pub trait Machine: Backend + Sized {
    /// The assembler's relocation kind for this architecture.
    type Relocation: Relocation;

    /// The registers the allocator may use.
    const REGISTERS: RegisterFile;
    /// Call and runtime-call results, the runtime-call request word, and
    /// the object (then slot) address of heap accesses.
    const RESULT: u8;
    /// The index of a heap access, where the index-out-of-range path
    /// reads it.
    const INDEX: u8;
    /// Where a heap store's value is loaded when it is not in a register.
    const VALUE: u8;
    /// A scratch register distinct from [`Machine::RESULT`].
    const SCRATCH: u8;
    /// Whether [`Machine::enter_stub`] takes more than one instruction.
    /// Between them the stack pointer and link register are half way into
    /// the stub's frame: the walk records them as a runtime transition.
    const STUB_ENTRY_IS_A_SEQUENCE: bool;
    /// Whether [`Machine::prologue`] saves the used callee-saved registers
    /// in `cx.frame.saved` itself and [`Machine::epilogue`] restores them
    /// (x86-64 pushes and pops them); otherwise the walk stores them after
    /// the prologue and loads them back before the epilogue.
    const FRAME_SAVES_REGISTERS: bool = false;
    /// The registers a PIR `call` passes its first arguments in (scratch
    /// registers, so that setting them up moves no allocated value; none:
    /// every argument on the stack). A function's homes for them are set
    /// before its stack check, whose runtime call keeps only allocatable
    /// registers, and so after the prologue has saved the callee-saved
    /// ones: a backend with register arguments has
    /// [`Machine::FRAME_SAVES_REGISTERS`].
    const ARG_REGS: &'static [u8] = &[];

    /// Emits the runtime stubs at the start of the code; `rt_call` and
    /// `preempt` are the labels functions call.
    fn emit_stubs(
        ops: &mut CodeBuffer<Self::Relocation>,
        meta: &mut MetadataBuilder,
        rt_call: DynamicLabel,
        preempt: DynamicLabel,
    ) -> StubAddresses;

    /// Where this function's frame keeps its saved registers, spill slots
    /// and incoming arguments.
    fn frame_layout(alloc: &Allocation) -> Frame;

    // ---- moves --------------------------------------------------------------

    /// `dst = v` for any 64-bit constant.
    fn mov_imm(cx: &mut Lower<'_, Self>, dst: u8, v: i64);
    /// `dst = src` (distinct registers).
    fn mov_reg(cx: &mut Lower<'_, Self>, dst: u8, src: u8);
    /// `dst = [slot]`.
    fn load_slot(cx: &mut Lower<'_, Self>, dst: u8, slot: Slot);
    /// `[slot] = src`.
    fn store_slot(cx: &mut Lower<'_, Self>, slot: Slot, src: u8);

    /// A register holding `v`: its own, or `scratch` after loading it.
    fn in_reg(cx: &mut Lower<'_, Self>, v: Val, scratch: u8) -> u8 {
        match v {
            Val::Reg(r) => r,
            _ => {
                cx.load(scratch, v);
                scratch
            }
        }
    }

    /// Writes `v` to PIR register `d`.
    fn assign(cx: &mut Lower<'_, Self>, d: Reg, v: Val);

    /// Stores operand `i` of a call or runtime call in the outgoing area.
    fn outgoing(cx: &mut Lower<'_, Self>, i: usize, v: Val);

    /// `dst = ctx[field]` (a word of the goroutine context).
    fn load_context(cx: &mut Lower<'_, Self>, dst: u8, field: i32);

    /// `ctx.func = index`: which function runs, for `--preempt patch`.
    fn store_current_function(cx: &mut Lower<'_, Self>, index: u32);

    // ---- frames ---------------------------------------------------------------

    /// At a function's first instruction, which the runtime's goroutine
    /// entry calls with every argument on the stack (a PIR `call` enters
    /// after it): `dst = ` incoming argument `i`. Only for a backend with
    /// [`Machine::ARG_REGS`].
    fn load_stack_argument(cx: &mut Lower<'_, Self>, dst: u8, i: usize) {
        let _ = (cx, dst, i);
        unreachable!("a backend without register arguments")
    }

    /// Sets up the frame record and allocates `cx.frame.size` bytes
    /// (saving the callee-saved registers where
    /// [`Machine::FRAME_SAVES_REGISTERS`] says so).
    fn prologue(cx: &mut Lower<'_, Self>);

    /// Binds `check` and compares the stack pointer with the stack guard,
    /// branching to `overflow` below it.
    fn stack_check(cx: &mut Lower<'_, Self>, check: DynamicLabel, overflow: DynamicLabel);

    /// Frees the frame, restores the frame pointer and returns (the saved
    /// registers are back already, unless [`Machine::FRAME_SAVES_REGISTERS`]
    /// leaves them to this hook). The stack pointer is where the prologue
    /// left it.
    fn epilogue(cx: &mut Lower<'_, Self>);

    // ---- control --------------------------------------------------------------

    /// An unconditional direct jump. For a loop back-edge it is the branch
    /// the runtime may patch, so it must be the form
    /// [`Backend::patch_branch`] rewrites.
    fn jump(cx: &mut Lower<'_, Self>, target: DynamicLabel);
    /// A direct call.
    fn call(cx: &mut Lower<'_, Self>, target: DynamicLabel);
    /// A branch to `target` when `t` holds.
    fn branch_if(cx: &mut Lower<'_, Self>, t: Test, target: DynamicLabel);
    /// Tests `v` against zero: what holds when it is non-zero.
    fn test_nonzero(cx: &mut Lower<'_, Self>, v: Val) -> Test;
    /// Sets the flags for a compare of `a` with `b`.
    fn compare(cx: &mut Lower<'_, Self>, a: Val, b: Val);
    /// Sets the flags for a compare of [`Machine::RESULT`] with `k`.
    fn compare_result(cx: &mut Lower<'_, Self>, k: u32);
    /// Stops the thread: code after a call that never returns.
    fn trap(cx: &mut Lower<'_, Self>);

    // ---- what back-edges carry --------------------------------------------------

    /// `--preempt poll`: tests the poll word and branches to `slow` when
    /// it is set. The whole sequence is the poll site.
    fn poll_check(cx: &mut Lower<'_, Self>, slow: DynamicLabel);
    /// `--preempt trap`: loads the poll page's address.
    fn poll_page_address(cx: &mut Lower<'_, Self>);
    /// `--preempt trap`: the load from the poll page, which faults when
    /// the page is armed. This one instruction is the poll site.
    fn poll_page_load(cx: &mut Lower<'_, Self>);
    /// `--preempt patch`: what must come before a patchable back-edge so
    /// that the word [`Backend::patch_branch`] rewrites is single-copy
    /// atomic to store (nothing where every instruction already is).
    fn align_patchable_branch(_cx: &mut Lower<'_, Self>) {}
    /// Enters the preemption stub `stub` as a signal handler's redirect
    /// would, with the address right after this sequence as the resume
    /// address.
    fn enter_stub(cx: &mut Lower<'_, Self>, stub: DynamicLabel);

    // ---- out-of-line paths --------------------------------------------------------

    /// The slot-type fault's operands: the tag [`Machine::load_slot_value`]
    /// rejected and the object.
    fn slot_tag_operands(cx: &mut Lower<'_, Self>);
    /// The index-out-of-range fault's operands: the index and the length.
    fn index_operands(cx: &mut Lower<'_, Self>);
    /// The write barrier's test: branches to `slow` while the collector
    /// marks.
    fn barrier_test(cx: &mut Lower<'_, Self>, slow: DynamicLabel);
    /// The write barrier's slow path: passes the ref the store overwrites
    /// (if it is one) to the collector's `shade`, preserving every
    /// register that may hold a value at the store, or branches to
    /// `resume` at once if there is no ref to shade. The walk adds the
    /// jump back to `resume`.
    fn shade_old_ref(cx: &mut Lower<'_, Self>, resume: DynamicLabel, old: OldRef);

    // ---- instructions ---------------------------------------------------------------

    /// `neg` and `not`.
    fn unary(cx: &mut Lower<'_, Self>, op: Opcode, dst: Reg, v: Val);
    /// The arithmetic, logic and shift operations (not compares, division
    /// or heap loads).
    fn arithmetic(cx: &mut Lower<'_, Self>, op: Opcode, dst: Reg, x: Val, y: Val);
    /// Materialises condition `c` of the flags as 0 or 1; returns the
    /// register holding it (`dst`'s own where possible).
    fn set_from_flags(cx: &mut Lower<'_, Self>, c: Cond, dst: Reg) -> u8;
    /// `div` and `rem` with Go's results for `MIN / -1`; `zero` is the
    /// division-by-zero path when `y` may be zero (never `Imm(0)`).
    fn divide(
        cx: &mut Lower<'_, Self>,
        op: Opcode,
        dst: Reg,
        x: Val,
        y: Val,
        zero: Option<DynamicLabel>,
    );
    /// `RESULT = [RESULT + len]`: the length of the object in RESULT.
    fn object_length(cx: &mut Lower<'_, Self>);
    /// With the object in [`Machine::RESULT`] and the index in
    /// [`Machine::INDEX`]: branches to `oob` unless the index is in
    /// bounds, then leaves the object plus 16 times the index in RESULT
    /// (so slot `index` is at `[RESULT + 16]`), the index where the
    /// fault path finds it.
    fn slot_address(cx: &mut Lower<'_, Self>, oob: DynamicLabel);
    /// `get` or `getref` of the slot at [`Machine::RESULT`]: branches to
    /// `bad` on a tag it does not read; returns the register holding the
    /// value.
    fn load_slot_value(cx: &mut Lower<'_, Self>, op: Opcode, bad: DynamicLabel) -> u8;
    /// `set` or `setref` of `value` into the slot at [`Machine::RESULT`].
    fn store_slot_value(cx: &mut Lower<'_, Self>, op: Opcode, value: u8);
    /// A plain or atomic load of the global at `addr` into `dst`.
    fn load_global(cx: &mut Lower<'_, Self>, op: Opcode, dst: u8, addr: i64);
    /// Puts the global's address where [`Machine::store_global`] stores.
    fn global_address(cx: &mut Lower<'_, Self>, addr: i64);
    /// A plain store of `value` to the global [`Machine::global_address`]
    /// named.
    fn store_global(cx: &mut Lower<'_, Self>, value: u8);
    /// A sequentially consistent store of `v` to the global at `addr`.
    fn store_global_atomic(cx: &mut Lower<'_, Self>, addr: i64, v: Val);
    /// `add.atomic`: returns the register holding the new value. May
    /// record its own restartable region ([`Lower::restartable`]).
    fn atomic_add(cx: &mut Lower<'_, Self>, addr: i64, v: Val) -> u8;
    /// `cas.atomic`: returns the register holding 1 if it swapped, else 0.
    /// May record its own restartable region.
    fn compare_and_swap(cx: &mut Lower<'_, Self>, addr: i64, old: Val, new: Val) -> u8;
}
