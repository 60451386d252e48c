//! Golden encoding tests of the [`Machine`] hooks, in the manner of
//! Cranelift's `emit_tests.rs`: each case is one hook called with fixed
//! operands, listed with the bytes it emits and their disassembly by an
//! independent decoder (iced-x86, yaxpeax-arm). The expected listing of
//! each architecture lives beside its backend
//! (`isa/<arch>/emit_tests.golden`), so a changed encoding shows as a
//! one-line diff there, and an instruction that does not decode fails.
//!
//! The cases are written once, here, in PIR terms (`%a` in a register,
//! `%s` spilled, `%p` a parameter left in its incoming slot); each
//! backend's `emit_tests.rs` adds the cases only it has.
//!
//! `BLESS=1 cargo test -p preempt-jit --lib emit_tests` rewrites the
//! expected files; review the diff like code.

use std::fmt::Write;
use std::path::Path;

use dynasmrt::DynamicLabel;

use super::machine::{Cond, Machine, OldRef, Test, Val};
use super::{Location, Lower};
use crate::abi::CTX_RESULT2;
use crate::ir::{Opcode, Operand, Reg};

/// The function every case is emitted in: what the `%` names refer to.
const FUNCTION: &str = "func @f(%p: i64, %q: i64) -> i64 {
    %a = add %p, %q
    %b = add %a, %q
    %s = add %b, %a
    %x = add %s, %b
    ret %x
}
";

