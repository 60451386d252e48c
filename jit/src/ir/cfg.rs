//! Control-flow analysis of one function: edges, reverse post-order,
//! dominators and natural loops.
//!
//! Shared by the verifier (dominators, for definite assignment), LICM
//! (loops and pre-headers), the register allocator (loop depth for spill
//! weights, liveness) and the backends (back-edges, loop metadata). They
//! take it from [`Function::cfg`], which keeps the graph it built last and
//! hands it on while the function's edges are those it was built from
//! (checked block by block, no invalidation to forget): one build per
//! function unless a pass changes an edge (a pre-header, a tail call
//! turned into a jump).
//!
//! # The loop forest
//!
//! Two natural loops with different headers are either disjoint or nested
//! (a block of both is dominated by both headers, so one header dominates
//! the other, and the inner loop lies wholly in the outer one), so the
//! loops of a function form a forest. It is found in near-linear time, as
//! Havlak and Ramalingam do: headers are taken innermost first (in reverse
//! post-order backwards: an outer header dominates, so precedes, every
//! header inside it), and each loop's body is walked backwards from its
//! latches, where a block already in a loop found earlier stands for the
//! outermost such loop, whose header leads on to the blocks that enter it
//! (a union-find). So the predecessors of each block are looked at once,
//! however deep the nest.
//!
//! A list of every block of every loop would cost the sum of the loop
//! sizes, quadratic in the depth of a nest. Instead the loop blocks are put
//! in one array, the *nest order*, in which every loop's blocks are one
//! contiguous run (its own blocks, then the runs of the loops directly
//! inside it): each [`Loop`] holds its run, and whether a block is in a
//! loop is a comparison of positions.

use std::ops::{Deref, Range};
use std::sync::{Arc, Mutex, PoisonError};

use super::{BlockId, Function};

/// A natural loop: the blocks dominated by `header` that reach a back-edge
/// source without passing through `header`.
#[derive(Clone, Debug)]
pub struct Loop {
    pub header: BlockId,
    /// Sources of the back-edges into `header` (the "latches").
    pub latches: Vec<BlockId>,
    /// Every block of the loop, `header` included.
    pub blocks: LoopBlocks,
    /// Nesting depth, 1 for an outermost loop.
    pub depth: u32,
    /// The loop directly around this one, as an index into [`Cfg::loops`].
    pub parent: Option<usize>,
}

impl Loop {
    pub fn contains(&self, b: BlockId) -> bool {
        self.blocks
            .nest
            .position(b)
            .is_some_and(|p| self.blocks.run.contains(&p))
    }

    /// Where the loop's blocks stand in the nest order: a block is in the
    /// loop exactly when its [`Cfg::nest_position`] lies in this range.
    pub fn nest_range(&self) -> Range<u32> {
        self.blocks.run.clone()
    }
}

/// The blocks of one loop: its run of the function's nest order, which
/// lists the loop's own blocks (those in no inner loop) by index, then the
/// blocks of each loop directly inside it, loop by loop in the order of
/// their headers. Dereferences to a slice.
#[derive(Clone)]
pub struct LoopBlocks {
    nest: Arc<NestOrder>,
    run: Range<u32>,
}

impl Deref for LoopBlocks {
    type Target = [BlockId];
    fn deref(&self) -> &[BlockId] {
        &self.nest.blocks[self.run.start as usize..self.run.end as usize]
    }
}

impl std::fmt::Debug for LoopBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Every block that is in a loop, in nest order (see the module
/// documentation), shared by the function's [`Loop`]s.
#[derive(Debug, Default)]
struct NestOrder {
    blocks: Vec<BlockId>,
    /// Position of each block in `blocks`; `u32::MAX` for a block in no
    /// loop.
    positions: Vec<u32>,
}

impl NestOrder {
    fn position(&self, b: BlockId) -> Option<u32> {
        self.positions
            .get(b.index())
            .copied()
            .filter(|&p| p != NONE)
    }
}

/// "No block", "no loop", "not numbered" in the `u32` tables below.
const NONE: u32 = u32::MAX;

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
    /// Natural loops, innermost first (sorted by decreasing depth, then by
    /// header).
    pub loops: Vec<Loop>,
    /// Pre- and post-order numbers of each block in the dominator tree, so
    /// that dominance is two comparisons.
    dom_pre: Vec<u32>,
    dom_post: Vec<u32>,
    /// Loop nesting depth of each block (0 outside loops).
    pub loop_depth: Vec<u32>,
    /// The innermost loop around each block, as an index into `loops`.
    innermost: Vec<u32>,
    nest: Arc<NestOrder>,
}

