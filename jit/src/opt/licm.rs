//! Loop-invariant code motion of plain global loads: the register-hoisted
//! load, built on purpose.
//!
//! # Why this pass exists
//!
//! Seed Bug 1 is a goroutine spinning on `for !done {}` while another one
//! sets `done`. A compiler may read `done` once, before the loop, and keep
//! it in a register: the data race makes that legal, and the loop then
//! spins forever on a stale value. PIR says the same thing in its contract
//! (IR.md, "Globals"): a plain `load @g` may be kept in a register, and at
//! `opt = 1` it *always* is when the loop cannot change `@g` itself. This
//! pass is that promise. It is deliberately not clever: it does what a
//! real compiler would be entitled to do, predictably, so that programs can
//! be written to hang and the hang can be explained.
//!
//! # When a load is hoisted
//!
//! `%v = load @g` in the body of a natural loop `L` (see
//! [`Cfg`]) is hoisted if and only if:
//!
//! 1. The load is plain. `load.atomic` never moves.
//! 2. `L` contains no `call`: the callee could store to `@g` (or block).
//! 3. `L` contains no atomic instruction of any kind, on any global: PIR's
//!    atomics are sequentially consistent and order the plain accesses
//!    around them, so a load after one must really be performed after it.
//! 4. `L` contains no runtime operation: no instruction whose opcode has
//!    the `RUNTIME` flag and no terminator for which
//!    [`TermKind::is_runtime_op`] holds. The goroutine may be switched out
//!    there, and the code that runs meanwhile may store to `@g`. A `select`
//!    whose only arm is `default` is a plain jump and does not count
//!    (seed Bug 16).
//! 5. `L` contains no plain `store @g` (an atomic store is already
//!    excluded by 3). Stores to *other* globals, and heap accesses
//!    (`get`/`set`/...), do not prevent it: globals and heap slots never
//!    alias.
//!
//! Conditions 2-4 concern the whole loop and are reported by
//! [`loop_barrier`]; condition 5 is per global.
//!
//! `goexit` and `panic` are runtime terminators too, but a block ending in
//! one has no successor, so it can never be part of a natural loop; on an
//! exit path of a loop they do not prevent hoisting (they end the loop).
//!
//! # How
//!
//! Registers are mutable locals, not SSA, so the load is not simply moved:
//!
//! - A pre-header is found or made: a block outside the loop whose only
//!   successor is the header and which is the header's only predecessor
//!   other than the back-edges. An existing block is reused when it already
//!   has that shape and ends without entering the runtime (a hoisted load
//!   must not move in front of a preemption point). Otherwise a new block
//!   `<header>.preheader` (with `.1`, `.2`, ... if the name is taken) is
//!   inserted right before the header, ending in an explicit `jmp` to it;
//!   every edge into the header that is not a back-edge is retargeted to it,
//!   and a latch that fell through into the header gets an explicit `jmp`,
//!   since the pre-header now stands between them. When the header is the
//!   function's entry block, the pre-header becomes block 0: the entry
//!   block must stay first, and the pre-header is where the function now
//!   starts.
//! - One fresh register per (loop, global), named `%<global>.licm` (with a
//!   suffix if taken), typed like the global, is loaded at the end of the
//!   pre-header: `%done.licm = load @done`, marked
//!   `hoisted = Hoisted(Some(header))` and carrying the span of the first
//!   load it replaces.
//! - Each load in the loop becomes `%v = copy %done.licm`, keeping its span
//!   and its own mark. `%v` keeps its definition point, so every other use
//!   of `%v`, inside or after the loop, is untouched.
//!
//! Loops are processed innermost first. A load hoisted into an inner
//! pre-header that lies inside an outer loop is an ordinary plain load of
//! that outer loop: if the outer loop qualifies too it is hoisted again, to
//! the outer pre-header, and the copy left in the inner pre-header keeps the
//! inner mark. The load that is finally executed is marked with the header
//! of the outermost loop it left, whose body contains every loop it left.
//!
//! After the pass, registers are renumbered into the order of their first
//! appearance in the text, which is the order the parser gives them, so the
//! optimised program re-parses to an equal one.

