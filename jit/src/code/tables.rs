//! Metadata recorded at the moment code is emitted, and the tables built
//! from it.
//!
//! A backend calls [`MetadataBuilder`] as it emits, with the assembler's
//! current offset: where each function and block starts, where unsafe
//! regions begin and end and of what kind, where back-edge branches and
//! call returns are. [`MetadataBuilder::finish`] turns the record into
//! [`CodeTables`]: sorted arrays of absolute addresses, published once and
//! never changed. Every lookup is a binary search over a slice: it takes no
//! lock and allocates nothing, so the signal handler may use it.
//!
//! Address conventions: a PC is the address of the next instruction to
//! execute. A region `[start, end)` covers the instructions whose first byte
//! lies in it: preempting at `pc` means the instruction at `pc` has not run.

use crate::ir::{BlockId, FuncId, GlobalId, Span};

/// Why a stretch of code must not be interrupted by an asynchronous
/// preemption.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum UnsafeKind {
    /// The prologue: the frame is not yet set up.
    FrameSetup,
    /// The epilogue: the frame is being torn down.
    FrameTeardown,
    /// A transition between JIT code and the runtime (stack switch).
    RuntimeTransition,
    /// A sequence that uses the register reserved for the runtime's stubs.
    ScratchRegister,
    /// An atomic read-modify-write sequence (LL/SC on aarch64).
    AtomicSequence,
    /// From the load of the GC's marking flag through the ref store.
    WriteBarrier,
}

impl UnsafeKind {
    pub const ALL: &'static [UnsafeKind] = &[
        UnsafeKind::FrameSetup,
        UnsafeKind::FrameTeardown,
        UnsafeKind::RuntimeTransition,
        UnsafeKind::ScratchRegister,
        UnsafeKind::AtomicSequence,
        UnsafeKind::WriteBarrier,
    ];
    pub fn name(self) -> &'static str {
        match self {
            UnsafeKind::FrameSetup => "frame set-up",
            UnsafeKind::FrameTeardown => "frame tear-down",
            UnsafeKind::RuntimeTransition => "runtime-call transition",
            UnsafeKind::ScratchRegister => "scratch register",
            UnsafeKind::AtomicSequence => "atomic sequence",
            UnsafeKind::WriteBarrier => "write barrier",
        }
    }
    /// A stable small index, for per-kind counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A half-open range `[start, end)` of code addresses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UnsafeRegion {
    pub start: usize,
    pub end: usize,
    pub kind: UnsafeKind,
    /// A restartable region is safe to interrupt if execution resumes at
    /// `start` (the sequence has no effect until its last instruction).
    pub restartable: bool,
}

/// The code of one PIR function.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FunctionRange {
    pub func: FuncId,
    pub name: String,
    pub start: usize,
    pub end: usize,
    /// Source position of the function header.
    pub span: Span,
}

/// The code of one block (its out-of-line paths excluded).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlockRange {
    pub func: FuncId,
    pub block: BlockId,
    pub start: usize,
    pub end: usize,
}

/// A loop back-edge branch instruction, `[pc, pc + len)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BackEdge {
    pub pc: usize,
    pub len: usize,
    pub func: FuncId,
    pub from: BlockId,
    pub to: BlockId,
}

/// A back-edge's poll (`--preempt poll`: the test of the poll word;
/// `--preempt trap`: the load from the poll page) at `[pc, pc + len)`. A
/// trap fault at `pc` resumes at `pc + len` after the yield.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PollSite {
    pub pc: usize,
    pub len: usize,
    pub func: FuncId,
}

/// A back-edge branch the runtime may rewrite (`--preempt patch`): the
/// branch at `pc` (x86-64: `jmp rel32` with its displacement inside one
/// aligned 8-byte word; aarch64: `b`) normally goes to the loop head;
/// rewritten, it goes to `tramp`, which calls the yield stub and then
/// jumps to the loop head. [`crate::isa::patch_branch`] says what to
/// store for either.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PatchSite {
    pub pc: usize,
    pub tramp: usize,
    pub func: FuncId,
}

