//! Accumulator recursion elimination: the last self-call of a recursive
//! function becomes a jump back to its start, as LLVM's tail-call
//! elimination does.
//!
//! ```text
//! func @fib(%n: i64) -> i64 {          func @fib(%n: i64) -> i64 {
//!     %small = lt %n, 2                    %tailrec.acc = const 0
//!     br %small, base, step                jmp tailrec
//! base:                                tailrec:
//!     ret %n                               %small = lt %n, 2
//! step:                          =>        br %small, base, step
//!     %a = sub %n, 1                   base:
//!     %b = sub %n, 2                       %tailrec.acc = add %tailrec.acc, %n
//!     %x = call @fib(%a)                   ret %tailrec.acc
//!     %y = call @fib(%b)               step:
//!     %r = add %x, %y                      %a = sub %n, 1
//!     ret %r                               %b = sub %n, 2
//! }                                        %x = call @fib(%a)
//!                                          %tailrec.acc = add %tailrec.acc, %x
//!                                          %n = copy %b
//!                                          jmp tailrec
//!                                      }
//! ```
//!
//! `f(n) = x op f(b)` with `op` associative and commutative on wrapping
//! i64 (`add`, `mul`, `and`, `or`, `xor`) is `acc op x` carried into the
//! next round; every `ret X` of the base case returns `acc op X`; `acc`
//! starts at the identity of `op` (0, 1 or -1). A plain tail self-call
//! (`%y = call @f(...)` then `ret %y`, or `call @f(...)` then `ret`) needs
//! no accumulator. The loop is an ordinary loop to the backends, so every
//! preemption mechanism treats its back-edge as it treats any other.
//!
//! # What must not change, and the shape that guarantees it
//!
//! Each eliminated call was a frame on the stack while its callee ran, so
//! the pass is only sound where no one can see those frames and the stack
//! they took: a fault's traceback lists every frame, and a recursion that
//! runs out of stack is `fatal error: stack overflow` (a runaway tail
//! recursion must stay one, not become a loop that never ends). The pass
//! therefore only rewrites a function of this shape:
//!
//! 1. Nothing in it can fault, block or enter the runtime: only `const`,
//!    `copy`, `neg`, `not`, the arithmetic, shift and comparison opcodes
//!    (`div` and `rem` only by a non-zero literal), calls of the function
//!    itself, `jmp`, `br` and `ret`. The one fault left is stack overflow.
//! 2. No instruction writes a parameter, and no edge enters the first
//!    block.
//! 3. The first block makes no call and ends in `br` on `lt|le|gt|ge %p,
//!    K` for an i64 parameter `%p` (the condition register written only
//!    there): one side is the base case, from which no block with a call
//!    can be reached; the other starts a straight chain of blocks (no
//!    `br`) that ends in the eliminated call and its `ret`.
//! 4. Every self-call passes `%p - d` (a register written once, by `sub
//!    %p, d` or `add %p, -d`, with `d` >= 1 and `K - d` not overflowing) and
//!    every other parameter unchanged.
//! 5. Before the eliminated call the chain makes a retained self-call whose
//!    `d` is no larger than the eliminated one's.
//!
//! By 1-4 the depth of `f(p)`'s recursion depends on `p` alone and never
//! decreases as `p` grows; by 5 the retained call, which runs first,
//! reaches at least the depth the eliminated one would. So the first time
//! the original program's stack reaches any depth, no eliminated frame is
//! on it: the program runs out of stack exactly when the original does,
//! with the same frames in the traceback (the call sites keep their blocks
//! and positions; the first block keeps its name, which the frame that
//! could not be entered reports). The rewritten function has one register
//! more (the accumulator), which can make its frame a word larger, like
//! any optimisation that adds a register. Under `coop`, where a loop's
//! back-edge is no preemption point, every round still makes the retained
//! call and so passes a function entry.
//!
//! A function whose only self-call is in tail position (`count(n) =
//! count(n - 1) + 1`) fails 5 and is left alone: its frames are all the
//! stack it uses.

use std::collections::HashSet;

use super::licm::{block_names, fresh_name, insert_block, renumber_registers_in_text_order};
use crate::ir::{
    Block, BlockId, FuncId, Function, Inst, InstKind, Opcode, Operand, Program, Reg, TermKind,
    Terminator, Type,
};

