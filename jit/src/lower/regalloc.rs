//! Linear-scan register allocation over PIR registers.
//!
//! PIR registers are mutable locals, so each one is allocated as a whole:
//! one location for its entire life. Its live interval is the hull of every
//! program point where it is live; a value live around a loop's back-edge
//! is live across the whole loop, so loop values stay in one register for
//! the loop.
//!
//! Liveness is found register by register, backwards from the uses that
//! read a value from before their block (see [`Liveness`]), so it costs
//! the blocks each register is live in, not blocks times registers, and a
//! loop with no definition of the register is crossed in one step, not
//! block by block.
//!
//! The calling convention splits the allocatable registers into
//! caller-saved ones (clobbered by a PIR `call`) and callee-saved ones
//! (preserved by every JIT function that uses them). An interval that
//! crosses a call may only take a callee-saved register. Runtime operations
//! clobber nothing: the runtime-call stub saves and restores every
//! allocatable register.
//!
//! When no register is free, the interval with the lowest spill weight
//! (uses weighted by 10^loop depth, per unit of length) goes to a stack
//! slot for its whole life; instructions reach spilled values through the
//! backend's scratch registers or memory operands.

use std::sync::Arc;

use crate::ir::cfg::Cfg;
use crate::ir::{BlockId, Function, InstKind, Opcode, Reg, TermKind};
use crate::lower::{RegSet, RegisterFile};

/// Where a PIR register lives for its whole life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Location {
    /// A machine register, by hardware number.
    Reg(u8),
    /// Spill slot `k` of the frame.
    Spill(u32),
    /// The incoming stack slot of parameter `i` (a spilled parameter needs
    /// no copy); never one passed in a register.
    Param(u32),
    /// Never defined nor used in reachable code.
    Unused,
}

/// A live interval, in program points (an instruction numbered `k` reads
/// its operands at `2k` and writes its result at `2k + 1`).
#[derive(Clone, Copy, Debug)]
struct Interval {
    reg: Reg,
    start: u32,
    end: u32,
    crosses_call: bool,
    weight: f64,
}

/// The allocator's result for one function.
#[derive(Clone, Debug)]
pub struct Allocation {
    pub locations: Vec<Location>,
    pub spill_slots: u32,
    /// Callee-saved registers the function writes, to save in its prologue.
    pub used_callee_saved: Vec<u8>,
    /// Words of outgoing argument area needed by calls and runtime
    /// operations.
    pub outgoing_words: u32,
    /// Whether the register the last instruction of each block defines is
    /// still live at the end of the block (a compare whose result only the
    /// branch after it reads fuses into that branch).
    pub last_def_live_out: Vec<bool>,
    pub cfg: Arc<Cfg>,
}

impl Allocation {
    pub fn location(&self, r: Reg) -> Location {
        self.locations[r.index()]
    }
}

/// Words of outgoing area an instruction needs: the operands of a
/// runtime operation, the stack arguments of a call (a call passing every
/// argument in registers needs none; one passing more keeps the words of
/// the register ones unused, so that argument `i` is at `8*i` as the
/// runtime's goroutine entry lays them out), and the two words the fault
/// paths of a heap slot access pass (slot tag and object, or index and
/// length). Nothing else writes below the stack pointer's frame.
fn outgoing_words(kind: &InstKind, register_params: u32) -> u32 {
    let mut n = 0;
    kind.for_each_operand(|_| n += 1);
    // As the lowering (`lower::function`) spells each instruction.
    match kind {
        InstKind::Call { .. } if n <= register_params => 0,
        InstKind::Call { .. } => n,
        InstKind::Binary { op, .. } => {
            if matches!(op, Opcode::Get | Opcode::GetRef) {
                2
            } else {
                0
            }
        }
        InstKind::Unary { op, .. } => {
            if matches!(op, Opcode::Copy | Opcode::Neg | Opcode::Not | Opcode::Len) {
                0
            } else {
                n
            }
        }
        InstKind::Effect {
            op: Opcode::Set | Opcode::SetRef,
            ..
        } => 2,
        InstKind::Effect { .. }
        | InstKind::Nullary { .. }
        | InstKind::Spawn { .. }
        | InstKind::Print { .. }
        | InstKind::CCall { .. } => n,
        InstKind::Const { .. }
        | InstKind::Load { .. }
        | InstKind::Store { .. }
        | InstKind::AtomicAdd { .. }
        | InstKind::Cas { .. }
        | InstKind::Assert { .. } => 0,
    }
}

