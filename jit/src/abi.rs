//! The contract between generated code and the runtime.
//!
//! # Goroutine context
//!
//! Every goroutine has a [`GoroutineContext`]; while it runs, a reserved
//! register holds its address (`r15` on x86-64, `x28` on aarch64). The
//! layout is `repr(C)` and generated code addresses its fields at the
//! offsets below.
//!
//! # Runtime calls
//!
//! JIT code enters the runtime by storing the operands of the operation in
//! the outgoing-argument area at the bottom of its frame, putting a request
//! word (`op | payload << 32`) in the first return register, and calling the
//! `rt_call` stub. The stub saves every allocatable register and the frame
//! pointer in the context, saves SP (which then points at the return
//! address, with the operands just above it), switches to the scheduler's
//! stack and returns from `switch_to` with the request. The runtime reads
//! the operands at `sp + 8 + 8 * i`, does the work, stores a result in
//! `result` (and `result2` for a select's received value) and calls
//! `switch_to` again, which restores everything and returns into JIT code
//! with `result` in the return register. From the allocator's point of
//! view a runtime operation clobbers only the backend's scratch registers.
//!
//! # Heap objects
//!
//! An object of N slots is `16 + 16 * N` bytes: its length, a GC word, then
//! for each slot a tag word ([`TAG_FRESH`], [`TAG_INT`], [`TAG_REF`]) and a
//! value word. Generated code checks the tag to give `slot type mismatch`;
//! a tag that is none of the three is a freed object the collector
//! poisoned ([`TAG_FREED`], `--gc-verify`), reported as a use after free.
//!
//! # The write barrier
//!
//! Every store into a heap slot (`set`, `setref`) and every `store` of a
//! ref global first loads `ctx.gc`, the address of the collector's
//! [`GcBarrier`], and tests its `marking` word; while the collector marks,
//! the store takes an out-of-line path that passes the slot's old ref (if
//! it holds one) to `shade`, a plain C-ABI function called on the
//! goroutine's own stack, before storing. The sequence from the load of
//! the flag to the last store is an unsafe region of kind
//! [`WriteBarrier`](crate::code::UnsafeKind::WriteBarrier), so no
//! preemption separates the test of the flag from the store. Why the old
//! value and not the new one is explained in the runtime's `gc` module.

use std::mem::offset_of;
use std::sync::atomic::AtomicU64;

/// Request codes for runtime calls (the low 32 bits of the request word).
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RuntimeOp {
    /// The stack-bound check at function entry failed: overflow, or the
    /// guard was poisoned to ask for a cooperative stop.
    StackCheck = 1,
    /// A run-time error; the payload is a [`FaultCode`].
    Fault,
    /// The goroutine's function returned.
    Exit,
    /// `print`; payload: print descriptor index; operands: the values.
    Print,
    /// `new N`.
    New,
    /// `spawn`; payload: function index; operands: the arguments.
    Spawn,
    Yield,
    Gc,
    SetGcPercent,
    Sleep,
    Now,
    LockThread,
    UnlockThread,
    Procs,
    Chan,
    Send,
    Recv,
    Close,
    After,
    Notify,
    /// `select`; payload: select descriptor index; operands: per arm, the
    /// channel (and the value for a send). The result is the arm taken; a
    /// received value is in `result2`.
    Select,
    /// `ccall`; payload: the foreign function; operand: its argument.
    CCall,
    /// `goexit`.
    Goexit,
    /// The asynchronous-preemption stub, entered by a signal handler's
    /// redirect: every register is saved on the goroutine's stack, and the
    /// goroutine resumes at the interrupted instruction when the runtime
    /// switches back.
    PreemptStub,
}

