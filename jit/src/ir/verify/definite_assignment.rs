//! Phase 5 of the verifier, definite assignment: over the blocks reachable
//! from the entry, a register read where some path from the entry has not
//! defined it, as a dataflow over edges (a select arm's `recv ... into`
//! defines its register on its own edge only).

use super::structure::arm_operands;
use super::Sink;
use crate::ir::cfg::Cfg;
use crate::ir::{ArmKind, BlockId, Function, Operand, Reg, Span, TermKind};

// ---------------------------------------------------------------------------
// Phase 5: definite assignment.

/// The most bits of dataflow state kept at once, in 64-bit words: the
/// registers are analysed in groups small enough that blocks x group stays
/// under this, so a huge function costs time, never gigabytes.
const MAX_STATE_WORDS: usize = 1 << 22;

/// A forward "defined on every path" analysis over the edges of the
/// reachable blocks. Only registers that are read in a reachable block,
/// are not parameters (defined at the entry) and are not read only where
/// a dominating definition covers them are tracked.
pub(super) fn definite_assignment(func: &Function, sink: &mut Sink) {
    if func.blocks.is_empty() {
        return;
    }
    let n = func.blocks.len();
    let cfg = func.cfg();
    let rpo = &cfg.rpo;
    let tracked = reads_without_dominating_definition(func, &cfg);
    if tracked.is_empty() {
        return;
    }
    let outgoing = edges(func);
    let mut incoming: Vec<Vec<(BlockId, Option<Reg>)>> = vec![Vec::new(); n];
    for &b in rpo {
        for &(s, into) in &outgoing[b.index()] {
            incoming[s.index()].push((b, into));
        }
    }

    let words_wanted = tracked.len().div_ceil(64);
    let words = words_wanted.min((MAX_STATE_WORDS / n).max(1));
    for group in tracked.chunks(words * 64) {
        DefinedAnalysis::new(func, rpo, &incoming, group).run(sink);
    }
}

/// The registers other than parameters that some reachable block reads
/// before defining it itself, with no definition by an instruction in a
/// block that strictly dominates it, each once. A read with one is
/// defined on every path (every path to the reader runs through the whole
/// dominating block), so only the registers listed here can fail the
/// analysis, and the dense dataflow tracks only them: in a 100,000-block
/// function whose every block defines the register the next one reads,
/// none.
///
/// One walk of the dominator tree, counting for each register its
/// definitions in the blocks on the path from the entry.
fn reads_without_dominating_definition(func: &Function, cfg: &Cfg) -> Vec<Reg> {
    let n = func.blocks.len();
    let nregs = func.regs.len();
    let mut tracked = Vec::new();
    let mut children: Vec<Vec<BlockId>> = vec![Vec::new(); n];
    for &b in cfg.rpo.iter().skip(1) {
        if let Some(d) = cfg.idom[b.index()] {
            children[d.index()].push(b);
        }
    }
    // Parameters are defined at the entry: never listed.
    let mut uncovered = vec![false; nregs];
    for &p in &func.params {
        uncovered[p.index()] = true;
    }
    // Definitions in the blocks on the path, each register once per block.
    let mut on_path = vec![0u32; nregs];
    let mut path_defs: Vec<Reg> = Vec::new();
    // The block each register was last defined in during the walk.
    let mut defined_in = vec![u32::MAX; nregs];
    // (block, next child, length of `path_defs` before the block's own).
    let mut stack: Vec<(BlockId, usize, usize)> = Vec::new();
    let mut enter = |b: BlockId, path_defs: &mut Vec<Reg>, on_path: &[u32]| {
        let block = &func.blocks[b.index()];
        let mut read = |o: Operand, defined_in: &[u32]| {
            if let Operand::Reg(r) = o {
                if defined_in[r.index()] != b.0 && on_path[r.index()] == 0 && !uncovered[r.index()]
                {
                    uncovered[r.index()] = true;
                    tracked.push(r);
                }
            }
        };
        for inst in &block.insts {
            inst.kind.for_each_operand(|o| read(o, &defined_in));
            if let Some(d) = inst.kind.def() {
                if defined_in[d.index()] != b.0 {
                    defined_in[d.index()] = b.0;
                    path_defs.push(d);
                }
            }
        }
        if let Some(t) = &block.term {
            t.kind.for_each_operand(|o| read(o, &defined_in));
        }
    };
    if let Some(&entry) = cfg.rpo.first() {
        stack.push((entry, 0, 0));
        enter(entry, &mut path_defs, &on_path);
    }
    while let Some(top) = stack.last_mut() {
        let (b, i, mark) = *top;
        if i == 0 {
            // The block's own definitions now cover its children.
            for r in &path_defs[mark..] {
                on_path[r.index()] += 1;
            }
        }
        if let Some(&c) = children[b.index()].get(i) {
            top.1 += 1;
            stack.push((c, 0, path_defs.len()));
            enter(c, &mut path_defs, &on_path);
        } else {
            for r in path_defs.drain(mark..) {
                on_path[r.index()] -= 1;
            }
            stack.pop();
        }
    }
    tracked
}