/// Allocates every register of `func` (verified) to a location.
pub fn allocate(func: &Function, regs: &RegisterFile) -> Allocation {
    let cfg = func.cfg();
    let nregs = func.regs.len();
    let nblocks = func.blocks.len();

    // Program points: number instructions of reachable blocks in layout
    // order; a block with neither instructions nor terminator still gets
    // one point so its range is not empty.
    let mut block_start = vec![0u32; nblocks];
    let mut block_end = vec![0u32; nblocks];
    let mut k: u32 = 1; // point 0..1 is the entry, where parameters are defined
    for (b, block) in func.blocks.iter().enumerate() {
        if !cfg.is_reachable(BlockId::new(b)) {
            continue;
        }
        block_start[b] = 2 * k;
        let n = (block.insts.len() + usize::from(block.term.is_some())).max(1) as u32;
        k += n;
        block_end[b] = 2 * k - 1;
    }

    // Interval hulls, use counts and call points.
    let mut start = vec![u32::MAX; nregs];
    let mut end = vec![0u32; nregs];
    let mut weight = vec![0f64; nregs];
    let touch = |r: usize, p: u32, start: &mut [u32], end: &mut [u32]| {
        start[r] = start[r].min(p);
        end[r] = end[r].max(p);
    };
    for &p in &func.params {
        touch(p.index(), 0, &mut start, &mut end);
    }
    let liveness = Liveness::new(func, &cfg);
    let last_def_live_out = liveness.extend_intervals(
        &cfg,
        |b: BlockId| block_start[b.index()],
        |b: BlockId| block_end[b.index()],
        |r, p| touch(r.index(), p, &mut start, &mut end),
    );
    let mut call_points = Vec::new();
    let mut outgoing = 0u32;
    for (b, block) in func.blocks.iter().enumerate() {
        if !cfg.is_reachable(BlockId::new(b)) {
            continue;
        }
        let scale = 10f64.powi(cfg.loop_depth[b].min(6) as i32);
        let mut p = block_start[b];
        for inst in &block.insts {
            inst.kind.for_each_operand(|o| {
                if let Some(r) = o.reg() {
                    touch(r.index(), p, &mut start, &mut end);
                    weight[r.index()] += scale;
                }
            });
            if let Some(r) = inst.kind.def() {
                touch(r.index(), p + 1, &mut start, &mut end);
                weight[r.index()] += scale;
            }
            if matches!(inst.kind, InstKind::Call { .. }) {
                call_points.push(p);
            }
            outgoing = outgoing.max(outgoing_words(&inst.kind, regs.register_params));
            p += 2;
        }
        if let Some(t) = &block.term {
            let mut n = 0;
            t.kind.for_each_operand(|o| {
                n += 1;
                if let Some(r) = o.reg() {
                    touch(r.index(), p, &mut start, &mut end);
                    weight[r.index()] += scale;
                }
            });
            if t.kind.is_runtime_op() {
                outgoing = outgoing.max(n);
            }
            if let TermKind::Select { arms } = &t.kind {
                for arm in arms {
                    if let crate::ir::ArmKind::Recv { into: Some(v), .. } = arm.kind {
                        touch(v.index(), p + 1, &mut start, &mut end);
                        weight[v.index()] += scale;
                    }
                }
            }
        }
    }

    let mut intervals: Vec<Interval> = (0..nregs)
        .filter(|&r| start[r] != u32::MAX)
        .map(|r| {
            let (s, e) = (start[r], end[r]);
            // A call at point p reads at p and writes at p + 1: a value
            // crosses it when live both before p and after p + 1. The
            // points are in order: only the first call after `s` can be
            // one.
            let next_call = call_points.partition_point(|&p| p <= s);
            let crosses_call = call_points.get(next_call).is_some_and(|&p| e > p + 1);
            Interval {
                reg: Reg::new(r),
                start: s,
                end: e,
                crosses_call,
                weight: weight[r] / f64::from(e - s + 1),
            }
        })
        .collect();
    intervals.sort_by_key(|i| (i.start, i.reg));

    let mut locations = vec![Location::Unused; nregs];
    let mut param_index: Vec<Option<u32>> = vec![None; nregs];
    for (i, &p) in func.params.iter().enumerate().rev() {
        if i as u32 >= regs.register_params {
            param_index[p.index()] = Some(i as u32);
        }
    }
    let mut spill_slots = 0u32;
    let mut spill = |r: Reg, locations: &mut [Location]| {
        locations[r.index()] = match param_index[r.index()] {
            Some(i) => Location::Param(i),
            None => {
                spill_slots += 1;
                Location::Spill(spill_slots - 1)
            }
        };
    };
    let mut free = regs.caller_saved.union(regs.callee_saved);
    let mut active: Vec<(Interval, u8)> = Vec::new();
    // The earliest end among the active intervals: none expires before
    // an interval starting no later.
    let mut first_end = u32::MAX;
    let mut used_callee_saved = RegSet::EMPTY;
    for iv in intervals {
        // Expire intervals that ended before this one starts.
        if first_end < iv.start {
            first_end = u32::MAX;
            active.retain(|(a, r)| {
                if a.end < iv.start {
                    free = free.with(*r);
                    false
                } else {
                    first_end = first_end.min(a.end);
                    true
                }
            });
        }
        let allowed = |r: u8| !iv.crosses_call || regs.callee_saved.contains(r);
        // Prefer caller-saved registers for values that do not cross calls,
        // so callee-saved ones stay available (and unsaved) where possible;
        // the lowest-numbered of those.
        let caller = free.minus(regs.callee_saved);
        let pick = match caller.first() {
            Some(r) if !iv.crosses_call => Some(r),
            _ => free.intersection(regs.callee_saved).first(),
        };
        let reg = match pick {
            Some(r) => {
                free = free.without(r);
                Some(r)
            }
            None => {
                // Spill the lightest of the current interval and the active
                // ones whose register it could take.
                let victim = active
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, r))| allowed(*r))
                    .min_by(|a, b| a.1 .0.weight.total_cmp(&b.1 .0.weight))
                    .map(|(i, _)| i);
                match victim {
                    Some(i) if active[i].0.weight < iv.weight => {
                        let (v, r) = active.swap_remove(i);
                        spill(v.reg, &mut locations);
                        // The end of the interval taken out may have been
                        // the earliest: an estimate too early only costs a
                        // scan that expires nothing.
                        Some(r)
                    }
                    _ => None,
                }
            }
        };
        match reg {
            Some(r) => {
                locations[iv.reg.index()] = Location::Reg(r);
                if regs.callee_saved.contains(r) {
                    used_callee_saved = used_callee_saved.with(r);
                }
                first_end = first_end.min(iv.end);
                active.push((iv, r));
            }
            None => spill(iv.reg, &mut locations),
        }
    }
    Allocation {
        locations,
        spill_slots,
        used_callee_saved: used_callee_saved.iter().collect(),
        outgoing_words: outgoing,
        last_def_live_out,
        cfg,
    }
}