/// What a case emits, given a label bound at offset 0 (the target of
/// every branch, call and out-of-line path).
type Emit<M> = Box<dyn Fn(&mut Lower<'_, M>, DynamicLabel)>;

/// One case: a name, and what it emits.
pub(crate) struct Case<M: Machine> {
    pub name: String,
    pub emit: Emit<M>,
}

impl<M: Machine> Case<M> {
    pub fn new(
        name: impl Into<String>,
        emit: impl Fn(&mut Lower<'_, M>, DynamicLabel) + 'static,
    ) -> Case<M> {
        Case {
            name: name.into(),
            emit: Box::new(emit),
        }
    }
}

/// Where each `%` name of [`FUNCTION`] lives: `%a` and `%b` in the first
/// two caller-saved registers, `%x` in the first callee-saved one, `%s`
/// in spill slot 1, `%p` and `%q` in their incoming slots.
fn locations<M: Machine>(name: &str) -> Location {
    let caller = |i| Location::Reg(M::REGISTERS.caller_saved.iter().nth(i).expect("a register"));
    match name {
        "a" => caller(0),
        "b" => caller(1),
        "x" => Location::Reg(M::REGISTERS.callee_saved.iter().next().expect("a register")),
        "s" => Location::Spill(1),
        "p" => Location::Param(0),
        _ => Location::Param(1),
    }
}

/// The PIR register `%name` of [`FUNCTION`].
fn reg(name: &str) -> Reg {
    let prog = crate::ir::parse(FUNCTION).expect("the cases' function parses");
    let i = prog.funcs[0]
        .regs
        .iter()
        .position(|r| r.name == name)
        .unwrap_or_else(|| panic!("no %{name} in the cases' function"));
    Reg::new(i)
}

/// An operand: `%name`, `nil` or a number.
fn operand(text: &str) -> Operand {
    match text.strip_prefix('%') {
        Some(name) => Operand::Reg(reg(name)),
        None if text == "nil" => Operand::Nil,
        None => Operand::Imm(text.parse().expect("a number")),
    }
}

/// Where operand `text` is, in `cx`'s function.
pub(crate) fn val<M: Machine>(cx: &Lower<'_, M>, text: &str) -> Val {
    cx.val(operand(text))
}

/// The machine register of `%name`.
fn machine_reg<M: Machine>(name: &str) -> u8 {
    match locations::<M>(name) {
        Location::Reg(r) => r,
        other => panic!("%{name} is in {other:?}, not a register"),
    }
}

/// A constant no immediate form holds (0x1234_5678_9abc_def0).
const BIG: &str = "1311768467463790320";

/// The cases every architecture has.
fn shared<M: Machine>() -> Vec<Case<M>> {
    let mut cases: Vec<Case<M>> = Vec::new();
    for v in [
        0,
        1,
        -1,
        0x7fff_ffff,
        0x8000_0000,
        -0x8000_0000,
        0xffff_0000,
        0xffff_0000_ffff,
        -0x1_0000,
        0x1234_5678_9abc_def0,
        i64::MIN,
    ] {
        cases.push(Case::new(
            format!("mov_imm RESULT, {v:#x}"),
            move |cx, _| M::mov_imm(cx, M::RESULT, v),
        ));
    }
    for src in ["%a", "%s", "%p", "7", "-7", "nil"] {
        cases.push(Case::new(format!("load RESULT <- {src}"), move |cx, _| {
            let v = val(cx, src);
            cx.load(M::RESULT, v)
        }));
    }
    for dst in ["a", "s"] {
        cases.push(Case::new(
            format!("store %{dst} <- RESULT"),
            move |cx, _| cx.store(reg(dst), M::RESULT),
        ));
    }
    for (dst, src) in [
        ("a", "7"),
        ("a", "%b"),
        ("a", "%s"),
        ("s", "7"),
        ("s", "0"),
        ("s", "%a"),
        ("s", "%p"),
        ("s", BIG),
    ] {
        cases.push(Case::new(
            format!("assign %{dst} <- {src}"),
            move |cx, _| {
                let v = val(cx, src);
                M::assign(cx, reg(dst), v)
            },
        ));
    }
    for (i, src) in [(0, "%a"), (1, "7"), (1, "%s"), (2, "0")] {
        cases.push(Case::new(format!("outgoing {i} <- {src}"), move |cx, _| {
            let v = val(cx, src);
            M::outgoing(cx, i, v)
        }));
    }
    cases.push(Case::new("load_context SCRATCH, result2", |cx, _| {
        M::load_context(cx, M::SCRATCH, CTX_RESULT2)
    }));
    cases.push(Case::new("store_current_function 3", |cx, _| {
        M::store_current_function(cx, 3)
    }));
    cases.push(Case::new("prologue", |cx, l| {
        let check = cx.label();
        M::prologue(cx);
        M::stack_check(cx, check, l)
    }));
    cases.push(Case::new("epilogue", |cx, _| M::epilogue(cx)));
    cases.push(Case::new("jump", |cx, l| M::jump(cx, l)));
    cases.push(Case::new("call", |cx, l| M::call(cx, l)));
    for c in CONDS {
        cases.push(Case::new(format!("branch_if {c:?}"), move |cx, l| {
            M::branch_if(cx, Test::Flags(c), l)
        }));
    }
    cases.push(Case::new("branch_if NonZero(%a)", |cx, l| {
        M::branch_if(cx, Test::NonZero(machine_reg::<M>("a")), l)
    }));
    cases.push(Case::new("branch_if Zero(%a)", |cx, l| {
        M::branch_if(cx, Test::Zero(machine_reg::<M>("a")), l)
    }));
    for v in ["%a", "%s"] {
        cases.push(Case::new(
            format!("test_nonzero {v}; branch"),
            move |cx, l| {
                let v = val(cx, v);
                let t = M::test_nonzero(cx, v);
                M::branch_if(cx, t, l)
            },
        ));
    }
    for (a, b) in [
        ("%a", "%b"),
        ("%a", "5"),
        ("%a", "-5"),
        ("%a", "4096"),
        ("%a", "%s"),
        ("%s", "%a"),
        ("%s", "5"),
        ("%s", "%p"),
        ("0", "%a"),
        ("%a", BIG),
    ] {
        cases.push(Case::new(format!("compare {a}, {b}"), move |cx, _| {
            let (a, b) = (val(cx, a), val(cx, b));
            M::compare(cx, a, b)
        }));
    }
    cases.push(Case::new("compare_result 2", |cx, _| {
        M::compare_result(cx, 2)
    }));
    cases.push(Case::new("trap", |cx, _| M::trap(cx)));
    cases.push(Case::new("poll_check", |cx, l| M::poll_check(cx, l)));
    cases.push(Case::new("poll_page_address; poll_page_load", |cx, _| {
        M::poll_page_address(cx);
        M::poll_page_load(cx);
    }));
    cases.push(Case::new("enter_stub", |cx, l| M::enter_stub(cx, l)));
    cases.push(Case::new("slot_tag_operands", |cx, _| {
        M::slot_tag_operands(cx)
    }));
    cases.push(Case::new("index_operands", |cx, _| M::index_operands(cx)));
    cases.push(Case::new("barrier_test", |cx, l| M::barrier_test(cx, l)));
    cases.push(Case::new("shade_old_ref slot", |cx, l| {
        M::shade_old_ref(cx, l, OldRef::Slot)
    }));
    cases.push(Case::new("shade_old_ref global", |cx, l| {
        M::shade_old_ref(cx, l, OldRef::Global)
    }));
    for op in [Opcode::Neg, Opcode::Not] {
        for (dst, src) in [("a", "%a"), ("a", "%s"), ("s", "%b")] {
            cases.push(Case::new(
                format!("{op:?} %{dst} <- {src}"),
                move |cx, _| {
                    let v = val(cx, src);
                    M::unary(cx, op, reg(dst), v)
                },
            ));
        }
    }
    for op in [
        Opcode::Add,
        Opcode::Sub,
        Opcode::Mul,
        Opcode::And,
        Opcode::Or,
        Opcode::Xor,
        Opcode::Shl,
        Opcode::Shr,
        Opcode::Sar,
    ] {
        for (dst, x, y) in [
            ("a", "%a", "%b"),
            ("a", "%b", "%a"),
            ("a", "%b", "5"),
            ("a", "%b", "-5"),
            ("a", "%a", "%s"),
            ("s", "%a", "%b"),
            ("a", "0", "%b"),
            ("a", "%b", "0"),
            ("a", "%b", "64"),
            ("a", "%a", BIG),
        ] {
            cases.push(Case::new(
                format!("{op:?} %{dst} <- {x}, {y}"),
                move |cx, _| {
                    let (vx, vy) = (val(cx, x), val(cx, y));
                    M::arithmetic(cx, op, reg(dst), vx, vy)
                },
            ));
        }
    }
    for c in CONDS {
        for dst in ["a", "s"] {
            cases.push(Case::new(
                format!("set_from_flags {c:?} -> %{dst}"),
                move |cx, _| {
                    let w = M::set_from_flags(cx, c, reg(dst));
                    cx.store(reg(dst), w)
                },
            ));
        }
    }
    for op in [Opcode::Div, Opcode::Rem] {
        for (dst, x, y) in [
            ("a", "%a", "%b"),
            ("a", "%s", "%p"),
            ("s", "%a", "7"),
            ("a", "%b", "-1"),
        ] {
            cases.push(Case::new(
                format!("divide {op:?} %{dst} <- {x}, {y}"),
                move |cx, l| {
                    let (vx, vy) = (val(cx, x), val(cx, y));
                    let zero = matches!(vy, Val::Reg(_) | Val::Mem(_)).then_some(l);
                    M::divide(cx, op, reg(dst), vx, vy, zero)
                },
            ));
        }
    }
    cases.push(Case::new("object_length", |cx, _| M::object_length(cx)));
    cases.push(Case::new("slot_address", |cx, l| M::slot_address(cx, l)));
    for op in [Opcode::Get, Opcode::GetRef] {
        cases.push(Case::new(
            format!("load_slot_value {op:?}"),
            move |cx, l| {
                M::load_slot_value(cx, op, l);
            },
        ));
    }
    for op in [Opcode::Set, Opcode::SetRef] {
        cases.push(Case::new(
            format!("store_slot_value {op:?} %a"),
            move |cx, _| M::store_slot_value(cx, op, machine_reg::<M>("a")),
        ));
    }
    for op in [Opcode::Load, Opcode::LoadAtomic] {
        cases.push(Case::new(format!("load_global {op:?} %a"), move |cx, _| {
            M::load_global(cx, op, machine_reg::<M>("a"), GLOBAL)
        }));
    }
    cases.push(Case::new("global_address; store_global %a", |cx, _| {
        M::global_address(cx, GLOBAL);
        M::store_global(cx, machine_reg::<M>("a"));
    }));
    for v in ["%a", "%s", "0"] {
        cases.push(Case::new(
            format!("store_global_atomic {v}"),
            move |cx, _| {
                let v = val(cx, v);
                M::store_global_atomic(cx, GLOBAL, v)
            },
        ));
    }
    cases.push(Case::new("atomic_add %a", |cx, _| {
        let v = val(cx, "%a");
        M::atomic_add(cx, GLOBAL, v);
    }));
    cases.push(Case::new("compare_and_swap %a, %b", |cx, _| {
        let (o, n) = (val(cx, "%a"), val(cx, "%b"));
        M::compare_and_swap(cx, GLOBAL, o, n);
    }));
    cases
}

const CONDS: [Cond; 6] = [Cond::Eq, Cond::Ne, Cond::Lt, Cond::Le, Cond::Gt, Cond::Ge];

/// The address globals get in the cases, as in the listing tests.
const GLOBAL: i64 = 0x7fab_0000_0008;

/// Renders every case: its name, then a line per instruction with its
/// offset, bytes and disassembly.
fn render<M: Machine>(cases: &[Case<M>]) -> String {
    let prog = crate::ir::parse(FUNCTION).expect("the cases' function parses");
    let func = &prog.funcs[0];
    let mut out = format!(
        "; {} encodings of the lowering's hooks (BLESS=1 to rewrite)\n",
        M::ARCH.name()
    );
    for case in cases {
        let code =
            super::function::emit_alone::<M>(func, locations::<M>, |cx, l| (case.emit)(cx, l));
        writeln!(out, "\n{}", case.name).unwrap();
        for d in crate::isa::decode(M::ARCH, &code, 0, code.len()) {
            let bytes: String = code[d.offset..d.offset + d.len]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let line = format!("  {:04x}  {bytes:<24} {}", d.offset, d.text);
            writeln!(out, "{}", line.trim_end()).unwrap();
        }
    }
    out
}

/// Checks the shared cases and `extra` against `expected` (a path from
/// the crate's root), or rewrites it under `BLESS=1`.
pub(crate) fn check<M: Machine>(extra: Vec<Case<M>>, expected: &str) {
    let mut cases = shared::<M>();
    cases.extend(extra);
    let got = render(&cases);
    for line in got.lines() {
        assert!(
            !line.contains(".word") && !line.contains("(bad)"),
            "an emitted instruction does not decode: {line}"
        );
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(expected);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != got {
        let (mut case, mut diff) = (String::new(), String::new());
        for (w, g) in want.lines().zip(got.lines()) {
            if !g.starts_with(' ') {
                case = g.to_string();
            }
            if w != g {
                diff = format!("in `{case}`:\n  expected: {w}\n  got:      {g}");
                break;
            }
        }
        if diff.is_empty() {
            diff = format!(
                "expected {} lines, got {}",
                want.lines().count(),
                got.lines().count()
            );
        }
        panic!("{} differs (BLESS=1 to accept)\n{diff}", path.display());
    }
}
