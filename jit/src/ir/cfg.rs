//! Control-flow analysis of one function: edges, reverse post-order,
//! dominators and natural loops.
//!
//! Shared by the verifier (definite assignment), LICM (loops and
//! pre-headers) and the register allocator (loop depth for spill weights,
//! liveness order).

use super::{BlockId, Function};

/// A natural loop: the blocks dominated by `header` that reach a back-edge
/// source without passing through `header`.
#[derive(Clone, Debug)]
pub struct Loop {
    pub header: BlockId,
    /// Sources of the back-edges into `header` (the "latches").
    pub latches: Vec<BlockId>,
    /// Every block of the loop, `header` included, sorted by index.
    pub blocks: Vec<BlockId>,
    /// Nesting depth, 1 for an outermost loop.
    pub depth: u32,
}

impl Loop {
    pub fn contains(&self, b: BlockId) -> bool {
        self.blocks.binary_search(&b).is_ok()
    }
}

/// The control-flow graph of a function and what is derived from it.
#[derive(Clone, Debug)]
pub struct Cfg {
    pub succs: Vec<Vec<BlockId>>,
    pub preds: Vec<Vec<BlockId>>,
    /// Reachable blocks in reverse post-order from the entry.
    pub rpo: Vec<BlockId>,
    /// Position of each block in `rpo` (`u32::MAX` when unreachable).
    pub rpo_index: Vec<u32>,
    /// Immediate dominator of each reachable block (the entry's is itself).
    pub idom: Vec<Option<BlockId>>,
    /// Natural loops, innermost first (sorted by decreasing depth).
    pub loops: Vec<Loop>,
    /// Pre- and post-order numbers of each block in the dominator tree, so
    /// that dominance is two comparisons.
    dom_pre: Vec<u32>,
    dom_post: Vec<u32>,
    /// Loop nesting depth of each block (0 outside loops).
    pub loop_depth: Vec<u32>,
}

impl Cfg {
    pub fn new(func: &Function) -> Cfg {
        let n = func.blocks.len();
        let succs: Vec<Vec<BlockId>> = (0..n).map(|b| func.successors(BlockId::new(b))).collect();
        let mut preds = vec![Vec::new(); n];
        for (b, ss) in succs.iter().enumerate() {
            for &s in ss {
                if !preds[s.index()].contains(&BlockId::new(b)) {
                    preds[s.index()].push(BlockId::new(b));
                }
            }
        }
        let rpo = reverse_post_order(&succs);
        let mut rpo_index = vec![u32::MAX; n];
        for (i, b) in rpo.iter().enumerate() {
            rpo_index[b.index()] = i as u32;
        }
        let idom = dominators(&rpo, &rpo_index, &preds);
        let mut cfg = Cfg {
            succs,
            preds,
            rpo,
            rpo_index,
            idom,
            loops: Vec::new(),
            loop_depth: vec![0; n],
            dom_pre: vec![u32::MAX; n],
            dom_post: vec![0; n],
        };
        cfg.number_dominator_tree();
        cfg.find_loops();
        cfg
    }

    pub fn is_reachable(&self, b: BlockId) -> bool {
        self.rpo_index[b.index()] != u32::MAX
    }

    /// Whether `a` dominates `b` (both reachable).
    pub fn dominates(&self, a: BlockId, b: BlockId) -> bool {
        if !self.is_reachable(a) || !self.is_reachable(b) {
            return false;
        }
        let (a, b) = (a.index(), b.index());
        self.dom_pre[a] <= self.dom_pre[b] && self.dom_post[b] <= self.dom_post[a]
    }

    fn number_dominator_tree(&mut self) {
        let n = self.succs.len();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &b in self.rpo.iter().skip(1) {
            if let Some(d) = self.idom[b.index()] {
                children[d.index()].push(b.index());
            }
        }
        let Some(&entry) = self.rpo.first() else {
            return;
        };
        let (mut pre, mut post) = (0u32, 0u32);
        let mut stack = vec![(entry.index(), 0usize)];
        self.dom_pre[entry.index()] = pre;
        pre += 1;
        while let Some(top) = stack.last_mut() {
            let (b, i) = *top;
            if let Some(&c) = children[b].get(i) {
                top.1 += 1;
                self.dom_pre[c] = pre;
                pre += 1;
                stack.push((c, 0));
            } else {
                self.dom_post[b] = post;
                post += 1;
                stack.pop();
            }
        }
    }