/// What a call instruction calls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CallKind {
    /// A PIR `call`.
    Function(FuncId),
    /// A runtime operation (`print`, `new`, channel operations, ...).
    Runtime,
    /// The stack-bound check at function entry failed (overflow, or a
    /// cooperative preemption request).
    StackCheck,
    /// A run-time error path (bounds, nil, division, assert, panic).
    Fault,
}

/// Where a call returns to, and which instruction made it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CallSite {
    pub return_pc: usize,
    pub func: FuncId,
    pub block: BlockId,
    pub span: Span,
    pub kind: CallKind,
}

/// A global load that LICM moved out of a loop.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HoistedLoad {
    pub pc: usize,
    pub func: FuncId,
    pub global: GlobalId,
    /// The header of the loop the load was moved out of.
    pub loop_header: BlockId,
}

/// The first machine instruction emitted for a PIR instruction, and the
/// instruction's place in the text.
///
/// A large program has one per instruction (1.25 million in the compile
/// benchmark), so it is kept to 24 bytes: the code offset is 32 bits and
/// is not rebased at publication ([`CodeTables::inst_pc`] adds the base).
/// Code never comes near 4 GiB: calls and branches reach across it with
/// 32-bit displacements on x86-64 and 28-bit ones on aarch64.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InstStart {
    /// Offset from the start of the code.
    pub offset: u32,
    pub func: FuncId,
    pub block: BlockId,
    /// Index in the block; `u32::MAX` for the terminator.
    pub index: u32,
    /// The instruction's place in the text; for the end of a block with no
    /// terminator, that of its last instruction, or of the block if it has
    /// none.
    pub span: Span,
}

/// What the compiler knew of a natural loop, for diagnoses ("this loop
/// has no preemption point in coop mode").
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LoopInfo {
    pub func: FuncId,
    pub header: BlockId,
    /// The body (inner loops included) calls a PIR function (a stack
    /// check, so a cooperative preemption point, on every iteration that
    /// makes the call).
    pub has_call: bool,
    /// The body enters the runtime (also a cooperative preemption point).
    pub has_runtime_op: bool,
}

/// A block inside a loop and the innermost loop around it. Loops are
/// nested, so this one entry per block says which loops contain it, where
/// a list of blocks per loop would grow with the square of a nest's depth.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlockLoop {
    pub func: FuncId,
    pub block: BlockId,
    /// An index into [`CodeTables::loops`].
    pub innermost: u32,
}

/// A runtime stub (context switch, runtime-call transition, ...).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StubRange {
    pub name: &'static str,
    pub start: usize,
    pub end: usize,
}

/// The published tables of one code blob.
#[derive(Clone, Default, Debug)]
pub struct CodeTables {
    pub functions: Vec<FunctionRange>,
    pub blocks: Vec<BlockRange>,
    pub unsafe_regions: Vec<UnsafeRegion>,
    pub back_edges: Vec<BackEdge>,
    pub poll_sites: Vec<PollSite>,
    pub patch_sites: Vec<PatchSite>,
    pub call_sites: Vec<CallSite>,
    pub hoisted_loads: Vec<HoistedLoad>,
    pub inst_starts: Vec<InstStart>,
    pub stubs: Vec<StubRange>,
    /// Natural loops, innermost first within each function.
    pub loops: Vec<LoopInfo>,
    /// The blocks inside loops, sorted by function and block.
    pub block_loops: Vec<BlockLoop>,
    /// The largest frame a function allocates below its entry SP before
    /// its stack check, in bytes: the runtime keeps its stack guard at
    /// least that far above the stack's lowest address.
    pub max_frame: usize,
    /// The address the code was published at (0 before [`Self::rebase`]):
    /// what [`InstStart::offset`]s are from.
    pub base: usize,
}