impl Cfg {
    pub fn new(func: &Function) -> Cfg {
        let n = func.blocks.len();
        let succs: Vec<Vec<BlockId>> = (0..n).map(|b| func.successors(BlockId::new(b))).collect();
        let mut preds: Vec<Vec<BlockId>> = vec![Vec::new(); n];
        for (b, ss) in succs.iter().enumerate() {
            for &s in ss {
                // Blocks are visited in order, so a second edge from `b`
                // (`br %c, l, l`) finds `b` last in the list.
                if preds[s.index()].last() != Some(&BlockId::new(b)) {
                    preds[s.index()].push(BlockId::new(b));
                }
            }
        }
        let rpo = reverse_post_order(&succs);
        let mut rpo_index = vec![NONE; n];
        for (i, b) in rpo.iter().enumerate() {
            rpo_index[b.index()] = i as u32;
        }
        let idom = dominators(&succs, &preds);
        let mut cfg = Cfg {
            succs,
            preds,
            rpo,
            rpo_index,
            idom,
            loops: Vec::new(),
            loop_depth: vec![0; n],
            dom_pre: vec![NONE; n],
            dom_post: vec![0; n],
            innermost: vec![NONE; n],
            nest: Arc::default(),
        };
        cfg.number_dominator_tree();
        cfg.find_loops();
        cfg
    }

    /// Whether the function's edges are exactly those this graph was built
    /// from (everything in it follows from them alone).
    fn built_from(&self, func: &Function) -> bool {
        self.succs.len() == func.blocks.len()
            && self.succs.iter().enumerate().all(|(b, succs)| {
                let mut same = true;
                let mut k = 0;
                func.for_each_successor(BlockId::new(b), |s| {
                    same &= succs.get(k) == Some(&s);
                    k += 1;
                });
                same && k == succs.len()
            })
    }