/// "None" in the `u32` tables of [`Liveness`].
const NONE: u32 = u32::MAX;

/// Liveness, one register at a time.
///
/// A register is live at the start of a block that reads it before any
/// definition there (an *exposed use*), and at the start of a block that
/// does not define it when it is live at the end; it is live at the end of
/// a reachable block when it is live at the start of a successor. This is
/// the backward dataflow, solved for each register alone by walking
/// backwards from its exposed uses, which visits only the blocks it is live
/// in. One fact keeps the walk short in deep loop nests:
///
/// - A loop with no definition of `r`, with `r` live at the start of one of
///   its blocks, has `r` live at the start and the end of every one of its
///   blocks: each of them reaches that block inside the loop, round the
///   back-edge, without a definition. So the walk, arriving in such a loop
///   (the outermost one around the block), takes the whole loop at once and
///   goes on from the header's predecessors outside it, the only edges into
///   a natural loop.
struct Liveness {
    /// The reachable blocks with an exposed use of register `r`:
    /// `exposed[exposed_at[r]..exposed_at[r + 1]]`.
    exposed: Vec<BlockId>,
    exposed_at: Vec<u32>,
    /// The reachable blocks that define `r`, likewise.
    defs: Vec<BlockId>,
    defs_at: Vec<u32>,
    /// The register each block's last instruction defines, or `NONE`.
    last_def: Vec<u32>,
}