/// The entry of `items` (sorted by `start`, non-overlapping) containing `pc`.
fn find_range<T>(
    items: &[T],
    pc: usize,
    start: impl Fn(&T) -> usize,
    end: impl Fn(&T) -> usize,
) -> Option<&T> {
    let i = items.partition_point(|x| start(x) <= pc);
    let item = items.get(i.checked_sub(1)?)?;
    (pc < end(item)).then_some(item)
}

impl CodeTables {
    /// Adds `base` to every address (offsets become addresses once the
    /// code is published).
    pub fn rebase(&mut self, base: usize) {
        for f in &mut self.functions {
            f.start += base;
            f.end += base;
        }
        for b in &mut self.blocks {
            b.start += base;
            b.end += base;
        }
        for r in &mut self.unsafe_regions {
            r.start += base;
            r.end += base;
        }
        for e in &mut self.back_edges {
            e.pc += base;
        }
        for p in &mut self.poll_sites {
            p.pc += base;
        }
        for p in &mut self.patch_sites {
            p.pc += base;
            p.tramp += base;
        }
        for c in &mut self.call_sites {
            c.return_pc += base;
        }
        for h in &mut self.hoisted_loads {
            h.pc += base;
        }
        self.base += base;
        for s in &mut self.stubs {
            s.start += base;
            s.end += base;
        }
    }

    /// The PIR function whose code contains `pc` (stubs are not functions).
    pub fn function_at(&self, pc: usize) -> Option<&FunctionRange> {
        find_range(&self.functions, pc, |f| f.start, |f| f.end)
    }

    /// The block whose code contains `pc` (out-of-line paths belong to none).
    pub fn block_at(&self, pc: usize) -> Option<&BlockRange> {
        find_range(&self.blocks, pc, |b| b.start, |b| b.end)
    }

    /// The unsafe region containing `pc`, if any.
    pub fn unsafe_region_at(&self, pc: usize) -> Option<&UnsafeRegion> {
        find_range(&self.unsafe_regions, pc, |r| r.start, |r| r.end)
    }

    /// The call site returning to `return_pc`.
    pub fn call_site(&self, return_pc: usize) -> Option<&CallSite> {
        let i = self.call_sites.partition_point(|c| c.return_pc < return_pc);
        self.call_sites.get(i).filter(|c| c.return_pc == return_pc)
    }

    /// The stub whose code contains `pc`.
    pub fn stub_at(&self, pc: usize) -> Option<&StubRange> {
        find_range(&self.stubs, pc, |s| s.start, |s| s.end)
    }

    /// The PIR instruction whose machine code contains `pc`: the last
    /// instruction start at or before it within the same function.
    pub fn inst_at(&self, pc: usize) -> Option<&InstStart> {
        let f = self.function_at(pc)?;
        let offset = u32::try_from(pc.checked_sub(self.base)?).ok()?;
        let i = self.inst_starts.partition_point(|s| s.offset <= offset);
        let s = self.inst_starts.get(i.checked_sub(1)?)?;
        (s.func == f.func).then_some(s)
    }

    /// The address of an instruction start's first machine instruction.
    pub fn inst_pc(&self, s: &InstStart) -> usize {
        self.base + s.offset as usize
    }

    /// Back-edges of one function.
    /// The back-edge poll starting at `pc`. Async-signal-safe.
    pub fn poll_site_at(&self, pc: usize) -> Option<&PollSite> {
        let i = self.poll_sites.partition_point(|p| p.pc < pc);
        self.poll_sites.get(i).filter(|p| p.pc == pc)
    }

    /// The patchable back-edges of `func`.
    pub fn patch_sites_of(&self, func: FuncId) -> impl Iterator<Item = &PatchSite> {
        self.patch_sites.iter().filter(move |p| p.func == func)
    }