    pub fn is_reachable(&self, b: BlockId) -> bool {
        self.rpo_index[b.index()] != NONE
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

    /// Builds the loop forest (see the module documentation).
    fn find_loops(&mut self) {
        let n = self.succs.len();
        // Group back-edges (t -> h with h dominating t) by header.
        let mut latches: Vec<Vec<BlockId>> = vec![Vec::new(); n];
        for &t in &self.rpo {
            for &h in &self.succs[t.index()] {
                // Latches arrive in order, so a second edge from `t` finds
                // `t` last in the list.
                if self.dominates(h, t) && latches[h.index()].last() != Some(&t) {
                    latches[h.index()].push(t);
                }
            }
        }

        // Loops in the order they are found, innermost first.
        struct Found {
            header: BlockId,
            parent: u32,
        }
        let mut found: Vec<Found> = Vec::new();
        let mut loop_of_header = vec![NONE; n];
        // `outer[b]` leads to the header of the outermost loop found so far
        // around `b` (to `b` itself when there is none).
        let mut outer: Vec<u32> = (0..n as u32).collect();
        // The loop whose body walk last reached each block.
        let mut seen = vec![NONE; n];
        let mut work: Vec<BlockId> = Vec::new();
        let mut absorbed: Vec<usize> = Vec::new();
        for &h in self.rpo.iter().rev() {
            if latches[h.index()].is_empty() {
                continue;
            }
            let id = found.len() as u32;
            loop_of_header[h.index()] = id;
            self.innermost[h.index()] = id;
            seen[h.index()] = id;
            work.extend(&latches[h.index()]);
            while let Some(b) = work.pop() {
                let b = find_outermost(&mut outer, b.index());
                if seen[b] == id {
                    continue;
                }
                seen[b] = id;
                absorbed.push(b);
                // `b` is a block in no loop yet, or the header of a loop
                // found earlier, which this one directly contains; only
                // its header has predecessors outside it.
                match loop_of_header[b] {
                    NONE => self.innermost[b] = id,
                    inner => found[inner as usize].parent = id,
                }
                work.extend(
                    self.preds[b]
                        .iter()
                        .filter(|&&p| self.rpo_index[p.index()] != NONE),
                );
            }
            for b in absorbed.drain(..) {
                outer[b] = h.0;
            }
            found.push(Found {
                header: h,
                parent: NONE,
            });
        }

        // Depths, outer loops first (a parent is found after its children).
        let mut depth = vec![0u32; found.len()];
        for i in (0..found.len()).rev() {
            depth[i] = match found[i].parent {
                NONE => 1,
                p => depth[p as usize] + 1,
            };
        }
        // `Cfg::loops` order: innermost first, then by header.
        let mut order: Vec<usize> = (0..found.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(depth[i]), found[i].header));
        let mut index_of = vec![0u32; found.len()];
        for (k, &i) in order.iter().enumerate() {
            index_of[i] = k as u32;
        }
        for b in 0..n {
            if self.innermost[b] != NONE {
                let i = self.innermost[b] as usize;
                self.innermost[b] = index_of[i];
                self.loop_depth[b] = depth[i];
            }
        }

        // The nest order: each loop's own blocks by index, then its
        // children's runs, children and roots by header.
        let parent = |k: usize| match found[order[k]].parent {
            NONE => None,
            p => Some(index_of[p as usize] as usize),
        };
        let mut own: Vec<Vec<BlockId>> = vec![Vec::new(); found.len()];
        for b in 0..n {
            if self.innermost[b] != NONE {
                own[self.innermost[b] as usize].push(BlockId::new(b));
            }
        }
        let mut by_header: Vec<usize> = (0..found.len()).collect();
        by_header.sort_by_key(|&k| found[order[k]].header);
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); found.len()];
        let mut roots = Vec::new();
        for &k in &by_header {
            match parent(k) {
                Some(p) => children[p].push(k),
                None => roots.push(k),
            }
        }
        let mut nest = NestOrder {
            blocks: Vec::new(),
            positions: vec![NONE; n],
        };
        let mut runs = vec![0..0; found.len()];
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in roots {
            runs[root].start = nest.blocks.len() as u32;
            nest.blocks.extend(&own[root]);
            stack.push((root, 0));
            while let Some(top) = stack.last_mut() {
                let (k, i) = *top;
                if let Some(&c) = children[k].get(i) {
                    top.1 += 1;
                    runs[c].start = nest.blocks.len() as u32;
                    nest.blocks.extend(&own[c]);
                    stack.push((c, 0));
                } else {
                    runs[k].end = nest.blocks.len() as u32;
                    stack.pop();
                }
            }
        }
        for (p, b) in nest.blocks.iter().enumerate() {
            nest.positions[b.index()] = p as u32;
        }
        self.nest = Arc::new(nest);
        self.loops = order
            .iter()
            .enumerate()
            .map(|(k, &i)| Loop {
                header: found[i].header,
                latches: std::mem::take(&mut latches[found[i].header.index()]),
                blocks: LoopBlocks {
                    nest: Arc::clone(&self.nest),
                    run: runs[k].clone(),
                },
                depth: depth[i],
                parent: parent(k),
            })
            .collect();
    }

    /// The innermost loop around `b`, as an index into [`Cfg::loops`].
    pub fn innermost_loop(&self, b: BlockId) -> Option<usize> {
        match self.innermost[b.index()] {
            NONE => None,
            i => Some(i as usize),
        }
    }

    /// Where `b` stands in the nest order, if it is in a loop (see
    /// [`Loop::nest_range`]).
    pub fn nest_position(&self, b: BlockId) -> Option<u32> {
        self.nest.position(b)
    }

    /// The loop whose header is `b`, if `b` is a loop header.
    pub fn loop_with_header(&self, b: BlockId) -> Option<&Loop> {
        // A header's innermost loop is its own: a loop inside it would
        // have a header that dominates it and is dominated by it.
        self.innermost_loop(b)
            .map(|i| &self.loops[i])
            .filter(|l| l.header == b)
    }

    /// Whether the edge `from -> to` (an edge of the graph) is a loop
    /// back-edge: whether `to` dominates `from`.
    pub fn is_back_edge(&self, from: BlockId, to: BlockId) -> bool {
        self.dominates(to, from)
    }
}