    fn find_loops(&mut self) {
        let n = self.succs.len();
        // Group back-edges (t -> h with h dominating t) by header.
        let mut latches: Vec<Vec<BlockId>> = vec![Vec::new(); n];
        for &t in &self.rpo {
            for &h in &self.succs[t.index()] {
                if self.dominates(h, t) && !latches[h.index()].contains(&t) {
                    latches[h.index()].push(t);
                }
            }
        }
        let mut loops = Vec::new();
        for h in 0..n {
            if latches[h].is_empty() {
                continue;
            }
            let header = BlockId::new(h);
            let mut in_loop = vec![false; n];
            in_loop[h] = true;
            let mut work: Vec<BlockId> = latches[h].clone();
            while let Some(b) = work.pop() {
                if in_loop[b.index()] {
                    continue;
                }
                in_loop[b.index()] = true;
                for &p in &self.preds[b.index()] {
                    if self.is_reachable(p) && !in_loop[p.index()] {
                        work.push(p);
                    }
                }
            }
            let blocks: Vec<BlockId> = (0..n).filter(|&b| in_loop[b]).map(BlockId::new).collect();
            loops.push(Loop {
                header,
                latches: latches[h].clone(),
                blocks,
                depth: 0,
            });
        }
        // Depth of a loop: how many loops contain its header.
        for i in 0..loops.len() {
            let header = loops[i].header;
            loops[i].depth = loops.iter().filter(|l| l.contains(header)).count() as u32;
        }
        for l in &loops {
            for &b in &l.blocks {
                self.loop_depth[b.index()] = self.loop_depth[b.index()].max(l.depth);
            }
        }
        loops.sort_by(|a, b| b.depth.cmp(&a.depth).then(a.header.cmp(&b.header)));
        self.loops = loops;
    }

    /// The innermost loop whose header is `b`, if `b` is a loop header.
    pub fn loop_with_header(&self, b: BlockId) -> Option<&Loop> {
        self.loops.iter().find(|l| l.header == b)
    }

    /// Whether the edge `from -> to` is a loop back-edge.
    pub fn is_back_edge(&self, from: BlockId, to: BlockId) -> bool {
        self.loop_with_header(to)
            .is_some_and(|l| l.latches.contains(&from))
    }
}

fn reverse_post_order(succs: &[Vec<BlockId>]) -> Vec<BlockId> {
    reverse_post_order_by(succs.len(), |b, i| succs[b].get(i).copied())
}

/// The blocks reachable from block 0 of an `n`-block graph, in reverse
/// post-order, where `succ(b, i)` is the `i`-th successor of `b`.
pub fn reverse_post_order_by(
    n: usize,
    succ: impl Fn(usize, usize) -> Option<BlockId>,
) -> Vec<BlockId> {
    if n == 0 {
        return Vec::new();
    }
    let mut visited = vec![false; n];
    let mut post = Vec::with_capacity(n);
    // Iterative DFS: (block, next successor index).
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    visited[0] = true;
    while let Some(top) = stack.last_mut() {
        let (b, i) = *top;
        if let Some(s) = succ(b, i) {
            top.1 += 1;
            if !visited[s.index()] {
                visited[s.index()] = true;
                stack.push((s.index(), 0));
            }
        } else {
            post.push(BlockId::new(b));
            stack.pop();
        }
    }
    post.reverse();
    post
}

/// Cooper, Harvey and Kennedy, "A Simple, Fast Dominance Algorithm".
fn dominators(rpo: &[BlockId], rpo_index: &[u32], preds: &[Vec<BlockId>]) -> Vec<Option<BlockId>> {
    let n = preds.len();
    let mut idom: Vec<Option<BlockId>> = vec![None; n];
    let Some(&entry) = rpo.first() else {
        return idom;
    };
    idom[entry.index()] = Some(entry);
    let intersect = |idom: &[Option<BlockId>], mut a: BlockId, mut b: BlockId| -> BlockId {
        while a != b {
            while rpo_index[a.index()] > rpo_index[b.index()] {
                a = idom[a.index()].expect("processed");
            }
            while rpo_index[b.index()] > rpo_index[a.index()] {
                b = idom[b.index()].expect("processed");
            }
        }
        a
    };
    let mut changed = true;
    while changed {
        changed = false;
        for &b in &rpo[1..] {
            let mut new_idom: Option<BlockId> = None;
            for &p in &preds[b.index()] {
                if idom[p.index()].is_none() {
                    continue;
                }
                new_idom = Some(match new_idom {
                    None => p,
                    Some(cur) => intersect(&idom, p, cur),
                });
            }
            if new_idom.is_some() && idom[b.index()] != new_idom {
                idom[b.index()] = new_idom;
                changed = true;
            }
        }
    }
    idom
}