use std::collections::HashSet;

use crate::ir::cfg::{Cfg, Loop};
use crate::ir::{
    ArmKind, Block, BlockId, Function, Global, GlobalId, Hoisted, Inst, InstKind, Opcode, Operand,
    Program, Reg, Span, TermKind, Terminator,
};

/// What the pass did, for tests and for `preempt` to report.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct LicmStats {
    /// Loops out of which at least one load was hoisted.
    pub loops: usize,
    /// Hoisted registers created: one per (loop, global).
    pub hoisted: usize,
    /// Loads inside loops that became copies of a hoisted register.
    pub loads_replaced: usize,
    /// Pre-header blocks that had to be created.
    pub preheaders_created: usize,
}

impl std::ops::AddAssign for LicmStats {
    fn add_assign(&mut self, o: LicmStats) {
        self.loops += o.loops;
        self.hoisted += o.hoisted;
        self.loads_replaced += o.loads_replaced;
        self.preheaders_created += o.preheaders_created;
    }
}

/// Why a loop keeps all of its loads (conditions 2-4 of the module
/// documentation).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Barrier {
    /// A `call` of a PIR function.
    Call,
    /// An atomic instruction (`load.atomic`, `store.atomic`, `add.atomic`,
    /// `cas.atomic`).
    Atomic(Opcode),
    /// An instruction or terminator that enters the runtime.
    Runtime(Opcode),
}

/// A load that LICM moved out of a loop, as found by [`hoisted_loads`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HoistedLoad {
    /// The pre-header holding the load.
    pub block: BlockId,
    /// Its position in `block`'s instructions.
    pub index: usize,
    pub global: GlobalId,
    /// The register the load writes (`%<global>.licm...`).
    pub dst: Reg,
    /// The header of the outermost loop the load left; that loop's body
    /// contains every loop it left.
    pub header: BlockId,
}

/// Runs LICM on every function of `prog`.
pub fn run(prog: &mut Program) -> LicmStats {
    let Program { globals, funcs, .. } = prog;
    let mut stats = LicmStats::default();
    for func in funcs.iter_mut() {
        stats += run_function(globals, func);
    }
    stats
}

/// Runs LICM on one function; `globals` are the program's, for their
/// types.
pub fn run_function(globals: &[Global], func: &mut Function) -> LicmStats {
    let mut stats = LicmStats::default();
    // Headers already processed, indexed by block and kept in step with
    // block insertions. Loops are found afresh after a block is inserted,
    // since that renumbers the blocks after it (rewriting instructions
    // changes no edge); a pre-header never creates or removes a loop, so
    // this ends after one round per header.
    let mut done = vec![false; func.blocks.len()];
    let mut cfg = func.cfg();
    let mut bodies = LoopBodies::new(func, &cfg);
    // Every loop of `cfg.loops` before `next` is done.
    let mut next = 0;
    // Only blocks of the input can be headers, so this many rounds always
    // suffice; the bound keeps a future mistake from hanging the compiler.
    for _ in 0..func.blocks.len() {
        let Some(k) = (next..cfg.loops.len()).find(|&k| !done[cfg.loops[k].header.index()]) else {
            break;
        };
        next = k + 1;
        let lp = &cfg.loops[k];
        done[lp.header.index()] = true;
        // A hoist that makes no block keeps these facts true for the loops
        // not yet done: it adds no barrier, and the loads it moves out land
        // in a pre-header that only the loops around this one contain,
        // which contained those loads already.
        if bodies.barrier[k] || !bodies.plain_load[k] {
            continue;
        }
        let lp = lp.clone();
        if let Some(inserted) = hoist_loop(globals, func, &cfg, &lp, &mut stats) {
            done.insert(inserted, false);
            cfg = func.cfg();
            bodies = LoopBodies::new(func, &cfg);
            next = 0;
        }
    }
    if stats.hoisted > 0 {
        renumber_registers_in_text_order(func);
    }
    stats
}

