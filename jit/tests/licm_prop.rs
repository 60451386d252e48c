//! Property tests of LICM on random loop nests over globals.
//!
//! For a single goroutine, hoisting a load out of a loop that cannot change
//! the global is invisible: the optimised program must print the same
//! lines and leave the same globals. The programs are run by a small
//! evaluator of the single-goroutine subset they use (below), until the
//! project's interpreter can take its place.
//!
//! On the same programs the test checks that LICM hoists exactly when IR.md
//! allows it: after the pass no loop without a barrier still loads a
//! global it does not store, and every hoisted load left a loop without a
//! barrier and without a store to its global.

use std::collections::HashSet;
use std::fmt::Write;

use proptest::prelude::*;

use preempt_jit::ir::cfg::Cfg;
use preempt_jit::ir::{
    self, ArmKind, Function, GlobalId, InstKind, Opcode, Operand, Program, TermKind,
};
use preempt_jit::opt::{self, hoisted_loads, loop_barrier};

const NREG: u8 = 4;
const NGLOB: u8 = 3;

// ---------------------------------------------------------------------------
// Random programs

#[derive(Clone, Copy, Debug)]
enum Layout {
    /// `h: br cond, body, exit` ... `jmp h`
    While,
    /// The body is the header and is entered by falling through;
    /// `br cond, h, exit` at the end.
    DoWhile,
    /// `jmp h; body: ... (falls into) h: br cond, body, exit`: the latch
    /// falls through into the header.
    Rotated,
}

#[derive(Clone, Copy, Debug)]
enum ArOp {
    Add,
    Sub,
    Mul,
    Xor,
    Lt,
    Eq,
}

#[derive(Clone, Debug)]
enum Stmt {
    Load(u8, u8),
    LoadAtomic(u8, u8),
    Store(u8, u8),
    StoreAtomic(u8, u8),
    AddAtomic(u8, u8),
    Arith(u8, ArOp, u8, u8),
    Print(u8),
    Yield,
    SelectDefault,
    /// Back to the innermost loop's header while under its bound: a second
    /// latch.
    Continue,
    If(u8, Vec<Stmt>, Vec<Stmt>),
    /// Layout, trip count, whether the header is entered from two places
    /// (so a pre-header must be made), body.
    Loop(Layout, u8, bool, Vec<Stmt>),
}

#[derive(Clone, Debug)]
struct Prog {
    inits: Vec<i64>,
    /// A loop whose header is the entry block of `@main`, with its trip
    /// count (kept in the global `@k`).
    entry_loop: Option<(u8, Vec<Stmt>)>,
    body: Vec<Stmt>,
}

fn reg() -> impl Strategy<Value = u8> {
    0..NREG
}
fn glob() -> impl Strategy<Value = u8> {
    0..NGLOB
}

fn stmt() -> impl Strategy<Value = Stmt> {
    let arop = prop_oneof![
        Just(ArOp::Add),
        Just(ArOp::Sub),
        Just(ArOp::Mul),
        Just(ArOp::Xor),
        Just(ArOp::Lt),
        Just(ArOp::Eq),
    ];
    // Loads are common and barriers rare, so that most loops hoist
    // something and some do not.
    let leaf = prop_oneof![
        8 => (reg(), glob()).prop_map(|(r, g)| Stmt::Load(r, g)),
        3 => (glob(), reg()).prop_map(|(g, r)| Stmt::Store(g, r)),
        1 => (reg(), glob()).prop_map(|(r, g)| Stmt::LoadAtomic(r, g)),
        1 => (glob(), reg()).prop_map(|(g, r)| Stmt::StoreAtomic(g, r)),
        1 => (reg(), glob()).prop_map(|(r, g)| Stmt::AddAtomic(r, g)),
        6 => (reg(), arop, reg(), reg()).prop_map(|(d, o, a, b)| Stmt::Arith(d, o, a, b)),
        1 => reg().prop_map(Stmt::Print),
        1 => Just(Stmt::Yield),
        1 => Just(Stmt::SelectDefault),
        1 => Just(Stmt::Continue),
    ];
    let layout = prop_oneof![
        Just(Layout::While),
        Just(Layout::DoWhile),
        Just(Layout::Rotated)
    ];
    leaf.prop_recursive(3, 32, 4, move |inner| {
        prop_oneof![
            3 => (layout.clone(), 0..4u8, any::<bool>(), prop::collection::vec(inner.clone(), 0..5))
                .prop_map(|(l, n, two, b)| Stmt::Loop(l, n, two, b)),
            1 => (reg(), prop::collection::vec(inner.clone(), 0..3), prop::collection::vec(inner, 0..3))
                .prop_map(|(r, t, e)| Stmt::If(r, t, e)),
        ]
    })
}