/// The exposed uses and definitions of registers, block by block.
struct BlockScan {
    block: BlockId,
    /// The block each register was last defined in, and last found exposed
    /// in.
    defined_in: Vec<u32>,
    exposed_in: Vec<u32>,
    exposed: Vec<(u32, BlockId)>,
    defs: Vec<(u32, BlockId)>,
}

impl BlockScan {
    fn read(&mut self, r: Reg) {
        let (i, b) = (r.index(), self.block.0);
        if self.defined_in[i] != b && self.exposed_in[i] != b {
            self.exposed_in[i] = b;
            self.exposed.push((r.0, self.block));
        }
    }

    fn define(&mut self, r: Reg) {
        let (i, b) = (r.index(), self.block.0);
        if self.defined_in[i] != b {
            self.defined_in[i] = b;
            self.defs.push((r.0, self.block));
        }
    }
}

impl Liveness {
    fn new(func: &Function, cfg: &Cfg) -> Liveness {
        let nregs = func.regs.len();
        let mut scan = BlockScan {
            block: BlockId::new(0),
            defined_in: vec![NONE; nregs],
            exposed_in: vec![NONE; nregs],
            exposed: Vec::new(),
            defs: Vec::new(),
        };
        let mut last_def = vec![NONE; func.blocks.len()];
        for (b, block) in func.blocks.iter().enumerate() {
            scan.block = BlockId::new(b);
            if !cfg.is_reachable(scan.block) {
                continue;
            }
            for inst in &block.insts {
                inst.kind.for_each_operand(|o| {
                    if let Some(r) = o.reg() {
                        scan.read(r)
                    }
                });
                if let Some(r) = inst.kind.def() {
                    scan.define(r);
                }
            }
            if let Some(r) = block.insts.last().and_then(|i| i.kind.def()) {
                last_def[b] = r.0;
            }
            if let Some(t) = &block.term {
                t.kind.for_each_operand(|o| {
                    if let Some(r) = o.reg() {
                        scan.read(r)
                    }
                });
                if let TermKind::Select { arms } = &t.kind {
                    for arm in arms {
                        if let crate::ir::ArmKind::Recv { into: Some(v), .. } = arm.kind {
                            scan.define(v);
                        }
                    }
                }
            }
        }
        let (exposed, exposed_at) = group_by_register(nregs, &scan.exposed);
        let (defs, defs_at) = group_by_register(nregs, &scan.defs);
        Liveness {
            exposed,
            exposed_at,
            defs,
            defs_at,
            last_def,
        }
    }