    pub fn back_edges_of(&self, func: FuncId) -> impl Iterator<Item = &BackEdge> {
        self.back_edges.iter().filter(move |b| b.func == func)
    }

    /// The innermost loop of `func` containing `block`.
    pub fn innermost_loop(&self, func: FuncId, block: BlockId) -> Option<&LoopInfo> {
        let key = (func, block);
        let i = self
            .block_loops
            .binary_search_by_key(&key, |b| (b.func, b.block))
            .ok()?;
        self.loops.get(self.block_loops[i].innermost as usize)
    }

    /// Hoisted loads whose loop header is `header` in `func`.
    pub fn hoisted_into(
        &self,
        func: FuncId,
        header: BlockId,
    ) -> impl Iterator<Item = &HoistedLoad> {
        self.hoisted_loads
            .iter()
            .filter(move |h| h.func == func && h.loop_header == header)
    }
}

/// Records metadata at emission time, in offsets from the start of the
/// code blob.
#[derive(Debug, Default)]
pub struct MetadataBuilder {
    tables: CodeTables,
    open_func: Option<(FuncId, String, Span, usize)>,
    open_block: Option<(FuncId, BlockId, usize)>,
    open_unsafe: Option<(UnsafeKind, bool, usize)>,
    open_stub: Option<(&'static str, usize)>,
    /// Index in `tables.loops` of the open function's first loop.
    first_loop: usize,
}

/// Sorts `v` by `key`, stably, unless it is sorted already: code is
/// emitted in address order, so most tables are recorded sorted, and a
/// check costs one pass where a stable sort of millions of entries also
/// allocates a buffer of half their size.
fn sort_by_key<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    if !v.is_sorted_by_key(&key) {
        v.sort_by_key(key);
    }
}