impl RuntimeOp {
    pub const ALL: &'static [RuntimeOp] = &[
        RuntimeOp::StackCheck,
        RuntimeOp::Fault,
        RuntimeOp::Exit,
        RuntimeOp::Print,
        RuntimeOp::New,
        RuntimeOp::Spawn,
        RuntimeOp::Yield,
        RuntimeOp::Gc,
        RuntimeOp::SetGcPercent,
        RuntimeOp::Sleep,
        RuntimeOp::Now,
        RuntimeOp::LockThread,
        RuntimeOp::UnlockThread,
        RuntimeOp::Procs,
        RuntimeOp::Chan,
        RuntimeOp::Send,
        RuntimeOp::Recv,
        RuntimeOp::Close,
        RuntimeOp::After,
        RuntimeOp::Notify,
        RuntimeOp::Select,
        RuntimeOp::CCall,
        RuntimeOp::Goexit,
        RuntimeOp::PreemptStub,
    ];

    pub fn from_u32(v: u32) -> Option<RuntimeOp> {
        // `ALL` lists the operations in discriminant order, from 1 (a test
        // checks).
        RuntimeOp::ALL
            .get((v as usize).wrapping_sub(1))
            .copied()
            .filter(|op| *op as u32 == v)
    }

    /// The request word for this operation with `payload`.
    pub fn request(self, payload: u32) -> u64 {
        self as u64 | (u64::from(payload) << 32)
    }

    /// The runtime operation a PIR instruction enters, if it enters one.
    pub fn for_opcode(op: crate::ir::Opcode) -> Option<RuntimeOp> {
        use crate::ir::Opcode as O;
        Some(match op {
            O::New => RuntimeOp::New,
            O::Spawn => RuntimeOp::Spawn,
            O::Yield => RuntimeOp::Yield,
            O::Gc => RuntimeOp::Gc,
            O::SetGcPercent => RuntimeOp::SetGcPercent,
            O::Sleep => RuntimeOp::Sleep,
            O::Now => RuntimeOp::Now,
            O::LockThread => RuntimeOp::LockThread,
            O::UnlockThread => RuntimeOp::UnlockThread,
            O::Procs => RuntimeOp::Procs,
            O::Chan => RuntimeOp::Chan,
            O::Send => RuntimeOp::Send,
            O::Recv => RuntimeOp::Recv,
            O::Close => RuntimeOp::Close,
            O::After => RuntimeOp::After,
            O::Notify => RuntimeOp::Notify,
            O::Print => RuntimeOp::Print,
            O::CCall => RuntimeOp::CCall,
            O::Select => RuntimeOp::Select,
            O::Goexit => RuntimeOp::Goexit,
            _ => return None,
        })
    }
}

/// Run-time errors detected by generated code (the payload of
/// [`RuntimeOp::Fault`]).
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FaultCode {
    /// Operands: index, length.
    IndexOutOfRange = 1,
    NilDereference,
    SlotTypeMismatch,
    DivideByZero,
    /// The low 32 bits of the payload's upper half hold the message index:
    /// see [`fault_request`].
    AssertionFailed,
    Panic,
}

impl FaultCode {
    pub const ALL: &'static [FaultCode] = &[
        FaultCode::IndexOutOfRange,
        FaultCode::NilDereference,
        FaultCode::SlotTypeMismatch,
        FaultCode::DivideByZero,
        FaultCode::AssertionFailed,
        FaultCode::Panic,
    ];
    pub fn from_u32(v: u32) -> Option<FaultCode> {
        FaultCode::ALL.iter().copied().find(|c| *c as u32 == v)
    }
}

/// The request word of a fault: the code in bits 32..40, a message index
/// (for assert and panic) in bits 40..64.
pub fn fault_request(code: FaultCode, message: u32) -> u64 {
    debug_assert!(message < (1 << 24));
    RuntimeOp::Fault.request(code as u32 | (message << 8))
}

/// Splits a fault payload into its code and message index.
pub fn decode_fault(payload: u32) -> (Option<FaultCode>, u32) {
    (FaultCode::from_u32(payload & 0xff), payload >> 8)
}

/// Registers saved across a runtime call (by hardware number, per backend).
pub const SAVED_REGS: usize = 32;

