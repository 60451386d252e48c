//! What every backend decides the same way before emitting a function:
//! register locations, the block layout, and which compares fuse into the
//! branch after them.

use crate::ir::{BlockId, Function, InstKind, Opcode, Operand, TermKind};
use crate::lower::{allocate, Allocation, RegisterFile};

/// A function ready for emission.
#[derive(Debug)]
pub struct FunctionPlan {
    pub alloc: Allocation,
    /// The blocks emitted, in order: the reachable ones, in text order.
    pub layout: Vec<BlockId>,
    /// The block emitted right after each block (None: the last one, or
    /// not emitted).
    pub layout_next: Vec<Option<BlockId>>,
}

impl FunctionPlan {
    pub fn new(func: &Function, regs: &RegisterFile) -> FunctionPlan {
        let alloc = allocate(func, regs);
        let layout: Vec<BlockId> = (0..func.blocks.len())
            .map(BlockId::new)
            .filter(|&b| alloc.cfg.is_reachable(b))
            .collect();
        let mut layout_next = vec![None; func.blocks.len()];
        for w in layout.windows(2) {
            layout_next[w[0].index()] = Some(w[1]);
        }
        FunctionPlan {
            alloc,
            layout,
            layout_next,
        }
    }

    /// Whether `from -> to` needs no jump (it is the next block emitted).
    pub fn falls_into(&self, from: BlockId, to: BlockId) -> bool {
        self.layout_next[from.index()] == Some(to)
    }

    pub fn is_back_edge(&self, from: BlockId, to: BlockId) -> bool {
        self.alloc.cfg.is_back_edge(from, to)
    }

    /// `(compare opcode, a, b)` when block `b` ends in `%c = cmp a, b;
    /// br %c, ...` and `%c` is dead after the branch: the backend then
    /// emits one compare and a conditional branch, and never `%c`.
    pub fn fusable_compare(
        &self,
        func: &Function,
        b: BlockId,
    ) -> Option<(Opcode, Operand, Operand)> {
        let block = &func.blocks[b.index()];
        let TermKind::Br {
            cond: Operand::Reg(c),
            ..
        } = block.term.as_ref()?.kind
        else {
            return None;
        };
        let InstKind::Binary { op, dst, args } = &block.insts.last()?.kind else {
            return None;
        };
        let is_compare = matches!(
            op,
            Opcode::Eq | Opcode::Ne | Opcode::Lt | Opcode::Le | Opcode::Gt | Opcode::Ge
        );
        if !is_compare || *dst != c || self.alloc.last_def_live_out[b.index()] {
            return None;
        }
        Some((*op, args[0], args[1]))
    }

    /// Records every natural loop of `func` in the tables, with whether
    /// its body holds a cooperative preemption point, and the innermost
    /// loop of each block inside one.
    pub fn record_loops(&self, func: &Function, meta: &mut crate::code::MetadataBuilder) {
        let cfg = &self.alloc.cfg;
        // (has_call, has_runtime_op) of each loop: first from the blocks
        // whose innermost loop it is, then from its inner loops, which come
        // before it in `cfg.loops`.
        let mut points = vec![(false, false); cfg.loops.len()];
        for (b, block) in func.blocks.iter().enumerate() {
            let Some(l) = cfg.innermost_loop(BlockId::new(b)) else {
                continue;
            };
            let (has_call, has_runtime_op) = &mut points[l];
            for inst in &block.insts {
                let op = inst.kind.opcode();
                *has_call |= op.is_call();
                *has_runtime_op |= op.is_runtime_op();
            }
            if let Some(t) = &block.term {
                *has_runtime_op |= t.kind.is_runtime_op();
            }
        }
        for (l, lp) in cfg.loops.iter().enumerate() {
            if let Some(p) = lp.parent {
                points[p].0 |= points[l].0;
                points[p].1 |= points[l].1;
            }
        }
        for (lp, &(has_call, has_runtime_op)) in cfg.loops.iter().zip(&points) {
            meta.loop_info(lp.header, has_call, has_runtime_op);
        }
        for b in (0..func.blocks.len()).map(BlockId::new) {
            if let Some(l) = cfg.innermost_loop(b) {
                meta.block_loop(b, l);
            }
        }
    }

    /// The block a terminator-less block falls into.
    pub fn fallthrough(func: &Function, b: BlockId) -> Option<BlockId> {
        (b.index() + 1 < func.blocks.len()).then(|| BlockId::new(b.index() + 1))
    }
}