fn program() -> impl Strategy<Value = Prog> {
    (
        prop::collection::vec(-3i64..4, NGLOB as usize),
        prop::option::weighted(0.25, (1..4u8, prop::collection::vec(stmt(), 0..4))),
        prop::collection::vec(stmt(), 1..5),
    )
        .prop_map(|(inits, entry_loop, body)| Prog {
            inits,
            entry_loop,
            body,
        })
}

/// Renders a [`Prog`] as PIR text.
struct Render {
    out: String,
    next: usize,
    /// (header label, counter register, trip count) of the enclosing loops.
    loops: Vec<(String, String, u8)>,
}

impl Render {
    fn fresh(&mut self) -> usize {
        self.next += 1;
        self.next
    }
    fn line(&mut self, s: &str) {
        writeln!(self.out, "    {s}").unwrap();
    }
    fn label(&mut self, l: &str) {
        writeln!(self.out, "{l}:").unwrap();
    }

    fn stmts(&mut self, body: &[Stmt]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Load(r, g) => self.line(&format!("%r{r} = load @g{g}")),
            Stmt::LoadAtomic(r, g) => self.line(&format!("%r{r} = load.atomic @g{g}")),
            Stmt::Store(g, r) => self.line(&format!("store @g{g}, %r{r}")),
            Stmt::StoreAtomic(g, r) => self.line(&format!("store.atomic @g{g}, %r{r}")),
            Stmt::AddAtomic(r, g) => self.line(&format!("%r{r} = add.atomic @g{g}, 1")),
            Stmt::Arith(d, op, a, b) => {
                let m = match op {
                    ArOp::Add => "add",
                    ArOp::Sub => "sub",
                    ArOp::Mul => "mul",
                    ArOp::Xor => "xor",
                    ArOp::Lt => "lt",
                    ArOp::Eq => "eq",
                };
                self.line(&format!("%r{d} = {m} %r{a}, %r{b}"))
            }
            Stmt::Print(r) => self.line(&format!("print \"r{r}={{}}\", %r{r}")),
            Stmt::Yield => self.line("yield"),
            Stmt::SelectDefault => {
                let n = self.fresh();
                self.line(&format!("select default -> sd{n}"));
                self.label(&format!("sd{n}"));
            }
            Stmt::Continue => {
                let Some((header, counter, trips)) = self.loops.last().cloned() else {
                    return;
                };
                let n = self.fresh();
                self.line(&format!("%{counter} = add %{counter}, 1"));
                self.line(&format!("%k{n} = lt %{counter}, {trips}"));
                self.line(&format!("br %k{n}, {header}, c{n}"));
                self.label(&format!("c{n}"));
            }
            Stmt::If(r, then_, else_) => {
                let n = self.fresh();
                self.line(&format!("br %r{r}, t{n}, e{n}"));
                self.label(&format!("t{n}"));
                self.stmts(then_);
                self.line(&format!("jmp j{n}"));
                self.label(&format!("e{n}"));
                self.stmts(else_);
                self.label(&format!("j{n}"));
            }
            Stmt::Loop(layout, trips, two_entries, body) => {
                let n = self.fresh();
                let (h, i, t) = (format!("h{n}"), format!("i{n}"), *trips);
                self.line(&format!("%{i} = const 0"));
                if *two_entries {
                    self.line(&format!("br %r{}, ea{n}, eb{n}", n % NREG as usize));
                    self.label(&format!("ea{n}"));
                    self.line(&format!("jmp {h}"));
                    self.label(&format!("eb{n}"));
                }
                self.loops.push((h.clone(), i.clone(), t));
                match layout {
                    Layout::While => {
                        self.label(&h);
                        self.line(&format!("%t{n} = lt %{i}, {t}"));
                        self.line(&format!("br %t{n}, b{n}, x{n}"));
                        self.label(&format!("b{n}"));
                        self.stmts(body);
                        self.line(&format!("%{i} = add %{i}, 1"));
                        self.line(&format!("jmp {h}"));
                    }
                    Layout::DoWhile => {
                        self.label(&h);
                        self.stmts(body);
                        self.line(&format!("%{i} = add %{i}, 1"));
                        self.line(&format!("%t{n} = lt %{i}, {t}"));
                        self.line(&format!("br %t{n}, {h}, x{n}"));
                    }
                    Layout::Rotated => {
                        self.line(&format!("jmp {h}"));
                        self.label(&format!("b{n}"));
                        self.stmts(body);
                        self.line(&format!("%{i} = add %{i}, 1"));
                        self.label(&h);
                        self.line(&format!("%t{n} = lt %{i}, {t}"));
                        self.line(&format!("br %t{n}, b{n}, x{n}"));
                    }
                }
                self.loops.pop();
                self.label(&format!("x{n}"));
            }
        }
    }
}