/// What each loop of a [`Cfg`] holds, gathered block by block and passed
/// from each loop to the one around it, so that finding the loops with
/// nothing to hoist costs one look at each block however deep they nest.
struct LoopBodies {
    /// The loop has a barrier (conditions 2-4).
    barrier: Vec<bool>,
    /// The loop has a plain load.
    plain_load: Vec<bool>,
}

impl LoopBodies {
    fn new(func: &Function, cfg: &Cfg) -> LoopBodies {
        let n = cfg.loops.len();
        let mut bodies = LoopBodies {
            barrier: vec![false; n],
            plain_load: vec![false; n],
        };
        for (b, block) in func.blocks.iter().enumerate() {
            let Some(l) = cfg.innermost_loop(BlockId::new(b)) else {
                continue;
            };
            bodies.barrier[l] |= block_barrier(block).is_some();
            bodies.plain_load[l] |= block.insts.iter().any(|i| {
                matches!(
                    i.kind,
                    InstKind::Load {
                        op: Opcode::Load,
                        ..
                    }
                )
            });
        }
        // Inner loops come first in `cfg.loops`.
        for (l, lp) in cfg.loops.iter().enumerate() {
            if let Some(p) = lp.parent {
                bodies.barrier[p] |= bodies.barrier[l];
                bodies.plain_load[p] |= bodies.plain_load[l];
            }
        }
        bodies
    }
}

/// The first instruction or terminator of `lp` that keeps every load in it
/// (conditions 2-4), in block order, with its block; `None` if plain loads
/// may leave it.
pub fn loop_barrier(func: &Function, lp: &Loop) -> Option<(BlockId, Barrier)> {
    lp.blocks
        .iter()
        .filter_map(|&b| Some((b, block_barrier(func.blocks.get(b.index())?)?)))
        .min_by_key(|&(b, _)| b)
}

/// The first instruction or terminator of `block` that keeps every load
/// in a loop around it.
fn block_barrier(block: &Block) -> Option<Barrier> {
    for inst in &block.insts {
        let op = inst.kind.opcode();
        if op.is_call() {
            return Some(Barrier::Call);
        }
        if op.is_atomic() {
            return Some(Barrier::Atomic(op));
        }
        if op.is_runtime_op() {
            return Some(Barrier::Runtime(op));
        }
    }
    block
        .term
        .as_ref()
        .filter(|t| t.kind.is_runtime_op())
        .map(|t| Barrier::Runtime(t.kind.opcode()))
}

/// Every load LICM moved out of a loop in `func`, in block order.
///
/// Only real loads are listed: the copy left in an inner pre-header when a
/// load was hoisted again keeps its [`Hoisted`] mark (so the chain of loops
/// a value left can be followed) but reads no memory.
pub fn hoisted_loads(func: &Function) -> impl Iterator<Item = HoistedLoad> + '_ {
    func.blocks.iter().enumerate().flat_map(|(b, block)| {
        block
            .insts
            .iter()
            .enumerate()
            .filter_map(move |(index, inst)| match (&inst.kind, inst.hoisted) {
                (
                    InstKind::Load {
                        op: Opcode::Load,
                        dst,
                        global,
                    },
                    Hoisted(Some(header)),
                ) => Some(HoistedLoad {
                    block: BlockId::new(b),
                    index,
                    global: *global,
                    dst: *dst,
                    header,
                }),
                _ => None,
            })
    })
}

/// The hoisted loads whose loop contains `block`: the globals a goroutine
/// spinning in `block` reads from registers instead of memory. `cfg` must
/// be the optimised function's.
pub fn loads_hoisted_out_of(func: &Function, cfg: &Cfg, block: BlockId) -> Vec<HoistedLoad> {
    hoisted_loads(func)
        .filter(|h| {
            cfg.loop_with_header(h.header)
                .is_some_and(|l| l.contains(block))
        })
        .collect()
}