/// Runs the pass on every function of `prog`; returns how many functions
/// it rewrote.
pub fn run(prog: &mut Program) -> usize {
    let mut rewritten = 0;
    for (i, func) in prog.funcs.iter_mut().enumerate() {
        rewritten += usize::from(run_function(FuncId::new(i), func));
    }
    rewritten
}

/// Runs the pass on `func`, function `id` of its program (the pass reads
/// nothing else of it); whether it rewrote it.
pub fn run_function(id: FuncId, func: &mut Function) -> bool {
    match plan(id, func) {
        Some(plan) => {
            rewrite(func, &plan);
            true
        }
        None => false,
    }
}

/// What [`plan`] found in a function it can rewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Plan {
    /// The parameter that decreases (`%p`).
    param: Reg,
    /// Blocks reachable from the base side of the guard.
    base: Vec<BlockId>,
    /// The block ending in the eliminated call and its `ret`.
    last: BlockId,
    /// Index of the eliminated call in `last`.
    call_at: usize,
    /// The register the eliminated call passes for `%p`.
    next: Reg,
    /// The combining operation and its other operand, if any.
    combine: Option<(Opcode, Operand)>,
}

/// Whether an instruction may stand in a function the pass rewrites
/// (condition 1): it cannot fault, block or enter the runtime.
fn allowed(self_id: FuncId, kind: &InstKind) -> bool {
    use Opcode::*;
    match kind {
        InstKind::Const { .. } => true,
        InstKind::Unary { op, .. } => matches!(op, Copy | Neg | Not),
        InstKind::Binary { op, args, .. } => match op {
            Add | Sub | Mul | And | Or | Xor | Shl | Shr | Sar | Eq | Ne | Lt | Le | Gt | Ge => {
                true
            }
            Div | Rem => matches!(args[1], Operand::Imm(k) if k != 0),
            _ => false,
        },
        InstKind::Call { func, .. } => *func == self_id,
        _ => false,
    }
}

fn is_self_call(self_id: FuncId, inst: &Inst) -> bool {
    matches!(&inst.kind, InstKind::Call { func, .. } if *func == self_id)
}

/// The identity of an accumulating operation.
fn identity(op: Opcode) -> Option<i64> {
    match op {
        Opcode::Add | Opcode::Or | Opcode::Xor => Some(0),
        Opcode::Mul => Some(1),
        Opcode::And => Some(-1),
        _ => None,
    }
}