/// The edges leaving each block, with the register an edge defines (a
/// select's `recv ... into`). The same edges as
/// [`Function::successors`], kept per select arm.
fn edges(func: &Function) -> Vec<Vec<(BlockId, Option<Reg>)>> {
    (0..func.blocks.len())
        .map(|b| {
            let block = &func.blocks[b];
            match block.term.as_ref().map(|t| &t.kind) {
                Some(TermKind::Select { arms }) => arms
                    .iter()
                    .map(|arm| match arm.kind {
                        ArmKind::Recv { into, .. } => (arm.target, into),
                        _ => (arm.target, None),
                    })
                    .collect(),
                _ => func
                    .successors(BlockId::new(b))
                    .into_iter()
                    .map(|s| (s, None))
                    .collect(),
            }
        })
        .collect()
}

/// Definite assignment of one group of registers, as bit sets per block.
struct DefinedAnalysis<'a> {
    func: &'a Function,
    rpo: &'a [BlockId],
    incoming: &'a [Vec<(BlockId, Option<Reg>)>],
    /// Bit of each register of the group (`usize::MAX` outside it).
    bit: Vec<usize>,
    words: usize,
    /// Registers defined on every path to the start of each block.
    defined_in: Vec<u64>,
    /// Registers the block's instructions define.
    gen: Vec<u64>,
}

impl<'a> DefinedAnalysis<'a> {
    fn new(
        func: &'a Function,
        rpo: &'a [BlockId],
        incoming: &'a [Vec<(BlockId, Option<Reg>)>],
        group: &[Reg],
    ) -> Self {
        let n = func.blocks.len();
        let words = group.len().div_ceil(64);
        let mut bit = vec![usize::MAX; func.regs.len()];
        for (i, r) in group.iter().enumerate() {
            bit[r.index()] = i;
        }
        let mut gen = vec![0u64; n * words];
        for &b in rpo {
            for inst in &func.blocks[b.index()].insts {
                if let Some(d) = inst.kind.def() {
                    set_bit(&mut gen[b.index() * words..][..words], bit[d.index()]);
                }
            }
        }
        // Start from "everything defined" and shrink to the greatest
        // fixpoint; the entry starts empty (only parameters, not tracked).
        let mut defined_in = vec![u64::MAX; n * words];
        if let Some(&entry) = rpo.first() {
            defined_in[entry.index() * words..][..words].fill(0);
        }
        DefinedAnalysis {
            func,
            rpo,
            incoming,
            bit,
            words,
            defined_in,
            gen,
        }
    }

    fn solve(&mut self) {
        let words = self.words;
        let mut scratch = vec![0u64; words];
        let mut changed = true;
        while changed {
            changed = false;
            for &b in self.rpo.iter().skip(1) {
                scratch.fill(u64::MAX);
                for &(p, into) in &self.incoming[b.index()] {
                    let p = p.index() * words;
                    let defined = &self.defined_in[p..][..words];
                    let gen = &self.gen[p..][..words];
                    // A select arm's `into` register is defined on this
                    // edge only.
                    let into = into
                        .map(|v| self.bit[v.index()])
                        .filter(|&i| i != usize::MAX);
                    for (w, acc) in scratch.iter_mut().enumerate() {
                        let mut out = defined[w] | gen[w];
                        if let Some(i) = into.filter(|i| i / 64 == w) {
                            out |= 1 << (i % 64);
                        }
                        *acc &= out;
                    }
                }
                let dst = &mut self.defined_in[b.index() * words..][..words];
                if dst != scratch.as_slice() {
                    dst.copy_from_slice(&scratch);
                    changed = true;
                }
            }
        }
    }

    fn run(mut self, sink: &mut Sink) {
        self.solve();
        let func = self.func;
        let words = self.words;
        let mut cur = vec![0u64; words];
        for &b in self.rpo {
            let block = &func.blocks[b.index()];
            cur.copy_from_slice(&self.defined_in[b.index() * words..][..words]);
            let undefined = |cur: &[u64], o: Operand| match o {
                Operand::Reg(r) => {
                    let i = self.bit[r.index()];
                    (i != usize::MAX && cur[i / 64] & (1 << (i % 64)) == 0).then_some(r)
                }
                _ => None,
            };
            let mut report = |span: Span, sub: usize, r: Reg| {
                sink.report(span, sub, || {
                    format!(
                        "register %{} may be used before it is defined \
                         (some path from the entry of @{} reaches this use without defining it)",
                        func.reg_name(r),
                        func.name
                    )
                })
            };
            for inst in &block.insts {
                let mut i = 0;
                inst.kind.for_each_operand(|o| {
                    if let Some(r) = undefined(&cur, o) {
                        report(inst.span, i, r);
                    }
                    i += 1;
                });
                if let Some(d) = inst.kind.def() {
                    set_bit(&mut cur, self.bit[d.index()]);
                }
            }
            let Some(term) = &block.term else { continue };
            if let TermKind::Select { arms } = &term.kind {
                for arm in arms {
                    let mut i = 0;
                    arm_operands(&arm.kind, |o| {
                        if let Some(r) = undefined(&cur, o) {
                            report(arm.span, i, r);
                        }
                        i += 1;
                    });
                }
            } else {
                term.kind.for_each_operand(|o| {
                    if let Some(r) = undefined(&cur, o) {
                        report(term.span, 0, r);
                    }
                });
            }
        }
    }
}