/// Hoists what may leave `lp`, which has no barrier (conditions 2-4).
/// Returns the index of the block it inserted, if it made a pre-header.
fn hoist_loop(
    globals: &[Global],
    func: &mut Function,
    cfg: &Cfg,
    lp: &Loop,
    stats: &mut LicmStats,
) -> Option<usize> {
    // Condition 5, and the candidates in order of first appearance in the
    // text (which is the order their loads are emitted in the pre-header).
    let mut blocks = lp.blocks.to_vec();
    blocks.sort_unstable();
    let mut stored: HashSet<GlobalId> = HashSet::new();
    let mut loaded: Vec<(GlobalId, Span)> = Vec::new();
    for &b in &blocks {
        for inst in &func.blocks[b.index()].insts {
            match inst.kind {
                InstKind::Load {
                    op: Opcode::Load,
                    global,
                    ..
                } if !loaded.iter().any(|&(g, _)| g == global) => loaded.push((global, inst.span)),
                InstKind::Store { global, .. } => {
                    stored.insert(global);
                }
                _ => {}
            }
        }
    }
    loaded.retain(|(g, _)| !stored.contains(g));
    // A global the program does not declare cannot come out of the parser;
    // leave such a load alone rather than invent a type for it.
    loaded.retain(|(g, _)| g.index() < globals.len());
    if loaded.is_empty() {
        return None;
    }

    let mut taken: HashSet<String> = func.regs.iter().map(|r| r.name.to_string()).collect();
    let hoisted: Vec<(GlobalId, Span, Reg)> = loaded
        .into_iter()
        .map(|(g, span)| {
            let global = &globals[g.index()];
            let name = fresh_name(&format!("{}.licm", global.name), &taken);
            taken.insert(name.clone());
            (g, span, func.add_reg(name, Some(global.ty)))
        })
        .collect();

    for &b in &blocks {
        for inst in &mut func.blocks[b.index()].insts {
            let InstKind::Load {
                op: Opcode::Load,
                dst,
                global,
            } = inst.kind
            else {
                continue;
            };
            if let Some(&(_, _, reg)) = hoisted.iter().find(|h| h.0 == global) {
                // The span and the mark stay: the copy stands where the
                // source wrote the load.
                inst.kind = InstKind::Unary {
                    op: Opcode::Copy,
                    dst,
                    arg: Operand::Reg(reg),
                };
                stats.loads_replaced += 1;
            }
        }
    }

    let (pre, inserted) = preheader(func, cfg, lp);
    let header = match inserted {
        Some(at) if lp.header.index() >= at => BlockId::new(lp.header.index() + 1),
        _ => lp.header,
    };
    if inserted.is_some() {
        stats.preheaders_created += 1;
    }
    let pre = &mut func.blocks[pre.index()];
    for &(global, span, dst) in &hoisted {
        let mut load = Inst::new(
            InstKind::Load {
                op: Opcode::Load,
                dst,
                global,
            },
            span,
        );
        load.hoisted = Hoisted(Some(header));
        pre.insts.push(load);
    }
    stats.loops += 1;
    stats.hoisted += hoisted.len();
    inserted
}