/// Finds whether `func` has the shape of the module documentation, and
/// what to rewrite if so.
fn plan(self_id: FuncId, func: &Function) -> Option<Plan> {
    let blocks = &func.blocks;
    // Condition 1, and who writes each register.
    let mut defs = vec![0usize; func.regs.len()];
    let mut def_of: Vec<Option<&InstKind>> = vec![None; func.regs.len()];
    for block in blocks {
        if !block.insts.iter().all(|i| allowed(self_id, &i.kind)) {
            return None;
        }
        if let Some(t) = &block.term {
            if !matches!(
                t.kind,
                TermKind::Jmp { .. } | TermKind::Br { .. } | TermKind::Ret { .. }
            ) {
                return None;
            }
        }
        for inst in &block.insts {
            if let Some(d) = inst.kind.def() {
                defs[d.index()] += 1;
                def_of[d.index()] = Some(&inst.kind);
            }
        }
    }
    // Condition 2.
    if func.params.iter().any(|p| defs[p.index()] > 0) {
        return None;
    }
    let ids = (0..blocks.len()).map(BlockId::new);
    if ids
        .clone()
        .any(|b| func.successors(b).contains(&BlockId::new(0)))
    {
        return None;
    }
    // Condition 3: the guard.
    let entry = blocks.first()?;
    if entry.insts.iter().any(|i| is_self_call(self_id, i)) {
        return None;
    }
    let Some(Terminator {
        kind:
            TermKind::Br {
                cond: Operand::Reg(c),
                then_,
                else_,
            },
        ..
    }) = &entry.term
    else {
        return None;
    };
    if defs[c.index()] != 1 || !entry.insts.iter().any(|i| i.kind.def() == Some(*c)) {
        return None;
    }
    let Some(InstKind::Binary {
        op,
        args: [Operand::Reg(p), Operand::Imm(k)],
        ..
    }) = def_of[c.index()]
    else {
        return None;
    };
    let (p, k) = (*p, *k);
    if !func.params.contains(&p) || func.reg_type(p) != Type::I64 {
        return None;
    }
    // The base case is taken when p < limit.
    let (limit, base_start, step) = match op {
        Opcode::Lt => (k, *then_, *else_),
        Opcode::Le => (k.checked_add(1)?, *then_, *else_),
        Opcode::Ge => (k, *else_, *then_),
        Opcode::Gt => (k.checked_add(1)?, *else_, *then_),
        _ => return None,
    };
    let base = reachable(func, base_start);
    if base.iter().any(|b| {
        blocks[b.index()]
            .insts
            .iter()
            .any(|i| is_self_call(self_id, i))
    }) {
        return None;
    }
    // The straight chain from `step` to a `ret`.
    let mut chain = Vec::new();
    let mut b = step;
    loop {
        if chain.contains(&b) || base.contains(&b) {
            return None;
        }
        chain.push(b);
        match blocks[b.index()].term.as_ref().map(|t| &t.kind) {
            Some(TermKind::Ret { .. }) => break,
            Some(TermKind::Jmp { target }) => b = *target,
            None if b.index() + 1 < blocks.len() => b = BlockId::new(b.index() + 1),
            _ => return None,
        }
    }
    let last = *chain.last()?;
    let last_block = &blocks[last.index()];
    let Some(TermKind::Ret { value }) = last_block.term.as_ref().map(|t| &t.kind) else {
        return None;
    };
    // The eliminated call, and what combines its result.
    let n = last_block.insts.len();
    let (call_at, combine) = match (value, last_block.insts.last().map(|i| &i.kind)) {
        (
            Some(Operand::Reg(r)),
            Some(InstKind::Binary {
                op,
                dst,
                args: [a0, a1],
            }),
        ) if dst == r && identity(*op).is_some() && n >= 2 => {
            let InstKind::Call { dst: Some(y), .. } = &last_block.insts[n - 2].kind else {
                return None;
            };
            let other = match (a0, a1) {
                (Operand::Reg(a), x) if a == y && *x != Operand::Reg(*y) => *x,
                (x, Operand::Reg(a)) if a == y && *x != Operand::Reg(*y) => *x,
                _ => return None,
            };
            (n - 2, Some((*op, other)))
        }
        (value, Some(InstKind::Call { dst, .. })) if *value == dst.map(Operand::Reg) => {
            (n - 1, None)
        }
        _ => return None,
    };
    if !is_self_call(self_id, &last_block.insts[call_at]) {
        return None;
    }
    // Condition 4 for every self-call of the chain, in order; condition 5.
    let pi = func.params.iter().position(|&q| q == p)?;
    let decrement = |args: &[Operand]| -> Option<(Reg, i64)> {
        for (j, a) in args.iter().enumerate() {
            if j != pi && *a != Operand::Reg(func.params[j]) {
                return None;
            }
        }
        let Operand::Reg(t) = args[pi] else {
            return None;
        };
        if defs[t.index()] != 1 {
            return None;
        }
        let d = match def_of[t.index()]? {
            InstKind::Binary {
                op: Opcode::Sub,
                args: [Operand::Reg(q), Operand::Imm(d)],
                ..
            } if *q == p => *d,
            InstKind::Binary {
                op: Opcode::Add,
                args: [Operand::Reg(q), Operand::Imm(d)],
                ..
            } if *q == p => d.checked_neg()?,
            _ => return None,
        };
        (d >= 1 && limit.checked_sub(d).is_some()).then_some((t, d))
    };
    let mut retained_min: Option<i64> = None;
    for &b in &chain {
        for (i, inst) in blocks[b.index()].insts.iter().enumerate() {
            let InstKind::Call { func: f, args, .. } = &inst.kind else {
                continue;
            };
            debug_assert_eq!(*f, self_id);
            let (t, d) = decrement(args)?;
            if b == last && i == call_at {
                if retained_min.is_none_or(|m| m > d) {
                    return None;
                }
                return Some(Plan {
                    param: p,
                    base,
                    last,
                    call_at,
                    next: t,
                    combine,
                });
            }
            retained_min = Some(retained_min.map_or(d, |m| m.min(d)));
        }
    }
    None
}