    /// Calls `touch(r, point)` with `start(b)` for every block `b` that
    /// register `r` is live at the start of, and with `end(b)` for every
    /// block it is live at the end of (or at least with the first and the
    /// last of a loop's blocks when it is live throughout the loop, which
    /// is all that an interval hull needs). Returns whether each block's
    /// last definition is live at its end.
    fn extend_intervals(
        &self,
        cfg: &Cfg,
        start: impl Fn(BlockId) -> u32,
        end: impl Fn(BlockId) -> u32,
        mut touch: impl FnMut(Reg, u32),
    ) -> Vec<bool> {
        let nblocks = self.last_def.len();
        let mut last_def_live_out = vec![false; nblocks];
        // The first and last block of each loop, inner loops first.
        let mut extent: Vec<(BlockId, BlockId)> =
            vec![(BlockId(NONE), BlockId(0)); cfg.loops.len()];
        for b in (0..nblocks).map(BlockId::new) {
            if let Some(l) = cfg.innermost_loop(b) {
                extent[l] = (extent[l].0.min(b), extent[l].1.max(b));
            }
        }
        for (l, lp) in cfg.loops.iter().enumerate() {
            if let Some(p) = lp.parent {
                extent[p] = (extent[p].0.min(extent[l].0), extent[p].1.max(extent[l].1));
            }
        }

        // Per-register marks, valid while they hold that register's
        // number: the blocks it is known live at the start of, the loops
        // it is live throughout, the blocks that define it.
        let mut live_in = vec![NONE; nblocks];
        let mut whole_loop = vec![NONE; cfg.loops.len()];
        let mut defines = vec![NONE; nblocks];
        // Where the blocks that define it stand in the nest order, sorted.
        let mut def_positions: Vec<u32> = Vec::new();
        let mut work: Vec<BlockId> = Vec::new();
        for r in 0..self.exposed_at.len() - 1 {
            let exposed =
                &self.exposed[self.exposed_at[r] as usize..self.exposed_at[r + 1] as usize];
            if exposed.is_empty() {
                continue;
            }
            let (reg, mark) = (Reg::new(r), r as u32);
            def_positions.clear();
            for &d in &self.defs[self.defs_at[r] as usize..self.defs_at[r + 1] as usize] {
                defines[d.index()] = mark;
                def_positions.extend(cfg.nest_position(d));
            }
            def_positions.sort_unstable();
            let defines_in = |l: usize| {
                let range = cfg.loops[l].nest_range();
                let i = def_positions.partition_point(|&p| p < range.start);
                def_positions.get(i).is_some_and(|&p| p < range.end)
            };
            // Every block on the work list has `r` live at its start.
            work.extend_from_slice(exposed);
            'walk: while let Some(b) = work.pop() {
                if live_in[b.index()] == mark {
                    continue;
                }
                // The outermost loop around `b` that does not define `r`.
                let mut outermost = None;
                let mut l = cfg.innermost_loop(b);
                while let Some(i) = l {
                    if whole_loop[i] == mark {
                        continue 'walk;
                    }
                    if defines_in(i) {
                        break;
                    }
                    outermost = Some(i);
                    l = cfg.loops[i].parent;
                }
                // The block, or the loop taken whole, and the edges into
                // it: `r` is live at the end of their sources.
                let (entry, taken) = match outermost {
                    None => {
                        live_in[b.index()] = mark;
                        touch(reg, start(b));
                        (b, None)
                    }
                    Some(i) => {
                        whole_loop[i] = mark;
                        touch(reg, start(extent[i].0));
                        touch(reg, end(extent[i].1));
                        (cfg.loops[i].header, Some(&cfg.loops[i]))
                    }
                };
                for &p in &cfg.preds[entry.index()] {
                    if !cfg.is_reachable(p) || taken.is_some_and(|lp| lp.contains(p)) {
                        continue;
                    }
                    touch(reg, end(p));
                    if self.last_def[p.index()] == mark {
                        last_def_live_out[p.index()] = true;
                    }
                    if defines[p.index()] != mark {
                        work.push(p);
                    }
                }
            }
        }
        last_def_live_out
    }
}