fn render(p: &Prog) -> String {
    let mut r = Render {
        out: String::new(),
        next: 0,
        loops: Vec::new(),
    };
    for (g, v) in p.inits.iter().enumerate() {
        writeln!(r.out, "global @g{g}: i64 = {v}").unwrap();
    }
    r.out.push_str("global @k: i64 = 0\n\nfunc @main() {\n");
    if p.entry_loop.is_some() {
        r.label("top");
    }
    for i in 0..NREG {
        r.line(&format!("%r{i} = const {}", i + 1));
    }
    if let Some((trips, body)) = &p.entry_loop {
        r.stmts(body);
        r.line("%ek = load @k");
        r.line("%ek = add %ek, 1");
        r.line("store @k, %ek");
        r.line(&format!("%et = lt %ek, {trips}"));
        r.line("br %et, top, rest");
        r.label("rest");
    }
    r.stmts(&p.body);
    let loads: Vec<String> = (0..NGLOB).map(|g| format!("%f{g}")).collect();
    for g in 0..NGLOB {
        r.line(&format!("%f{g} = load @g{g}"));
    }
    r.line(&format!(
        "print \"globals {}\", {}",
        vec!["{}"; NGLOB as usize].join(" "),
        loads.join(", ")
    ));
    let regs: Vec<String> = (0..NREG).map(|i| format!("%r{i}")).collect();
    r.line(&format!(
        "print \"regs {}\", {}",
        vec!["{}"; NREG as usize].join(" "),
        regs.join(", ")
    ));
    r.line("ret");
    r.out.push_str("}\n");
    r.out
}

// ---------------------------------------------------------------------------
// A single-goroutine evaluator of the subset above

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    stdout: Vec<String>,
    globals: Vec<i64>,
}

fn run(prog: &Program) -> Result<Outcome, String> {
    const STEP_LIMIT: usize = 1_000_000;
    let f = prog.func(prog.main().ok_or("no @main")?);
    let mut regs: Vec<Option<i64>> = vec![None; f.regs.len()];
    let mut globals: Vec<i64> = prog.globals.iter().map(|g| g.init).collect();
    let mut stdout = Vec::new();
    let mut b = 0usize;
    let mut steps = 0usize;
    let val = |regs: &[Option<i64>], o: Operand| -> Result<i64, String> {
        match o {
            Operand::Reg(r) => {
                regs[r.index()].ok_or_else(|| format!("%{} undefined", f.reg_name(r)))
            }
            Operand::Imm(v) => Ok(v),
            Operand::Nil => Err("nil in an i64 program".into()),
        }
    };
    loop {
        let block = &f.blocks[b];
        steps += block.insts.len() + 1;
        if steps > STEP_LIMIT {
            return Err("step limit".into());
        }
        for inst in &block.insts {
            match &inst.kind {
                InstKind::Const { dst, value } => regs[dst.index()] = Some(*value),
                InstKind::Unary {
                    op: Opcode::Copy,
                    dst,
                    arg,
                } => regs[dst.index()] = Some(val(&regs, *arg)?),
                InstKind::Binary { op, dst, args } => {
                    let (x, y) = (val(&regs, args[0])?, val(&regs, args[1])?);
                    regs[dst.index()] = Some(match op {
                        Opcode::Add => x.wrapping_add(y),
                        Opcode::Sub => x.wrapping_sub(y),
                        Opcode::Mul => x.wrapping_mul(y),
                        Opcode::Xor => x ^ y,
                        Opcode::Lt => i64::from(x < y),
                        Opcode::Eq => i64::from(x == y),
                        other => return Err(format!("unsupported {other}")),
                    });
                }
                InstKind::Load { dst, global, .. } => {
                    regs[dst.index()] = Some(globals[global.index()])
                }
                InstKind::Store { global, value, .. } => {
                    globals[global.index()] = val(&regs, *value)?
                }
                InstKind::AtomicAdd { dst, global, value } => {
                    let g = &mut globals[global.index()];
                    *g = g.wrapping_add(val(&regs, *value)?);
                    regs[dst.index()] = Some(*g);
                }
                InstKind::Print { format, args } => {
                    let mut line = String::new();
                    let mut parts = format.split("{}");
                    line.push_str(parts.next().unwrap_or_default());
                    for (part, a) in parts.zip(args) {
                        line.push_str(&val(&regs, *a)?.to_string());
                        line.push_str(part);
                    }
                    stdout.push(line);
                }
                InstKind::Effect {
                    op: Opcode::Yield, ..
                } => {}
                other => return Err(format!("unsupported {other:?}")),
            }
        }
        b = match block.term.as_ref().map(|t| &t.kind) {
            None => b + 1,
            Some(TermKind::Jmp { target }) => target.index(),
            Some(TermKind::Br { cond, then_, else_ }) => {
                if val(&regs, *cond)? != 0 {
                    then_.index()
                } else {
                    else_.index()
                }
            }
            Some(TermKind::Ret { .. }) => return Ok(Outcome { stdout, globals }),
            Some(TermKind::Select { arms })
                if arms.len() == 1 && arms[0].kind == ArmKind::Default =>
            {
                arms[0].target.index()
            }
            Some(other) => return Err(format!("unsupported {other:?}")),
        };
    }
}