/// Finds or makes the pre-header of `lp`. Returns it (numbered after any
/// insertion) and the index of the inserted block, if one was inserted.
fn preheader(func: &mut Function, cfg: &Cfg, lp: &Loop) -> (BlockId, Option<usize>) {
    let h = lp.header;
    let entries: Vec<BlockId> = cfg.preds[h.index()]
        .iter()
        .copied()
        .filter(|p| !lp.latches.contains(p))
        .collect();

    // Reuse a block that already has the shape. Block 0 is also entered by
    // the call of the function itself, so it never has one.
    if h.index() != 0 {
        if let [p] = entries[..] {
            let block = &func.blocks[p.index()];
            if p != h
                && cfg.is_reachable(p)
                && cfg.succs[p.index()].iter().all(|&s| s == h)
                && !block.term.as_ref().is_some_and(|t| t.kind.is_runtime_op())
            {
                return (p, None);
            }
        }
    }

    let at = h.index();
    let label = fresh_name(
        &format!("{}.preheader", func.block_name(h)),
        &block_names(func),
    );
    // The header always has a label in a parsed program (something jumps
    // to it); make sure of it, since the pre-header's `jmp` must print.
    if func.blocks[at].label.is_none() {
        let name = fresh_name(&func.block_name(h), &block_names(func));
        func.blocks[at].label = Some(name);
    }
    let span = func.blocks[at].span;
    // A latch that fell through into the header is the block right before
    // it; the pre-header is about to stand in between.
    if at > 0 {
        let prev = BlockId::new(at - 1);
        let block = &mut func.blocks[at - 1];
        if block.term.is_none() && lp.latches.contains(&prev) {
            let span = block.insts.last().map_or(block.span, |i| i.span);
            block.term = Some(Terminator {
                kind: TermKind::Jmp { target: h },
                span,
            });
        }
    }
    insert_block(
        func,
        at,
        Block {
            label: Some(label),
            span,
            insts: Vec::new(),
            term: Some(Terminator {
                kind: TermKind::Jmp { target: h },
                span,
            }),
        },
    );
    // After the insertion the header is `at + 1` and the pre-header `at`.
    // Every non-back-edge predecessor now enters through the pre-header: by
    // its explicit edges, or, for the block right before it, by falling
    // through, which needs no change.
    let old_header = BlockId::new(at + 1);
    let pre = BlockId::new(at);
    for p in entries {
        let p = if p.index() >= at {
            BlockId::new(p.index() + 1)
        } else {
            p
        };
        if let Some(t) = &mut func.blocks[p.index()].term {
            t.kind.for_each_successor_mut(|s| {
                if *s == old_header {
                    *s = pre;
                }
            });
        }
    }
    (pre, Some(at))
}

/// Inserts `block` at index `at`, renumbering every reference to the blocks
/// from `at` on (edges, including the new block's own, and hoisted marks).
pub(super) fn insert_block(func: &mut Function, at: usize, block: Block) {
    func.blocks.insert(at, block);
    let shift = |b: &mut BlockId| {
        if b.index() >= at {
            *b = BlockId::new(b.index() + 1);
        }
    };
    for block in &mut func.blocks {
        if let Some(t) = &mut block.term {
            t.kind.for_each_successor_mut(shift);
        }
        for inst in &mut block.insts {
            if let Hoisted(Some(h)) = &mut inst.hoisted {
                shift(h);
            }
        }
    }
}

/// Every name a block answers to when printed: labels, and the stand-ins of
/// unlabelled blocks.
pub(super) fn block_names(func: &Function) -> HashSet<String> {
    func.blocks
        .iter()
        .enumerate()
        .map(|(i, b)| b.name(BlockId::new(i)))
        .collect()
}

/// `base`, or `base.1`, `base.2`, ... : the first one not in `taken`. The
/// result matches `[A-Za-z_][A-Za-z0-9_.]*` whenever `base` does.
pub(super) fn fresh_name(base: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (1..)
        .map(|i| format!("{base}.{i}"))
        .find(|n| !taken.contains(n))
        .expect("an unbounded range has a free name")
}

/// Calls `f` on every register mention of `func` in text order: the
/// parameters, then, line by line, the destination before the operands
/// (`%d = op X, Y`), and in a `select` each arm's registers in turn.
fn for_each_reg_mut(func: &mut Function, mut f: impl FnMut(&mut Reg)) {
    fn on_operand(o: &mut Operand, f: &mut impl FnMut(&mut Reg)) {
        if let Operand::Reg(r) = o {
            f(r)
        }
    }
    for p in &mut func.params {
        f(p);
    }
    for block in &mut func.blocks {
        for inst in &mut block.insts {
            if let Some(d) = inst.kind.def_mut() {
                f(d);
            }
            inst.kind.for_each_operand_mut(|o| on_operand(o, &mut f));
        }
        let Some(t) = &mut block.term else { continue };
        match &mut t.kind {
            TermKind::Select { arms } => {
                for arm in arms {
                    match &mut arm.kind {
                        ArmKind::Recv { chan, into } => {
                            on_operand(chan, &mut f);
                            if let Some(v) = into {
                                f(v);
                            }
                        }
                        ArmKind::Send { chan, value } => {
                            on_operand(chan, &mut f);
                            on_operand(value, &mut f);
                        }
                        ArmKind::Default => {}
                    }
                }
            }
            other => other.for_each_operand_mut(|o| on_operand(o, &mut f)),
        }
    }
}