/// Follows `outer` from `b` to the header it leads to, pointing every
/// block on the way straight at it.
/// The graph a [`Function`] keeps for [`Function::cfg`]. It takes no part
/// in comparing functions (it follows from their blocks), and a copy of a
/// function shares it until either side's edges change.
#[derive(Default)]
pub(crate) struct CfgCache(Mutex<Option<Arc<Cfg>>>);

impl CfgCache {
    pub(crate) fn get(&self, func: &Function) -> Arc<Cfg> {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &*kept {
            Some(cfg) if cfg.built_from(func) => cfg.clone(),
            _ => kept.insert(Arc::new(Cfg::new(func))).clone(),
        }
    }

    fn kept(&self) -> Option<Arc<Cfg>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Clone for CfgCache {
    fn clone(&self) -> CfgCache {
        CfgCache(Mutex::new(self.kept()))
    }
}

impl PartialEq for CfgCache {
    fn eq(&self, _: &CfgCache) -> bool {
        true
    }
}

impl Eq for CfgCache {}

impl std::fmt::Debug for CfgCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CfgCache")
    }
}

fn find_outermost(outer: &mut [u32], b: usize) -> usize {
    let mut root = b;
    while outer[root] as usize != root {
        root = outer[root] as usize;
    }
    let mut b = b;
    while outer[b] as usize != root {
        let next = outer[b] as usize;
        outer[b] = root as u32;
        b = next;
    }
    root
}