/// What generated code and the runtime share about one goroutine.
#[repr(C)]
#[derive(Debug)]
pub struct GoroutineContext {
    /// Compared with SP at every function entry; below it, the function
    /// calls the runtime. Poisoned ([`STACK_GUARD_POISON`]) by the monitor,
    /// from another thread, to request a cooperative stop: hence atomic
    /// (generated code reads it with a plain aligned load).
    pub stack_guard: AtomicU64,
    /// The goroutine's SP while it is not running.
    pub sp: u64,
    /// The scheduler's SP while the goroutine runs.
    pub sched_sp: u64,
    /// The request word of the last runtime call.
    pub request: u64,
    /// What the runtime call returns to JIT code.
    pub result: u64,
    /// A second result (a select's received value).
    pub result2: u64,
    /// Lowest address of the usable stack (above the guard page).
    pub stack_lo: u64,
    /// One past the highest address of the stack.
    pub stack_hi: u64,
    /// Registers saved by `rt_call`, indexed by hardware register number.
    pub saved: [u64; SAVED_REGS],
    /// The address of the collector's [`GcBarrier`]: what the write
    /// barrier tests and calls. A fresh context points at [`NO_GC`].
    pub gc: u64,
    /// `--preempt poll`: every loop back-edge compares this word with zero
    /// and calls the yield stub when it is not. The requester sets it, the
    /// runtime clears it once the goroutine stopped. It is the running
    /// thread's word in the sense that matters: generated code reaches it
    /// through the context register, which only the thread running the
    /// goroutine holds (as HotSpot reaches its thread-local poll word
    /// through r15).
    pub poll: AtomicU64,
    /// `--preempt trap`: every loop back-edge loads a word from the page
    /// this points at. A readable page ([`POLL_PAGE_READY`]) while nothing
    /// is requested; the requester swaps in a page that faults (JEP 312's
    /// thread-local handshake), or, with `--trap-arm mprotect`, this points
    /// at one global page that the requester protects.
    pub poll_page: AtomicU64,
    /// `--preempt patch`: the function the goroutine runs, stored by every
    /// function entry and after every call returns, for the requester to
    /// know whose back-edges to rewrite.
    pub func: AtomicU64,
}

/// A readable word for `poll_page` to point at while nothing is requested.
pub static POLL_PAGE_READY: AtomicU64 = AtomicU64::new(0);

/// What generated code's write barrier reads: a flag and the function
/// that shades. The collector owns one for the whole run, at a stable
/// address; `data` is the collector's, for `shade` to find its state.
#[repr(C)]
#[derive(Debug)]
pub struct GcBarrier {
    /// Non-zero while the collector marks: ref stores take the slow path.
    pub marking: AtomicU64,
    /// `extern "C" fn(barrier: *const GcBarrier, old: u64)`: greys the
    /// object `old` refers to. Called only while `marking` is set, with the
    /// old value of a slot that holds a ref or of a ref global (never 0).
    pub shade: extern "C" fn(*const GcBarrier, u64),
}

extern "C" fn shade_nothing(_: *const GcBarrier, _: u64) {}

/// The barrier of a context no collector runs for: never marking.
pub static NO_GC: GcBarrier = GcBarrier {
    marking: AtomicU64::new(0),
    shade: shade_nothing,
};

/// Bytes the asynchronous-preemption stub (and the runtime call it makes)
/// needs below the interrupted SP, on every architecture; a redirect must
/// not happen with less room above the stack's lowest usable address.
pub const PREEMPT_STUB_STACK: usize = 1024;

/// Frames smaller than this may skip the stack check in a leaf (Go's
/// `abi.StackSmall`): the runtime's stack reserve below the guard holds
/// such a leaf's frame and, below it, the preemption stub's
/// ([`PREEMPT_STUB_STACK`]), which the runtime asserts.
pub const NOSPLIT_FRAME_MAX: i32 = 128;

/// A guard no SP is above: every function entry calls the runtime.
pub const STACK_GUARD_POISON: u64 = u64::MAX;