fn set_bit(words: &mut [u64], i: usize) {
    if i != usize::MAX {
        words[i / 64] |= 1 << (i % 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse;
    use crate::ir::verify::tests::{error, verified};

    #[test]
    fn recv_into_defines_its_register_on_its_own_edge_only() {
        let src = |use_block: &str| {
            format!(
                "func @main() {{\n\
                 \x20   %c = chan 1\n\
                 \x20   send %c, 1\n\
                 \x20   select recv %c into %v -> got, default -> none\n\
                 got:\n\
                 \x20   print \"{{}}\", %v\n\
                 \x20   ret\n\
                 none:\n\
                 {use_block}\
                 \x20   ret\n\
                 }}\n"
            )
        };
        verified(&src(""));
        let (l, _, m) = error(&src("    print \"{}\", %v\n"));
        assert_eq!(l, 9);
        assert!(m.contains("%v may be used before it is defined"), "{m}");
        // Two arms into one block: defined only if both edges define it.
        let two_arms = |second: &str| {
            format!(
                "func @main() {{\n\
                 \x20   %c = chan 1\n\
                 \x20   %d = chan 1\n\
                 \x20   select recv %c into %v -> l, {second} -> l\n\
                 l:\n\
                 \x20   print \"{{}}\", %v\n\
                 \x20   ret\n\
                 }}\n"
            )
        };
        verified(&two_arms("recv %d into %v"));
        assert_eq!(error(&two_arms("recv %d")).0, 6);
        assert_eq!(error(&two_arms("send %d, 1")).0, 6);
    }

    #[test]
    fn definite_assignment_follows_every_path_and_ignores_dead_code() {
        let diamond = |else_def: &str| {
            format!(
                "func @main() {{\n\
                 \x20   %c = const 1\n\
                 \x20   br %c, a, b\n\
                 a:\n\
                 \x20   %x = const 1\n\
                 \x20   jmp join\n\
                 b:\n\
                 {else_def}\
                 join:\n\
                 \x20   print \"{{}}\", %x\n\
                 \x20   ret\n\
                 }}\n"
            )
        };
        verified(&diamond("    %x = const 2\n"));
        assert_eq!(error(&diamond("")).0, 9);
        // Defined in the loop body only: not defined on the first entry.
        let (l, _, m) = error(
            "func @main() {\n\
             \x20   %i = const 0\n\
             loop:\n\
             \x20   %s = add %s, %i\n\
             \x20   %i = add %i, 1\n\
             \x20   %d = lt %i, 10\n\
             \x20   br %d, loop, out\n\
             out:\n\
             \x20   ret\n\
             }\n",
        );
        assert_eq!(l, 4, "{m}");
        // Unreachable code reads what it likes, but is still type-checked.
        verified(
            "func @main() {\n\
             \x20   ret\n\
             \x20   print \"{}\", %never\n\
             \x20   %never = const 1\n\
             \x20   ret\n\
             }\n",
        );
        let (l, _, m) = error(
            "func @main() {\n\
             \x20   ret\n\
             \x20   %x = add nil, 1\n\
             \x20   ret\n\
             }\n",
        );
        assert_eq!(l, 3, "{m}");
    }

    #[test]
    fn a_loop_back_to_the_entry_does_not_define_registers_at_the_entry() {
        let (l, _, m) = error(
            "func @main() {\n\
             top:\n\
             \x20   print \"{}\", %x\n\
             \x20   %x = const 1\n\
             \x20   jmp top\n\
             }\n",
        );
        assert_eq!(l, 3, "{m}");
    }

    #[test]
    fn only_reads_without_a_dominating_definition_need_the_dataflow() {
        let p = parse(
            "func @main() {\n\
             \x20   %a = const 1\n\
             \x20   %c = const 0\n\
             \x20   br %c, t, e\n\
             t:\n\
             \x20   %b = const 2\n\
             \x20   %d = add %a, 1\n\
             \x20   jmp j\n\
             e:\n\
             \x20   %b = const 3\n\
             j:\n\
             \x20   %x = add %b, %a\n\
             \x20   %x = add %x, %d\n\
             \x20   ret\n\
             dead:\n\
             \x20   %y = add %y, 1\n\
             \x20   ret\n\
             }\n",
        )
        .unwrap();
        let f = &p.funcs[0];
        let mut uncovered: Vec<&str> = reads_without_dominating_definition(f, &Cfg::new(f))
            .iter()
            .map(|&r| f.reg_name(r))
            .collect();
        uncovered.sort();
        // %b is defined on both arms (the dataflow decides), %d on one
        // only; %a and %c are covered by the entry, %x by its own block,
        // and the dead block is not looked at.
        assert_eq!(uncovered, ["b", "d"]);
    }
}