// ---------------------------------------------------------------------------
// Checks

fn plain_loads_and_stores(
    f: &Function,
    blocks: &[ir::BlockId],
) -> (Vec<GlobalId>, HashSet<GlobalId>) {
    let mut loads = Vec::new();
    let mut stores = HashSet::new();
    for &b in blocks {
        for inst in &f.blocks[b.index()].insts {
            match inst.kind {
                InstKind::Load {
                    op: Opcode::Load,
                    global,
                    ..
                } => loads.push(global),
                InstKind::Store { global, .. } => {
                    stores.insert(global);
                }
                _ => {}
            }
        }
    }
    (loads, stores)
}

/// Loops of `f` that LICM must hoist something out of.
fn hoistable_loops(f: &Function) -> usize {
    let cfg = Cfg::new(f);
    cfg.loops
        .iter()
        .filter(|l| {
            let (loads, stores) = plain_loads_and_stores(f, &l.blocks);
            loop_barrier(f, l).is_none() && loads.iter().any(|g| !stores.contains(g))
        })
        .count()
}

/// After LICM: nothing hoistable is left in any loop, and every hoisted load
/// left a loop it was allowed to leave.
fn check_exact(f: &Function) -> Result<(), TestCaseError> {
    let cfg = Cfg::new(f);
    for l in &cfg.loops {
        let (loads, stores) = plain_loads_and_stores(f, &l.blocks);
        if loop_barrier(f, l).is_none() {
            for g in loads {
                prop_assert!(
                    stores.contains(&g),
                    "load of {g} left in loop {}",
                    f.block_name(l.header)
                );
            }
        }
    }
    for h in hoisted_loads(f) {
        let l = cfg.loop_with_header(h.header);
        prop_assert!(l.is_some(), "mark names a block that is no loop header");
        let l = l.unwrap();
        prop_assert!(!l.contains(h.block));
        prop_assert!(loop_barrier(f, l).is_none());
        let (_, stores) = plain_loads_and_stores(f, &l.blocks);
        prop_assert!(!stores.contains(&h.global));
    }
    Ok(())
}

proptest! {
    // PREEMPT_PROPTEST_DIVISOR=N runs 1/N of the cases (the aarch64 lane, under qemu).
    #![proptest_config(ProptestConfig {
        cases: (300 / std::env::var("PREEMPT_PROPTEST_DIVISOR")
            .map_or(1, |d| d.parse().expect("PREEMPT_PROPTEST_DIVISOR: a positive integer")))
        .max(1),
        ..ProptestConfig::default()
    })]

    #[test]
    fn licm_is_exact_and_preserves_single_goroutine_semantics(prog in program()) {
        let src = render(&prog);
        let mut p0 = ir::parse(&src).map_err(|e| TestCaseError::fail(e.render("gen", &src)))?;
        ir::verify(&mut p0).map_err(|e| TestCaseError::fail(e.render("gen", &src)))?;

        let mut same = p0.clone();
        opt::optimize(&mut same, 0);
        prop_assert_eq!(ir::print(&same), ir::print(&p0));

        let mut p1 = p0.clone();
        let stats = opt::licm::run(&mut p1);
        let text = ir::print(&p1);
        let expected_loops: usize = p0.funcs.iter().map(hoistable_loops).sum();
        prop_assert_eq!(stats.loops, expected_loops, "\n{}", text);
        for f in &p1.funcs {
            check_exact(f)?;
        }

        let r0 = run(&p0);
        prop_assert!(r0.is_ok(), "{:?}\n{}", r0, src);
        let r1 = run(&p1);
        prop_assert_eq!(r0, r1, "\n{}\n----\n{}", src, text);

        // The result is a PIR program like any other.
        let mut back = ir::parse(&text).map_err(|e| TestCaseError::fail(e.render("opt", &text)))?;
        prop_assert_eq!(ir::print(&back), text.clone());
        ir::verify(&mut back).map_err(|e| TestCaseError::fail(e.render("opt", &text)))?;
        prop_assert_eq!(&back, &p1);
        let mut again = p1.clone();
        opt::optimize(&mut again, 1);
        prop_assert_eq!(ir::print(&again), text);
    }
}