pub const CTX_STACK_GUARD: i32 = offset_of!(GoroutineContext, stack_guard) as i32;
pub const CTX_SP: i32 = offset_of!(GoroutineContext, sp) as i32;
pub const CTX_SCHED_SP: i32 = offset_of!(GoroutineContext, sched_sp) as i32;
pub const CTX_REQUEST: i32 = offset_of!(GoroutineContext, request) as i32;
pub const CTX_RESULT: i32 = offset_of!(GoroutineContext, result) as i32;
pub const CTX_RESULT2: i32 = offset_of!(GoroutineContext, result2) as i32;
pub const CTX_SAVED: i32 = offset_of!(GoroutineContext, saved) as i32;
pub const CTX_GC: i32 = offset_of!(GoroutineContext, gc) as i32;
pub const CTX_POLL: i32 = offset_of!(GoroutineContext, poll) as i32;
pub const CTX_POLL_PAGE: i32 = offset_of!(GoroutineContext, poll_page) as i32;
pub const CTX_FUNC: i32 = offset_of!(GoroutineContext, func) as i32;
/// Offset of [`GcBarrier::marking`].
pub const GC_MARKING: i32 = offset_of!(GcBarrier, marking) as i32;
/// Offset of [`GcBarrier::shade`].
pub const GC_SHADE: i32 = offset_of!(GcBarrier, shade) as i32;

impl GoroutineContext {
    pub fn new() -> GoroutineContext {
        GoroutineContext {
            stack_guard: AtomicU64::new(0),
            sp: 0,
            sched_sp: 0,
            request: 0,
            result: 0,
            result2: 0,
            stack_lo: 0,
            stack_hi: 0,
            saved: [0; SAVED_REGS],
            gc: &NO_GC as *const GcBarrier as u64,
            poll: AtomicU64::new(0),
            poll_page: AtomicU64::new(&POLL_PAGE_READY as *const AtomicU64 as u64),
            func: AtomicU64::new(0),
        }
    }
}

impl Default for GoroutineContext {
    fn default() -> Self {
        Self::new()
    }
}

/// Offset of an object's length word.
pub const OBJ_LEN: i32 = 0;
/// Offset of an object's GC word.
pub const OBJ_GC: i32 = 8;
/// Offset of slot 0.
pub const OBJ_SLOTS: i32 = 16;
/// Bytes per slot (tag word, value word).
pub const SLOT_SIZE: i32 = 16;
/// log2 of [`SLOT_SIZE`].
pub const SLOT_SHIFT: u8 = 4;
/// Offset of the tag within a slot.
pub const SLOT_TAG: i32 = 0;
/// Offset of the value within a slot.
pub const SLOT_VALUE: i32 = 8;
/// A slot never written: reads as 0 through `get` and nil through `getref`.
pub const TAG_FRESH: u64 = 0;
/// A slot written by `set`.
pub const TAG_INT: u64 = 1;
/// A slot written by `setref`.
pub const TAG_REF: u64 = 2;
/// Every tag and value word of an object the collector freed, in
/// `--gc-verify` mode: no valid tag, and no address of anything. `get`
/// and `getref` take their mismatch path on it, where the runtime tells a
/// use of a freed object from a type mismatch.
pub const TAG_FREED: u64 = 0xf4ee_dead_f4ee_dead;
/// Live heap bytes (counted in this layout) beyond which `new` is
/// `fatal error: runtime: out of memory`, on every engine.
pub const DEFAULT_HEAP_LIMIT: u64 = 4 << 30;

/// Bytes an object of `slots` slots takes (saturating for absurd sizes).
pub fn object_bytes(slots: i64) -> u64 {
    (slots.max(0) as u64)
        .saturating_mul(SLOT_SIZE as u64)
        .saturating_add(OBJ_SLOTS as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_words_round_trip_through_the_decoder() {
        for (i, op) in RuntimeOp::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i + 1, "ALL is in discriminant order");
            let word = op.request(7);
            assert_eq!(RuntimeOp::from_u32(word as u32), Some(*op));
            assert_eq!(word >> 32, 7);
        }
        assert_eq!(RuntimeOp::from_u32(0), None);
        assert_eq!(RuntimeOp::from_u32(RuntimeOp::ALL.len() as u32 + 1), None);
        for code in FaultCode::ALL {
            let (c, msg) = decode_fault((fault_request(*code, 42) >> 32) as u32);
            assert_eq!((c, msg), (Some(*code), 42));
        }
    }
}
