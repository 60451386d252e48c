//! Linear-scan register allocation over PIR registers.
//!
//! PIR registers are mutable locals, so each one is allocated as a whole:
//! one location for its entire life. Its live interval is the hull of every
//! program point where it is live (liveness by backward dataflow over the
//! blocks in layout order); a value live around a loop's back-edge is live
//! across the whole loop, so loop values stay in one register for the loop.
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

use crate::ir::cfg::Cfg;
use crate::ir::{BlockId, Function, InstKind, Reg, TermKind};

/// A fixed-size bit set over register indices.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    pub fn new(n: usize) -> BitSet {
        BitSet {
            words: vec![0; n.div_ceil(64)],
        }
    }
    pub fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }
    pub fn remove(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }
    pub fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }
    /// `self |= other`; returns whether `self` changed.
    pub fn union_with(&mut self, other: &BitSet) -> bool {
        let mut changed = false;
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            let n = *a | *b;
            changed |= n != *a;
            *a = n;
        }
        changed
    }
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &bits)| {
            let mut bits = bits;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + i)
            })
        })
    }
}

/// The registers a backend offers the allocator, by hardware number.
#[derive(Clone, Copy, Debug)]
pub struct RegisterFile {
    /// Clobbered by calls; preferred for values that do not cross one.
    pub caller_saved: &'static [u8],
    /// Preserved by calls; saved in the prologue of a function using them.
    pub callee_saved: &'static [u8],
}

/// Where a PIR register lives for its whole life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Location {
    /// A machine register, by hardware number.
    Reg(u8),
    /// Spill slot `k` of the frame.
    Spill(u32),
    /// The incoming stack slot of parameter `i` (a spilled parameter needs
    /// no copy).
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
    /// Registers live at the end of each block (for compare/branch fusion).
    pub live_out: Vec<BitSet>,
    pub cfg: Cfg,
}

impl Allocation {
    pub fn location(&self, r: Reg) -> Location {
        self.locations[r.index()]
    }
}

/// Words of outgoing area an instruction needs: its operands, stored for
/// the callee or the runtime.
fn outgoing_words(kind: &InstKind) -> u32 {
    let mut n = 0;
    kind.for_each_operand(|_| n += 1);
    n
}

/// Allocates every register of `func` (verified) to a location.
pub fn allocate(func: &Function, regs: &RegisterFile) -> Allocation {
    let cfg = Cfg::new(func);
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

    // Local use/def sets, then liveness to a fixed point.
    let mut uses = vec![BitSet::new(nregs); nblocks];
    let mut defs = vec![BitSet::new(nregs); nblocks];
    for (b, block) in func.blocks.iter().enumerate() {
        let (u, d) = (&mut uses[b], &mut defs[b]);
        let read = |r: Reg, d: &BitSet, u: &mut BitSet| {
            if !d.contains(r.index()) {
                u.insert(r.index());
            }
        };
        for inst in &block.insts {
            inst.kind.for_each_operand(|o| {
                if let Some(r) = o.reg() {
                    read(r, d, u)
                }
            });
            if let Some(r) = inst.kind.def() {
                d.insert(r.index());
            }
        }
        if let Some(t) = &block.term {
            t.kind.for_each_operand(|o| {
                if let Some(r) = o.reg() {
                    read(r, d, u)
                }
            });
            if let TermKind::Select { arms } = &t.kind {
                for arm in arms {
                    if let crate::ir::ArmKind::Recv { into: Some(v), .. } = arm.kind {
                        d.insert(v.index());
                    }
                }
            }
        }
    }
    let mut live_in = vec![BitSet::new(nregs); nblocks];
    let mut live_out = vec![BitSet::new(nregs); nblocks];
    let mut changed = true;
    while changed {
        changed = false;
        for &b in cfg.rpo.iter().rev() {
            let b = b.index();
            let mut out = BitSet::new(nregs);
            for &s in &cfg.succs[b] {
                out.union_with(&live_in[s.index()]);
            }
            // in = uses ∪ (out − defs)
            let mut inn = uses[b].clone();
            for r in out.iter() {
                if !defs[b].contains(r) {
                    inn.insert(r);
                }
            }
            if out != live_out[b] {
                live_out[b] = out;
                changed = true;
            }
            if inn != live_in[b] {
                live_in[b] = inn;
                changed = true;
            }
        }
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
    let mut call_points = Vec::new();
    let mut outgoing = 2u32; // fault paths pass up to two words
    for (b, block) in func.blocks.iter().enumerate() {
        if !cfg.is_reachable(BlockId::new(b)) {
            continue;
        }
        let scale = 10f64.powi(cfg.loop_depth[b].min(6) as i32);
        for r in live_in[b].iter() {
            touch(r, block_start[b], &mut start, &mut end);
        }
        for r in live_out[b].iter() {
            touch(r, block_end[b], &mut start, &mut end);
        }
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
            outgoing = outgoing.max(outgoing_words(&inst.kind));
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
            outgoing = outgoing.max(n);
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
            // crosses it when live both before p and after p + 1.
            let crosses_call = call_points.iter().any(|&p| s < p && e > p + 1);
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
    let mut spill_slots = 0u32;
    let mut spill = |r: Reg, locations: &mut [Location]| {
        locations[r.index()] = match func.params.iter().position(|&p| p == r) {
            Some(i) => Location::Param(i as u32),
            None => {
                spill_slots += 1;
                Location::Spill(spill_slots - 1)
            }
        };
    };
    let mut free: Vec<u8> = regs
        .caller_saved
        .iter()
        .chain(regs.callee_saved)
        .copied()
        .collect();
    let mut active: Vec<(Interval, u8)> = Vec::new();
    let mut used_callee_saved: Vec<u8> = Vec::new();
    for iv in intervals {
        // Expire intervals that ended before this one starts.
        active.retain(|(a, r)| {
            if a.end < iv.start {
                free.push(*r);
                false
            } else {
                true
            }
        });
        let allowed = |r: u8| !iv.crosses_call || regs.callee_saved.contains(&r);
        // Prefer caller-saved registers for values that do not cross calls,
        // so callee-saved ones stay available (and unsaved) where possible.
        let pick = free
            .iter()
            .enumerate()
            .filter(|&(_, &r)| allowed(r))
            .min_by_key(|&(_, &r)| (regs.callee_saved.contains(&r), r))
            .map(|(i, _)| i);
        let reg = match pick {
            Some(i) => Some(free.swap_remove(i)),
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
                        Some(r)
                    }
                    _ => None,
                }
            }
        };
        match reg {
            Some(r) => {
                locations[iv.reg.index()] = Location::Reg(r);
                if regs.callee_saved.contains(&r) && !used_callee_saved.contains(&r) {
                    used_callee_saved.push(r);
                }
                active.push((iv, r));
            }
            None => spill(iv.reg, &mut locations),
        }
    }
    used_callee_saved.sort_unstable();
    Allocation {
        locations,
        spill_slots,
        used_callee_saved,
        outgoing_words: outgoing,
        live_out,
        cfg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse;

    const FILE: RegisterFile = RegisterFile {
        caller_saved: &[1, 2],
        callee_saved: &[10],
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
}