/// The blocks reachable from block 0, in reverse post-order.
fn reverse_post_order(succs: &[Vec<BlockId>]) -> Vec<BlockId> {
    let n = succs.len();
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
        if let Some(&s) = succs[b].get(i) {
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

/// Immediate dominators, by Lengauer and Tarjan's algorithm ("A Fast
/// Algorithm for Finding Dominators in a Flowgraph", 1979) in its simple
/// form, path compression without balancing: O(m log n). The iterative
/// algorithm of Cooper, Harvey and Kennedy walks up the dominator tree from
/// every predecessor, which in a loop nest N deep is N steps per header.
fn dominators(succs: &[Vec<BlockId>], preds: &[Vec<BlockId>]) -> Vec<Option<BlockId>> {
    let n = succs.len();
    let mut idom: Vec<Option<BlockId>> = vec![None; n];
    if n == 0 {
        return idom;
    }
    // Depth-first numbering from the entry; everything below is indexed
    // by number, `vertex` maps back to blocks.
    let mut number = vec![NONE; n];
    let mut vertex: Vec<BlockId> = vec![BlockId::new(0)];
    let mut parent: Vec<u32> = vec![NONE];
    number[0] = 0;
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    while let Some(top) = stack.last_mut() {
        let (b, i) = *top;
        let Some(&s) = succs[b].get(i) else {
            stack.pop();
            continue;
        };
        top.1 += 1;
        if number[s.index()] == NONE {
            number[s.index()] = vertex.len() as u32;
            parent.push(number[b]);
            vertex.push(s);
            stack.push((s.index(), 0));
        }
    }
    let m = vertex.len();
    let mut forest = Forest {
        semi: (0..m as u32).collect(),
        label: (0..m as u32).collect(),
        ancestor: vec![NONE; m],
        path: Vec::new(),
    };
    let mut dom = vec![0u32; m];
    // The vertices whose semidominator is each vertex, as linked lists
    // (each vertex is in one bucket at a time).
    let mut bucket_head = vec![NONE; m];
    let mut bucket_next = vec![NONE; m];
    for w in (1..m).rev() {
        for &p in &preds[vertex[w].index()] {
            let v = number[p.index()];
            if v == NONE {
                continue;
            }
            let u = forest.eval(v);
            forest.semi[w] = forest.semi[w].min(forest.semi[u as usize]);
        }
        let s = forest.semi[w] as usize;
        bucket_next[w] = bucket_head[s];
        bucket_head[s] = w as u32;
        let pw = parent[w];
        forest.ancestor[w] = pw;
        let mut v = std::mem::replace(&mut bucket_head[pw as usize], NONE);
        while v != NONE {
            let u = forest.eval(v);
            dom[v as usize] = if forest.semi[u as usize] < forest.semi[v as usize] {
                u
            } else {
                pw
            };
            v = bucket_next[v as usize];
        }
    }
    idom[0] = Some(BlockId::new(0));
    for w in 1..m {
        if dom[w] != forest.semi[w] {
            dom[w] = dom[dom[w] as usize];
        }
        idom[vertex[w].index()] = Some(vertex[dom[w] as usize]);
    }
    idom
}

/// The forest of Lengauer and Tarjan's algorithm, over depth-first
/// numbers.
struct Forest {
    /// Semidominator of each vertex.
    semi: Vec<u32>,
    /// The vertex of least semidominator on the compressed path above.
    label: Vec<u32>,
    ancestor: Vec<u32>,
    path: Vec<u32>,
}

impl Forest {
    /// The vertex of least semidominator on the forest path from `v`'s
    /// root (excluded) down to `v`.
    fn eval(&mut self, v: u32) -> u32 {
        if self.ancestor[v as usize] == NONE {
            return v;
        }
        // Compress the path from `v` up to the vertex just below its root,
        // top down.
        let mut x = v;
        while self.ancestor[self.ancestor[x as usize] as usize] != NONE {
            self.path.push(x);
            x = self.ancestor[x as usize];
        }
        while let Some(y) = self.path.pop() {
            let (y, a) = (y as usize, self.ancestor[y as usize] as usize);
            if self.semi[self.label[a] as usize] < self.semi[self.label[y] as usize] {
                self.label[y] = self.label[a];
            }
            self.ancestor[y] = self.ancestor[a];
        }
        self.label[v as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse;
    use proptest::prelude::*;
    use std::fmt::Write;

    /// A function whose block `i` ends as `ends[i]` says: `(kind, a, b)`
    /// with targets `a % n` and `b % n`; mostly branches, which make the
    /// joins that dominators and loops are about.
    fn graph(ends: &[(u8, usize, usize)]) -> Function {
        let n = ends.len();
        let mut src = String::from("func @main() {\n");
        for (i, &(kind, a, b)) in ends.iter().enumerate() {
            writeln!(src, "b{i}:\n    %x = const {i}").unwrap();
            let (a, b) = (a % n, b % n);
            match kind % 8 {
                0 => writeln!(src, "    jmp b{a}").unwrap(),
                1 if i + 1 < n => {}
                2 => writeln!(src, "    ret").unwrap(),
                _ => writeln!(src, "    br %x, b{a}, b{b}").unwrap(),
            }
        }
        src.push_str("}\n");
        parse(&src).unwrap().funcs.remove(0)
    }

    /// Natural loops by their definition, each walked on its own: header,
    /// sorted blocks.
    fn natural_loops(cfg: &Cfg) -> Vec<(BlockId, Vec<BlockId>)> {
        let n = cfg.succs.len();
        let mut loops = Vec::new();
        for h in (0..n).map(BlockId::new) {
            let latches: Vec<BlockId> = (0..n)
                .map(BlockId::new)
                .filter(|&t| cfg.succs[t.index()].contains(&h) && cfg.dominates(h, t))
                .collect();
            if latches.is_empty() {
                continue;
            }
            let mut body = vec![h];
            let mut work = latches;
            while let Some(b) = work.pop() {
                if !body.contains(&b) {
                    body.push(b);
                    work.extend(
                        cfg.preds[b.index()]
                            .iter()
                            .filter(|&&p| cfg.is_reachable(p)),
                    );
                }
            }
            body.sort();
            loops.push((h, body));
        }
        loops
    }

    proptest! {
        #[test]
        fn the_loop_forest_holds_the_natural_loops(
            ends in prop::collection::vec((0u8..8, 0usize..64, 0usize..64), 1..24)
        ) {
            let f = graph(&ends);
            let cfg = Cfg::new(&f);
            let want = natural_loops(&cfg);
            prop_assert_eq!(cfg.loops.len(), want.len());
            for (h, body) in &want {
                let lp = cfg.loop_with_header(*h).expect("a loop per header");
                let mut blocks = lp.blocks.to_vec();
                blocks.sort();
                prop_assert_eq!(&blocks, body);
                // Depth: the loops around the header; parent: the smallest
                // other loop around it.
                let around: Vec<&(BlockId, Vec<BlockId>)> =
                    want.iter().filter(|(_, b)| b.contains(h)).collect();
                prop_assert_eq!(lp.depth as usize, around.len());
                let parent = around
                    .iter()
                    .filter(|(g, _)| g != h)
                    .min_by_key(|(_, b)| b.len())
                    .map(|(g, _)| *g);
                prop_assert_eq!(lp.parent.map(|p| cfg.loops[p].header), parent);
                for b in (0..f.blocks.len()).map(BlockId::new) {
                    prop_assert_eq!(lp.contains(b), body.contains(&b));
                }
            }
            for b in (0..f.blocks.len()).map(BlockId::new) {
                let innermost = want
                    .iter()
                    .filter(|(_, body)| body.contains(&b))
                    .min_by_key(|(_, body)| body.len());
                prop_assert_eq!(
                    cfg.innermost_loop(b).map(|l| cfg.loops[l].header),
                    innermost.map(|l| l.0)
                );
                prop_assert_eq!(
                    cfg.loop_depth[b.index()] as usize,
                    want.iter().filter(|(_, body)| body.contains(&b)).count()
                );
                for &s in &cfg.succs[b.index()] {
                    let back = cfg.loop_with_header(s).is_some_and(|l| l.latches.contains(&b));
                    prop_assert_eq!(cfg.is_back_edge(b, s), back);
                }
            }
            // Innermost first, then by header.
            let order: Vec<(std::cmp::Reverse<u32>, BlockId)> =
                cfg.loops.iter().map(|l| (std::cmp::Reverse(l.depth), l.header)).collect();
            let mut sorted = order.clone();
            sorted.sort();
            prop_assert_eq!(order, sorted);
        }
    }

    proptest! {
        #[test]
        fn dominators_are_those_of_the_definition(
            ends in prop::collection::vec((0u8..8, 0usize..64, 0usize..64), 1..24)
        ) {
            let f = graph(&ends);
            let cfg = Cfg::new(&f);
            let n = f.blocks.len();
            // The blocks dominating each block, as a bit mask: the greatest
            // solution of dom(b) = {b} + the intersection over predecessors.
            let reachable: Vec<bool> = (0..n).map(|b| cfg.is_reachable(BlockId::new(b))).collect();
            let all = (0..n).filter(|&b| reachable[b]).fold(0u32, |m, b| m | 1 << b);
            let mut dom = vec![all; n];
            dom[0] = 1;
            let mut changed = true;
            while changed {
                changed = false;
                for b in (1..n).filter(|&b| reachable[b]) {
                    let meet = cfg.preds[b]
                        .iter()
                        .filter(|p| reachable[p.index()])
                        .fold(all, |m, p| m & dom[p.index()]);
                    let new = meet | 1 << b;
                    changed |= new != dom[b];
                    dom[b] = new;
                }
            }
            for b in 0..n {
                // The immediate dominator is the closest strict one: the
                // one with the most dominators of its own.
                let idom = if !reachable[b] {
                    None
                } else if b == 0 {
                    Some(0)
                } else {
                    (0..n)
                        .filter(|&d| d != b && dom[b] >> d & 1 == 1)
                        .max_by_key(|&d| dom[d].count_ones())
                };
                prop_assert_eq!(cfg.idom[b], idom.map(BlockId::new));
                for a in 0..n {
                    let want = reachable[a] && reachable[b] && dom[b] >> a & 1 == 1;
                    prop_assert_eq!(cfg.dominates(BlockId::new(a), BlockId::new(b)), want);
                }
            }
        }
    }

    /// Successors, reverse postorder, immediate dominators, loop headers.
    type Facts = (
        Vec<Vec<BlockId>>,
        Vec<BlockId>,
        Vec<Option<BlockId>>,
        Vec<BlockId>,
    );

    /// What a graph says about its function, for comparing two graphs.
    fn facts(cfg: &Cfg) -> Facts {
        let headers = cfg.loops.iter().map(|l| l.header).collect();
        (
            cfg.succs.clone(),
            cfg.rpo.clone(),
            cfg.idom.clone(),
            headers,
        )
    }

    proptest! {
        #[test]
        fn the_kept_graph_is_the_one_the_current_edges_make(
            ends in prop::collection::vec((0u8..8, 0usize..64, 0usize..64), 1..16),
            moves in prop::collection::vec((0usize..64, 0usize..64, 0usize..64), 0..6),
        ) {
            let mut f = graph(&ends);
            let n = f.blocks.len();
            let mut kept = f.cfg();
            prop_assert_eq!(facts(&kept), facts(&Cfg::new(&f)));
            for (b, k, to) in moves {
                // Retarget successor `k` of block `b`, when it has one.
                let mut i = 0;
                if let Some(term) = &mut f.blocks[b % n].term {
                    term.kind.for_each_successor_mut(|s| {
                        if i == k % 2 {
                            *s = BlockId::new(to % n);
                        }
                        i += 1;
                    });
                }
                let before = facts(&kept);
                let now = f.cfg();
                prop_assert_eq!(facts(&now), facts(&Cfg::new(&f)));
                // Kept exactly when the edges did not change.
                prop_assert_eq!(Arc::ptr_eq(&now, &kept), before.0 == now.succs);
                kept = now;
            }
        }
    }

    #[test]
    fn a_copy_keeps_the_graph_until_its_own_edges_change() {
        // b0 falls through into b1, which loops on itself, then b2 returns.
        let mut f = graph(&[(1, 0, 0), (3, 1, 2), (2, 0, 0)]);
        let first = f.cfg();
        assert!(Arc::ptr_eq(&first, &f.cfg()));
        assert_eq!(first.loops.len(), 1);
        let copy = f.clone();
        assert!(Arc::ptr_eq(&first, &copy.cfg()));
        // The back-edge now leaves the loop: no loop remains.
        let term = f.blocks[1].term.as_mut().unwrap();
        term.kind.for_each_successor_mut(|s| *s = BlockId::new(2));
        let second = f.cfg();
        assert!(second.loops.is_empty());
        assert!(Arc::ptr_eq(&first, &copy.cfg()));
        // A block added after the last one: unreachable, but counted.
        f.blocks.push(f.blocks[2].clone());
        let third = f.cfg();
        assert_eq!(third.succs.len(), 4);
        assert!(!third.is_reachable(BlockId::new(3)));
    }

    #[test]
    fn a_deep_nest_shares_one_list_of_blocks() {
        // Headers b0 ... b(N-1) fall through into each other, and the
        // latches on the way out branch back to them in reverse order.
        let depth = 2000;
        let mut ends: Vec<(u8, usize, usize)> = (0..depth).map(|_| (1, 0, 0)).collect();
        for k in (0..depth).rev() {
            ends.push((3, k, 2 * depth - k));
        }
        ends.push((2, 0, 0));
        let f = graph(&ends);
        let cfg = Cfg::new(&f);
        assert_eq!(cfg.loops.len(), depth);
        let inner = &cfg.loops[0];
        assert_eq!(
            (inner.header, inner.depth),
            (BlockId::new(depth - 1), depth as u32)
        );
        assert_eq!(inner.blocks.len(), 2);
        let outer = cfg.loop_with_header(BlockId::new(0)).unwrap();
        assert_eq!(
            (outer.depth, outer.parent, outer.blocks.len()),
            (1, None, 2 * depth)
        );
        // Every loop's blocks are a window onto one shared list.
        assert!(cfg
            .loops
            .iter()
            .all(|l| Arc::ptr_eq(&l.blocks.nest, &cfg.nest)));
        assert_eq!(cfg.nest.blocks.len(), 2 * depth);
    }
}