/// `(register, block)` pairs grouped by register, keeping their order:
/// the blocks, and where each register's run of them starts (with one
/// more entry, the end).
fn group_by_register(nregs: usize, pairs: &[(u32, BlockId)]) -> (Vec<BlockId>, Vec<u32>) {
    let mut at = vec![0u32; nregs + 1];
    for &(r, _) in pairs {
        at[r as usize + 1] += 1;
    }
    for r in 0..nregs {
        at[r + 1] += at[r];
    }
    let mut next = at.clone();
    let mut blocks = vec![BlockId(0); pairs.len()];
    for &(r, b) in pairs {
        blocks[next[r as usize] as usize] = b;
        next[r as usize] += 1;
    }
    (blocks, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse;
    use proptest::prelude::*;
    use std::fmt::Write;

    const FILE: RegisterFile = RegisterFile {
        caller_saved: RegSet::of(&[1, 2]),
        callee_saved: RegSet::of(&[10]),
        register_params: 0,
    };

    fn alloc(src: &str) -> (Function, Allocation) {
        let p = parse(src).unwrap();
        let f = p.funcs[0].clone();
        let a = allocate(&f, &FILE);
        (f, a)
    }

    fn loc(f: &Function, a: &Allocation, name: &str) -> Location {
        let r = f.regs.iter().position(|r| r.name == name).unwrap();
        a.locations[r]
    }

    #[test]
    fn loop_values_get_registers() {
        let (f, a) = alloc(
            "func @main() {\n %i = const 0\n %s = const 0\nloop:\n %s = add %s, %i\n %i = add %i, 1\n %c = lt %i, 100\n br %c, loop, out\nout:\n ret\n}\n",
        );
        for r in ["i", "s", "c"] {
            assert!(matches!(loc(&f, &a, r), Location::Reg(_)), "{r}");
        }
        assert_ne!(loc(&f, &a, "i"), loc(&f, &a, "s"));
        assert_eq!(a.spill_slots, 0);
    }

    #[test]
    fn values_across_calls_take_callee_saved_or_spill() {
        let (f, a) = alloc(
            "func @main() {\n %a = const 1\n %b = const 2\n call @g()\n %c = add %a, %b\n ret\n}\nfunc @g() {\n ret\n}\n",
        );
        let (la, lb) = (loc(&f, &a, "a"), loc(&f, &a, "b"));
        let locs = [la, lb];
        assert!(locs.contains(&Location::Reg(10)), "{locs:?}");
        assert!(
            locs.iter().any(|l| matches!(l, Location::Spill(_))),
            "{locs:?}"
        );
        assert_eq!(a.used_callee_saved, vec![10]);
    }

    #[test]
    fn pressure_spills_the_lightest() {
        // Four values live at once, three registers: the one used once, far
        // from any loop, is spilled; the loop counter keeps a register.
        let (f, a) = alloc(
            "func @main() {\n %cold = const 7\n %x = const 1\n %y = const 2\n %i = const 0\nloop:\n %x = add %x, %y\n %i = add %i, 1\n %c = lt %i, 10\n br %c, loop, out\nout:\n %z = add %cold, %x\n ret\n}\n",
        );
        assert!(matches!(loc(&f, &a, "cold"), Location::Spill(_)));
        assert!(matches!(loc(&f, &a, "i"), Location::Reg(_)));
    }

    #[test]
    fn spilled_params_stay_in_their_incoming_slot() {
        let (f, a) = alloc(
            "func @f(%p: i64, %q: i64, %r: i64, %s: i64) -> i64 {\n %t = add %p, %q\n %t = add %t, %r\n %t = add %t, %s\n ret %t\n}\n",
        );
        let spilled: Vec<_> = ["p", "q", "r", "s"]
            .iter()
            .map(|n| loc(&f, &a, n))
            .filter(|l| matches!(l, Location::Param(_)))
            .collect();
        assert!(!spilled.is_empty());
    }

    #[test]
    fn parameters_passed_in_registers_spill_to_a_slot_of_their_own() {
        let p = parse(
            "func @f(%p: i64, %q: i64, %r: i64, %s: i64) -> i64 {\n %t = add %p, %q\n %t = add %t, %r\n %t = add %t, %s\n ret %t\n}\n",
        )
        .unwrap();
        let f = p.funcs[0].clone();
        let a = allocate(&f, &FILE.with_register_params(2));
        let mut spilled = 0;
        for (i, n) in ["p", "q", "r", "s"].iter().enumerate() {
            match loc(&f, &a, n) {
                Location::Param(k) => assert!(k as usize == i && i >= 2, "{n}: Param({k})"),
                Location::Spill(_) => assert!(i < 2, "{n} has a stack slot"),
                _ => continue,
            }
            spilled += 1;
        }
        assert!(spilled > 0, "four live at once in three registers");
    }

    #[test]
    fn outgoing_words_are_those_of_stack_arguments_and_runtime_operands() {
        let src = "func @g(%a: i64, %b: i64) -> i64 {\n %c = add %a, %b\n %x = call @g(%c, %a)\n ret %x\n}\n";
        let p = parse(src).unwrap();
        let f = p.funcs[0].clone();
        assert_eq!(allocate(&f, &FILE).outgoing_words, 2, "both on the stack");
        let regs = FILE.with_register_params(2);
        assert_eq!(allocate(&f, &regs).outgoing_words, 0, "both in registers");
        let regs = FILE.with_register_params(1);
        assert_eq!(
            allocate(&f, &regs).outgoing_words,
            2,
            "argument 1 at word 1, word 0 unused"
        );
        let src = "func @h(%o: ref, %i: i64) -> i64 {\n %v = get %o, %i\n print \"{} {} {}\", %v, %v, %i\n ret %v\n}\n";
        let p = parse(src).unwrap();
        let a = allocate(&p.funcs[0], &FILE.with_register_params(2));
        assert_eq!(a.outgoing_words, 3, "the print's three operands");
    }

    /// A block of [`function`]: `(insts, end, a, b)`.
    type RandomBlock = (Vec<(u8, u8, u8)>, u8, usize, usize);

    /// A function of `n` blocks over registers `%r0`..`%r3`, defined and
    /// read anywhere (liveness does not need a verified program). In block
    /// `(insts, end, a, b)` each instruction `(d, x, y)` is `%rd = add %rx,
    /// %ry`, and the block ends in a jump, a branch on the last value it
    /// defined (a fusable compare), a fall-through or a `ret`.
    fn function(blocks: &[RandomBlock]) -> Function {
        let n = blocks.len();
        let mut src = String::from("func @main() {\n");
        for (i, (insts, end, a, b)) in blocks.iter().enumerate() {
            writeln!(src, "b{i}:").unwrap();
            for &(d, x, y) in insts {
                writeln!(src, "    %r{} = add %r{}, %r{}", d % 4, x % 4, y % 4).unwrap();
            }
            let (a, b) = (a % n, b % n);
            match end % 5 {
                0 => writeln!(src, "    jmp b{a}").unwrap(),
                1 if i + 1 < n => {}
                2 => writeln!(src, "    ret").unwrap(),
                3 if !insts.is_empty() => {
                    let d = insts[insts.len() - 1].0 % 4;
                    writeln!(src, "    br %r{d}, b{a}, b{b}").unwrap()
                }
                _ => writeln!(src, "    br %r{}, b{a}, b{b}", a % 4).unwrap(),
            }
        }
        src.push_str("}\n");
        parse(&src).unwrap().funcs.remove(0)
    }

    /// Liveness by its definition, the backward dataflow over dense sets:
    /// the registers live at the start and at the end of each block.
    fn dataflow(func: &Function, cfg: &Cfg) -> (Vec<Vec<bool>>, Vec<Vec<bool>>) {
        let (n, nregs) = (func.blocks.len(), func.regs.len());
        let mut uses = vec![vec![false; nregs]; n];
        let mut defs = vec![vec![false; nregs]; n];
        for (b, block) in func.blocks.iter().enumerate() {
            for inst in &block.insts {
                inst.kind.for_each_operand(|o| {
                    if let Some(r) = o.reg() {
                        uses[b][r.index()] |= !defs[b][r.index()];
                    }
                });
                if let Some(r) = inst.kind.def() {
                    defs[b][r.index()] = true;
                }
            }
            if let Some(t) = &block.term {
                t.kind.for_each_operand(|o| {
                    if let Some(r) = o.reg() {
                        uses[b][r.index()] |= !defs[b][r.index()];
                    }
                });
            }
        }
        let mut live_in = vec![vec![false; nregs]; n];
        let mut live_out = vec![vec![false; nregs]; n];
        let mut changed = true;
        while changed {
            changed = false;
            for &b in cfg.rpo.iter().rev() {
                let b = b.index();
                for r in 0..nregs {
                    let out = cfg.succs[b].iter().any(|s| live_in[s.index()][r]);
                    let inn = uses[b][r] || (out && !defs[b][r]);
                    changed |= out != live_out[b][r] || inn != live_in[b][r];
                    live_out[b][r] = out;
                    live_in[b][r] = inn;
                }
            }
        }
        (live_in, live_out)
    }

    proptest! {
        #[test]
        fn liveness_gives_the_hulls_of_the_dataflow(
            blocks in prop::collection::vec(
                (prop::collection::vec((0u8..4, 0u8..4, 0u8..4), 0..3), 0u8..5, 0usize..64, 0usize..64),
                1..16,
            )
        ) {
            let func = function(&blocks);
            let cfg = Cfg::new(&func);
            let (live_in, live_out) = dataflow(&func, &cfg);
            // Blocks `b` span points `[4b, 4b + 3]`.
            let (start, end) = (|b: BlockId| 4 * b.0, |b: BlockId| 4 * b.0 + 3);
            let nregs = func.regs.len();
            let mut want = vec![(u32::MAX, 0); nregs];
            for b in cfg.rpo.iter().copied() {
                for r in 0..nregs {
                    for (live, p) in [(live_in[b.index()][r], start(b)), (live_out[b.index()][r], end(b))] {
                        if live {
                            want[r] = (want[r].0.min(p), want[r].1.max(p));
                        }
                    }
                }
            }
            let mut got = vec![(u32::MAX, 0); nregs];
            let last_def_live_out = Liveness::new(&func, &cfg).extend_intervals(
                &cfg,
                start,
                end,
                |r, p| got[r.index()] = (got[r.index()].0.min(p), got[r.index()].1.max(p)),
            );
            prop_assert_eq!(got, want);
            for (b, block) in func.blocks.iter().enumerate() {
                let last = block.insts.last().and_then(|i| i.kind.def());
                let want = last.is_some_and(|r| live_out[b][r.index()]);
                prop_assert_eq!(last_def_live_out[b], want, "block {}", b);
            }
        }
    }
}