impl MetadataBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with room for the tables of a program of `insts`
    /// instructions (terminators included) in `blocks` blocks, so that
    /// the largest tables are not copied as they grow: an entry per
    /// instruction and per block; call sites (every call, and every
    /// runtime call an instruction may make) and unsafe regions for
    /// several instructions in two and in four. Room not used costs no
    /// memory until written.
    pub fn with_capacity(insts: usize, blocks: usize) -> Self {
        let mut m = Self::default();
        m.tables.inst_starts.reserve(insts);
        m.tables.blocks.reserve(blocks);
        m.tables.call_sites.reserve(insts / 2);
        m.tables.unsafe_regions.reserve(insts / 4);
        m
    }

    /// Adds the room reserved for the largest table, the instruction
    /// starts, to `p`, to be faulted in ahead of the recording. (Its
    /// entries are as many as the instructions, so the room ahead of
    /// function `i` is where function `i`'s go; the other tables' use is
    /// not known in advance, and faulting their room in by guess would
    /// fault in pages never used.)
    pub fn spare(&self, p: &mut super::prefault::Prefault) {
        p.spare(&self.tables.inst_starts);
    }

    /// The function being recorded.
    fn open_func(&self) -> FuncId {
        self.open_func.as_ref().expect("a function is open").0
    }

    pub fn begin_function(&mut self, func: FuncId, name: &str, span: Span, offset: usize) {
        assert!(self.open_func.is_none(), "functions do not nest");
        self.open_func = Some((func, name.to_string(), span, offset));
        self.first_loop = self.tables.loops.len();
    }

    /// The open function allocates a frame of `bytes`.
    pub fn frame_size(&mut self, bytes: usize) {
        self.tables.max_frame = self.tables.max_frame.max(bytes);
    }

    pub fn end_function(&mut self, offset: usize) {
        self.end_block(offset);
        let (func, name, span, start) = self.open_func.take().expect("a function is open");
        self.tables.functions.push(FunctionRange {
            func,
            name,
            start,
            end: offset,
            span,
        });
    }

    /// Starts a block; ends the previous one.
    pub fn begin_block(&mut self, block: BlockId, offset: usize) {
        self.end_block(offset);
        let func = self.open_func();
        self.open_block = Some((func, block, offset));
    }

    /// Ends the current block (out-of-line code that follows belongs to
    /// no block).
    pub fn end_block(&mut self, offset: usize) {
        if let Some((func, block, start)) = self.open_block.take() {
            self.tables.blocks.push(BlockRange {
                func,
                block,
                start,
                end: offset,
            });
        }
    }

    pub fn begin_unsafe(&mut self, kind: UnsafeKind, offset: usize) {
        self.begin_unsafe_region(kind, false, offset)
    }

    /// Starts an unsafe region that execution may restart from its start.
    pub fn begin_restartable(&mut self, kind: UnsafeKind, offset: usize) {
        self.begin_unsafe_region(kind, true, offset)
    }

    fn begin_unsafe_region(&mut self, kind: UnsafeKind, restartable: bool, offset: usize) {
        assert!(
            self.open_unsafe.is_none(),
            "unsafe regions do not nest ({kind:?} inside {:?})",
            self.open_unsafe
        );
        self.open_unsafe = Some((kind, restartable, offset));
    }

    pub fn end_unsafe(&mut self, offset: usize) {
        let (kind, restartable, start) = self.open_unsafe.take().expect("an unsafe region is open");
        if offset > start {
            self.tables.unsafe_regions.push(UnsafeRegion {
                start,
                end: offset,
                kind,
                restartable,
            });
        }
    }

    /// A back-edge branch occupying `[offset, offset + len)`.
    pub fn back_edge(&mut self, offset: usize, len: usize, from: BlockId, to: BlockId) {
        let func = self.open_func();
        self.tables.back_edges.push(BackEdge {
            pc: offset,
            len,
            func,
            from,
            to,
        });
    }

    /// A back-edge poll occupying `[offset, offset + len)`.
    pub fn poll_site(&mut self, offset: usize, len: usize) {
        let func = self.open_func();
        self.tables.poll_sites.push(PollSite {
            pc: offset,
            len,
            func,
        });
    }

    /// A patchable back-edge branch at `offset` and its trampoline.
    pub fn patch_site(&mut self, offset: usize, tramp: usize) {
        let func = self.open_func();
        self.tables.patch_sites.push(PatchSite {
            pc: offset,
            tramp,
            func,
        });
    }

    /// A call whose return address is `return_offset`.
    pub fn call_site(&mut self, return_offset: usize, block: BlockId, span: Span, kind: CallKind) {
        let func = self.open_func();
        self.tables.call_sites.push(CallSite {
            return_pc: return_offset,
            func,
            block,
            span,
            kind,
        });
    }

    pub fn hoisted_load(&mut self, offset: usize, global: GlobalId, loop_header: BlockId) {
        let func = self.open_func();
        self.tables.hoisted_loads.push(HoistedLoad {
            pc: offset,
            func,
            global,
            loop_header,
        });
    }

    /// Instruction `index` of `block` (`None`: its terminator, or its end)
    /// starts at `offset`; `span` is its place in the text.
    pub fn inst_start(&mut self, offset: usize, block: BlockId, index: Option<usize>, span: Span) {
        let func = self.open_func();
        self.tables.inst_starts.push(InstStart {
            // See `InstStart`: the code is far smaller than 4 GiB.
            offset: offset as u32,
            func,
            block,
            index: index.map_or(u32::MAX, |i| i as u32),
            span,
        });
    }

    /// A natural loop of the current function.
    pub fn loop_info(&mut self, header: BlockId, has_call: bool, has_runtime_op: bool) {
        let func = self.open_func();
        self.tables.loops.push(LoopInfo {
            func,
            header,
            has_call,
            has_runtime_op,
        });
    }

    /// `block` of the current function is inside a loop, the innermost one
    /// being its `k`-th loop recorded by [`MetadataBuilder::loop_info`].
    pub fn block_loop(&mut self, block: BlockId, k: usize) {
        let func = self.open_func();
        let innermost = self.first_loop + k;
        assert!(innermost < self.tables.loops.len(), "the loop is recorded");
        self.tables.block_loops.push(BlockLoop {
            func,
            block,
            innermost: innermost as u32,
        });
    }

    pub fn begin_stub(&mut self, name: &'static str, offset: usize) {
        assert!(self.open_stub.is_none(), "stubs do not nest");
        self.open_stub = Some((name, offset));
    }

    pub fn end_stub(&mut self, offset: usize) {
        let (name, start) = self.open_stub.take().expect("a stub is open");
        self.tables.stubs.push(StubRange {
            name,
            start,
            end: offset,
        });
    }

    /// Sorts the record into lookup tables, still in offsets from the
    /// start of the code ([`CodeTables::rebase`] moves them to the address
    /// the code is published at).
    pub fn finish(mut self) -> CodeTables {
        assert!(self.open_func.is_none() && self.open_unsafe.is_none() && self.open_stub.is_none());
        let t = &mut self.tables;
        sort_by_key(&mut t.functions, |f| f.start);
        t.blocks.retain(|b| b.end > b.start);
        sort_by_key(&mut t.blocks, |b| b.start);
        sort_by_key(&mut t.unsafe_regions, |r| r.start);
        sort_by_key(&mut t.back_edges, |e| e.pc);
        sort_by_key(&mut t.poll_sites, |p| p.pc);
        sort_by_key(&mut t.patch_sites, |p| p.pc);
        sort_by_key(&mut t.call_sites, |c| c.return_pc);
        sort_by_key(&mut t.hoisted_loads, |h| h.pc);
        sort_by_key(&mut t.inst_starts, |s| s.offset);
        sort_by_key(&mut t.stubs, |s| s.start);
        sort_by_key(&mut t.block_loops, |b| (b.func, b.block));
        self.tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CodeTables {
        let mut m = MetadataBuilder::new();
        m.begin_stub("rt_call", 0);
        m.begin_unsafe(UnsafeKind::RuntimeTransition, 0);
        m.end_unsafe(16);
        m.end_stub(16);
        m.begin_function(FuncId(0), "main", Span::new(1, 1), 16);
        m.begin_unsafe(UnsafeKind::FrameSetup, 16);
        m.end_unsafe(24);
        m.begin_block(BlockId(0), 24);
        m.inst_start(24, BlockId(0), Some(0), Span::new(2, 5));
        m.call_site(30, BlockId(0), Span::new(3, 5), CallKind::Runtime);
        m.begin_block(BlockId(1), 40);
        m.inst_start(40, BlockId(1), None, Span::new(4, 5));
        m.back_edge(44, 2, BlockId(1), BlockId(1));
        m.end_block(46);
        m.begin_unsafe(UnsafeKind::FrameTeardown, 46);
        m.end_unsafe(50);
        m.end_function(60);
        let mut t = m.finish();
        t.rebase(0x1000);
        t
    }

    #[test]
    fn lookups_find_containing_ranges() {
        let t = sample();
        assert_eq!(t.function_at(0x1000 + 16).map(|f| f.func), Some(FuncId(0)));
        assert_eq!(
            t.function_at(0x1000 + 59).map(|f| f.name.as_str()),
            Some("main")
        );
        assert!(t.function_at(0x1000 + 60).is_none());
        assert!(
            t.function_at(0x1000 + 15).is_none(),
            "stubs are not functions"
        );
        assert_eq!(t.stub_at(0x1000).map(|s| s.name), Some("rt_call"));
        assert_eq!(t.block_at(0x1000 + 41).map(|b| b.block), Some(BlockId(1)));
        assert!(
            t.block_at(0x1000 + 47).is_none(),
            "tear-down belongs to no block"
        );
        assert!(
            t.block_at(0x1000 + 20).is_none(),
            "prologue belongs to no block"
        );
    }

    #[test]
    fn unsafe_regions_are_half_open() {
        let t = sample();
        assert_eq!(
            t.unsafe_region_at(0x1000 + 16).map(|r| r.kind),
            Some(UnsafeKind::FrameSetup)
        );
        assert_eq!(
            t.unsafe_region_at(0x1000 + 23).map(|r| r.kind),
            Some(UnsafeKind::FrameSetup)
        );
        assert!(t.unsafe_region_at(0x1000 + 24).is_none());
        assert_eq!(
            t.unsafe_region_at(0x1000 + 49).map(|r| r.kind),
            Some(UnsafeKind::FrameTeardown)
        );
        assert!(t.unsafe_region_at(0x1000 + 50).is_none());
        assert!(t.unsafe_region_at(0).is_none(), "below the code");
    }

    #[test]
    fn call_sites_match_exactly() {
        let t = sample();
        let c = t.call_site(0x1000 + 30).unwrap();
        assert_eq!(
            (c.block, c.span.key(), c.kind),
            (BlockId(0), (3, 5), CallKind::Runtime)
        );
        assert!(t.call_site(0x1000 + 29).is_none());
        assert!(t.call_site(0x1000 + 31).is_none());
        assert_eq!(t.back_edges_of(FuncId(0)).count(), 1);
        assert_eq!(t.inst_at(0x1000 + 45).map(|s| s.index), Some(u32::MAX));
        // Instruction starts are kept as offsets and read as addresses.
        let s = t
            .inst_at(0x1000 + 39)
            .expect("the first block's instruction");
        assert_eq!(
            (s.index, s.span.key(), t.inst_pc(s)),
            (0, (2, 5), 0x1000 + 24)
        );
        assert!(t.inst_at(0x1000 + 23).is_none(), "before the first");
        assert!(t.inst_at(0x10).is_none(), "below the code");
    }

    #[test]
    fn the_innermost_loop_of_a_block_is_looked_up() {
        let mut m = MetadataBuilder::new();
        m.begin_function(FuncId(0), "f", Span::new(1, 1), 0);
        // An outer loop 1..=4 around an inner one 2..=3, inner first.
        m.loop_info(BlockId(2), false, true);
        m.loop_info(BlockId(1), true, true);
        for (b, k) in [(4, 1), (1, 1), (3, 0), (2, 0)] {
            m.block_loop(BlockId(b), k);
        }
        m.end_function(10);
        m.begin_function(FuncId(1), "g", Span::new(9, 1), 10);
        m.loop_info(BlockId(0), false, false);
        m.block_loop(BlockId(0), 0);
        m.end_function(20);
        let t = m.finish();
        let header = |f: u32, b: u32| {
            t.innermost_loop(FuncId(f), BlockId(b))
                .map(|l| (l.func.0, l.header.0))
        };
        assert_eq!(header(0, 3), Some((0, 2)));
        assert_eq!(header(0, 1), Some((0, 1)));
        assert_eq!(header(0, 4), Some((0, 1)));
        assert_eq!(header(0, 0), None);
        assert_eq!(header(0, 5), None);
        assert_eq!(header(1, 0), Some((1, 0)));
        assert_eq!(header(1, 2), None);
    }

    #[test]
    fn lookups_do_not_allocate() {
        let t = sample();
        let before = crate::alloc_count::this_thread();
        let mut hits = 0;
        for pc in 0x1000..0x1000 + 64 {
            hits += usize::from(t.unsafe_region_at(pc).is_some());
            hits += usize::from(t.function_at(pc).is_some());
            hits += usize::from(t.block_at(pc).is_some());
            hits += usize::from(t.call_site(pc).is_some());
            hits += usize::from(t.stub_at(pc).is_some());
            hits += usize::from(t.inst_at(pc).is_some());
        }
        assert_eq!(
            crate::alloc_count::this_thread(),
            before,
            "a lookup allocated"
        );
        assert!(hits > 0);
    }
}