/// Renumbers registers into the order of their first mention in the text,
/// the numbering the parser produces, so `parse(print(f))` equals `f`.
/// Registers the text never mentions keep their relative order at the end.
pub(super) fn renumber_registers_in_text_order(func: &mut Function) {
    let n = func.regs.len();
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    for_each_reg_mut(func, |r| {
        if let Some(s) = seen.get_mut(r.index()) {
            if !*s {
                *s = true;
                order.push(r.index());
            }
        }
    });
    order.extend((0..n).filter(|&i| !seen[i]));
    if order.iter().enumerate().all(|(new, &old)| new == old) {
        return;
    }
    let mut new_of = vec![0; n];
    for (new, &old) in order.iter().enumerate() {
        new_of[old] = new;
    }
    let mut regs: Vec<Option<crate::ir::RegInfo>> = std::mem::take(&mut func.regs)
        .into_iter()
        .map(Some)
        .collect();
    func.regs = order
        .iter()
        .map(|&old| regs[old].take().expect("each register is placed once"))
        .collect();
    for_each_reg_mut(func, |r| {
        if let Some(&new) = new_of.get(r.index()) {
            *r = Reg::new(new);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{parse, print};

    #[test]
    fn fresh_names_take_the_first_free_suffix() {
        let taken: HashSet<String> = ["a.licm", "a.licm.1", "a.licm.3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(fresh_name("b.licm", &taken), "b.licm");
        assert_eq!(fresh_name("a.licm", &taken), "a.licm.2");
    }

    #[test]
    fn inserting_a_block_renumbers_edges_and_marks() {
        let mut p = parse("func @main() {\n    jmp b\nb:\n    jmp c\nc:\n    ret\n}\n").unwrap();
        let f = &mut p.funcs[0];
        let mut marked = Inst::new(
            InstKind::Const {
                dst: Reg::new(0),
                value: 1,
            },
            Span::default(),
        );
        marked.hoisted = Hoisted(Some(BlockId::new(2)));
        f.add_reg("x", None);
        f.blocks[0].insts.push(marked);
        let new = Block {
            label: Some("n".into()),
            span: Span::default(),
            insts: Vec::new(),
            term: Some(Terminator {
                kind: TermKind::Jmp {
                    target: BlockId::new(1),
                },
                span: Span::default(),
            }),
        };
        insert_block(f, 1, new);
        assert_eq!(f.blocks[0].insts[0].hoisted.0, Some(BlockId::new(3)));
        let f = &p.funcs[0];
        assert_eq!(f.successors(BlockId::new(0)), vec![BlockId::new(2)]);
        assert_eq!(f.successors(BlockId::new(1)), vec![BlockId::new(2)]);
        assert_eq!(f.successors(BlockId::new(2)), vec![BlockId::new(3)]);
    }

    #[test]
    fn registers_are_renumbered_in_order_of_first_mention() {
        let src = "\
func @f(%p: i64) -> i64 {
    %a = add %p, 1
    %c = chan 1
    select recv %c into %v -> out
out:
    ret %v
}
";
        let mut p = parse(src).unwrap();
        let f = &mut p.funcs[0];
        // Scramble the table (and every reference with it), then restore.
        let n = f.regs.len();
        let perm: Vec<usize> = (0..n).rev().collect();
        f.regs.reverse();
        for_each_reg_mut(f, |r| *r = Reg::new(perm[r.index()]));
        assert_ne!(p, parse(src).unwrap());
        renumber_registers_in_text_order(&mut p.funcs[0]);
        assert_eq!(p, parse(src).unwrap());
        assert_eq!(print(&p), src);
    }
}