/// Blocks reachable from `from`, `from` included, in the order found.
fn reachable(func: &Function, from: BlockId) -> Vec<BlockId> {
    let mut seen = vec![false; func.blocks.len()];
    let mut out = vec![from];
    seen[from.index()] = true;
    let mut i = 0;
    while i < out.len() {
        for s in func.successors(out[i]) {
            if !seen[s.index()] {
                seen[s.index()] = true;
                out.push(s);
            }
        }
        i += 1;
    }
    out
}

fn rewrite(func: &mut Function, plan: &Plan) {
    let reg_names: HashSet<String> = func.regs.iter().map(|r| r.name.to_string()).collect();
    let acc = plan.combine.map(|_| {
        let name = fresh_name("tailrec.acc", &reg_names);
        func.add_reg(name.as_str(), Some(Type::I64))
    });
    // Every `ret X` of the base case returns `acc op X`.
    if let (Some((op, _)), Some(acc)) = (plan.combine, acc) {
        for &b in &plan.base {
            let block = &mut func.blocks[b.index()];
            let Some(Terminator {
                kind: TermKind::Ret { value: Some(x) },
                span,
            }) = &mut block.term
            else {
                continue;
            };
            let span = *span;
            block.insts.push(Inst::new(
                InstKind::Binary {
                    op,
                    dst: acc,
                    args: [Operand::Reg(acc), *x],
                },
                span,
            ));
            *x = Operand::Reg(acc);
        }
    }
    // The eliminated call and its `ret` become the back-edge (to block 0,
    // which becomes block 1 when the new entry goes in front of it).
    let last = &mut func.blocks[plan.last.index()];
    let call_span = last.insts[plan.call_at].span;
    let tail: Vec<Inst> = last.insts.drain(plan.call_at..).collect();
    if let (Some((op, other)), Some(acc)) = (plan.combine, acc) {
        last.insts.push(Inst::new(
            InstKind::Binary {
                op,
                dst: acc,
                args: [Operand::Reg(acc), other],
            },
            tail.last().map_or(call_span, |i| i.span),
        ));
    }
    last.insts.push(Inst::new(
        InstKind::Unary {
            op: Opcode::Copy,
            dst: plan.param,
            arg: Operand::Reg(plan.next),
        },
        call_span,
    ));
    let ret_span = last.term.as_ref().map_or(call_span, |t| t.span);
    last.term = Some(Terminator {
        kind: TermKind::Jmp {
            target: BlockId::new(0),
        },
        span: ret_span,
    });
    // The new entry keeps the old one's name (a stack overflow's innermost
    // frame reports it); the old entry, now the loop header, gets a label.
    let header_label = fresh_name("tailrec", &block_names(func));
    let old = &mut func.blocks[0];
    let entry_label = old.label.replace(header_label);
    let entry_span = old.span;
    let mut insts = Vec::new();
    if let (Some((op, _)), Some(acc)) = (plan.combine, acc) {
        insts.push(Inst::new(
            InstKind::Const {
                dst: acc,
                value: identity(op).expect("plan only combines with an identity"),
            },
            entry_span,
        ));
    }
    let entry = Block {
        label: entry_label,
        span: entry_span,
        insts,
        term: Some(Terminator {
            kind: TermKind::Jmp {
                target: BlockId::new(0),
            },
            span: entry_span,
        }),
    };
    insert_block(func, 0, entry);
    renumber_registers_in_text_order(func);
    drop_unmentioned_registers(func);
}

/// Drops the registers no instruction mentions any more (the eliminated
/// call's result, its combination): after
/// [`renumber_registers_in_text_order`] they are the last ones, and the
/// parser would not make them from the printed text.
fn drop_unmentioned_registers(func: &mut Function) {
    let mut mentioned = vec![false; func.regs.len()];
    for p in &func.params {
        mentioned[p.index()] = true;
    }
    for block in &func.blocks {
        for inst in &block.insts {
            if let Some(d) = inst.kind.def() {
                mentioned[d.index()] = true;
            }
            inst.kind.for_each_operand(|o| {
                if let Operand::Reg(r) = o {
                    mentioned[r.index()] = true;
                }
            });
        }
        if let Some(t) = &block.term {
            t.kind.for_each_operand(|o| {
                if let Operand::Reg(r) = o {
                    mentioned[r.index()] = true;
                }
            });
        }
    }
    let keep = mentioned.iter().take_while(|&&m| m).count();
    debug_assert!(mentioned[keep..].iter().all(|&m| !m));
    func.regs.truncate(keep);
}
