//! Every instruction of every compiled function, asked: is it an unsafe
//! point? In the spirit of Go's `TestUnsafePoint`: for x86-64 and aarch64
//! (cross-assembled, so both run on any host), every machine instruction
//! start of every function of a set of programs is given to `decide()`,
//! which must decline exactly at the instructions inside the recorded
//! non-restartable unsafe regions, send the goroutine back to the start of
//! a restartable region from inside one, and let it resume in place
//! everywhere else. The regions themselves are checked against the code:
//!
//! - every region begins and ends on instruction boundaries of one
//!   function, and no two overlap;
//! - frame set-up starts at the function's entry and runs to its first
//!   block; the out-of-line stack-check path is frame set-up too; every
//!   instruction that moves SP or the frame pointer is frame set-up or
//!   tear-down; every `ret` ends a tear-down region;
//! - an atomic sequence (aarch64 LL/SC) starts at its load-exclusive and
//!   ends with its store-exclusive: restarting after the store would do
//!   the operation twice;
//! - a write barrier (recorded by the GC's emitter) covers the code of a
//!   `setref` or a ref-global `store`, from a load (the marking flag)
//!   through a store, and every such instruction has exactly one (its
//!   out-of-line slow path, saving registers around the collector's call,
//!   ends with a branch back into it).
//!
//! Every region kind is checked the same way by the generic checks, so a
//! new kind is covered the day it is recorded.

use std::collections::BTreeMap;

use preempt_jit::abi::PREEMPT_STUB_STACK;
use preempt_jit::code::disasm::{decode, DecodedInst};
use preempt_jit::code::{CodeTables, FunctionRange, UnsafeKind, UnsafeRegion};
use preempt_jit::ir::{self, InstKind, Opcode, Program, Type};
use preempt_jit::module::{Arch, Assembled, Globals};
use preempt_runtime::preempt::decide::{
    decide, Decision, Goroutine, RetryReason, Thread, Trigger, UnsafePoints,
};
use preempt_tests::repo_root;

/// A program with every kind of store the write barrier guards: `setref`
/// and a `store` to a ref global, next to plain `set` and i64 stores.
const BARRIER_PROGRAM: &str = "
global @root: ref
global @n: i64

func @link(%a: ref, %b: ref) {
    setref %a, 0, %b
    set %a, 1, 7
    ret
}

func @publish(%a: ref) {
    store @root, %a
    store @n, 1
    ret
}

func @main() {
    %a = new 2
    %b = new 2
    call @link(%a, %b)
    call @publish(%b)
    %r = load @root
    %c = getref %a, 0
    %same = eq %r, %c
    print \"{}\", %same
    ret
}
";

/// The programs whose code is checked: the stress examples, the other
/// examples, the seed's bugs, the encoding tests' programs, and the
/// barrier program.
fn programs() -> Vec<(String, String)> {
    let root = repo_root();
    let mut out = vec![("barrier".to_string(), BARRIER_PROGRAM.to_string())];
    // The seed's bugs: one directory each.
    let mut bugs: Vec<String> = std::fs::read_dir(root.join("examples/bugs"))
        .expect("read examples/bugs")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    bugs.sort();
    assert_eq!(bugs.len(), 16, "the seed's sixteen bugs: {bugs:?}");
    let dirs = ["examples/stress", "examples", "jit/tests/encoding"]
        .map(String::from)
        .into_iter()
        .chain(bugs);
    for dir in dirs {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(&dir))
            .expect("read the directory")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "pir"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).expect("read the program");
            out.push((p.display().to_string(), text));
        }
    }
    out
}

fn compile(text: &str, opt: u8, arch: Arch) -> (Program, Assembled) {
    let mut prog = ir::parse(text).expect("parses");
    ir::verify(&mut prog).expect("verifies");
    preempt_jit::opt::optimize(&mut prog, opt);
    let globals = Globals::new(&prog);
    let asm = preempt_jit::isa::assemble(arch, &prog, &globals.addresses());
    (prog, asm)
}

const SP: usize = 0x10_0000;

fn ask(pc: usize, t: &CodeTables, points: UnsafePoints) -> Decision {
    let g = Goroutine {
        requested: true,
        stack_lo: SP - 2 * PREEMPT_STUB_STACK,
    };
    let signal = Trigger::Signal { from_runtime: true };
    decide(signal, pc, SP, t, Thread::Running(g), points)
}

/// What the tables say `decide` must answer at `pc`.
fn expected(pc: usize, t: &CodeTables) -> Decision {
    match t.unsafe_region_at(pc) {
        Some(r) if r.restartable => Decision::Redirect { resume_pc: r.start },
        Some(r) => Decision::Retry(RetryReason::Unsafe(r.kind)),
        None => Decision::Redirect { resume_pc: pc },
    }
}

fn mnemonic(d: &DecodedInst) -> &str {
    d.text.split_whitespace().next().unwrap_or("")
}

fn operands(d: &DecodedInst) -> Vec<String> {
    let rest = d.text.split_once(char::is_whitespace).map_or("", |x| x.1);
    rest.split(", ").map(|s| s.trim().to_string()).collect()
}

/// Whether the instruction moves SP or the frame pointer.
fn moves_frame(arch: Arch, d: &DecodedInst) -> bool {
    let m = mnemonic(d);
    let ops = operands(d);
    let first = ops.first().map_or("", String::as_str);
    match arch {
        Arch::X86_64 => {
            matches!(m, "push" | "pop" | "leave" | "enter")
                || (first == "rsp" || first == "rbp") && m != "cmp" && m != "test"
        }
        Arch::Aarch64 => {
            let writeback =
                d.text.contains("[sp") && (d.text.ends_with("]!") || d.text.contains("], #"));
            writeback || (matches!(m, "mov" | "add" | "sub") && (first == "sp" || first == "x29"))
        }
    }
}

/// Where a direct branch goes (the aarch64 decoder resolves only `b` and
/// `bl`; conditional branches print `$+0x14`).
fn branch_target(d: &DecodedInst) -> Option<usize> {
    d.target.or_else(|| {
        let (_, rel) = d.text.split_once('$')?;
        let (sign, hex) = rel.split_at(1);
        let n = i64::from_str_radix(hex.trim().trim_start_matches("0x"), 16).ok()?;
        let n = if sign == "-" { -n } else { n };
        Some((d.offset as i64 + n) as usize)
    })
}

fn is_ret(d: &DecodedInst) -> bool {
    mnemonic(d) == "ret"
}

fn loads(arch: Arch, d: &DecodedInst) -> bool {
    let m = mnemonic(d);
    match arch {
        Arch::X86_64 => {
            let ops = operands(d);
            ops.iter().skip(1).any(|o| o.contains('['))
                || (m == "cmp" || m == "test") && ops.iter().any(|o| o.contains('['))
        }
        Arch::Aarch64 => m.starts_with("ld"),
    }
}

fn stores(arch: Arch, d: &DecodedInst) -> bool {
    let m = mnemonic(d);
    match arch {
        Arch::X86_64 => {
            m.starts_with("mov") && operands(d).first().is_some_and(|o| o.contains('['))
                || m == "xchg"
        }
        Arch::Aarch64 => m.starts_with("st"),
    }
}

fn is_load_exclusive(d: &DecodedInst) -> bool {
    matches!(mnemonic(d), "ldxr" | "ldaxr")
}

fn is_store_exclusive(d: &DecodedInst) -> bool {
    matches!(mnemonic(d), "stxr" | "stlxr")
}

/// What one pass over one program found.
#[derive(Default)]
struct Tally {
    functions: usize,
    instructions: usize,
    safe: usize,
    by_kind: BTreeMap<&'static str, usize>,
    barriers: usize,
    barrier_sites: usize,
}

/// The instructions of `f`, and the regions inside it.
fn function_code<'a>(
    asm: &Assembled,
    f: &FunctionRange,
    t: &'a CodeTables,
) -> (Vec<DecodedInst>, Vec<&'a UnsafeRegion>) {
    let insts = decode(asm.arch, &asm.code, f.start, f.end);
    let regions = t
        .unsafe_regions
        .iter()
        .filter(|r| r.start >= f.start && r.start < f.end)
        .collect();
    (insts, regions)
}

/// The instructions of `insts` that lie in `r`.
fn inside<'a>(insts: &'a [DecodedInst], r: &UnsafeRegion) -> Vec<&'a DecodedInst> {
    insts
        .iter()
        .filter(|d| d.offset >= r.start && d.offset < r.end)
        .collect()
}

fn check(name: &str, prog: &Program, asm: &Assembled, tally: &mut Tally) {
    let arch = asm.arch;
    let t = &asm.tables;
    let here = |f: &FunctionRange| format!("{name} ({}) @{}", arch.name(), f.name);
    // No two regions overlap (the lookup's binary search relies on it).
    for w in t.unsafe_regions.windows(2) {
        assert!(
            w[0].end <= w[1].start,
            "{name} ({}): regions overlap: {:?} and {:?}",
            arch.name(),
            w[0],
            w[1]
        );
    }
    for f in &t.functions {
        tally.functions += 1;
        let (insts, regions) = function_code(asm, f, t);
        let starts: Vec<usize> = insts.iter().map(|d| d.offset).collect();
        assert_eq!(
            insts.iter().map(|d| d.len).sum::<usize>(),
            f.end - f.start,
            "{}: the code decodes into whole instructions",
            here(f)
        );

        // decide() at every instruction start, honouring and ignoring.
        for d in &insts {
            tally.instructions += 1;
            let got = ask(d.offset, t, UnsafePoints::Honour);
            assert_eq!(
                got,
                expected(d.offset, t),
                "{} at {:#x} `{}`",
                here(f),
                d.offset,
                d.text
            );
            match got {
                Decision::Retry(RetryReason::Unsafe(k)) => {
                    *tally.by_kind.entry(k.name()).or_default() += 1
                }
                Decision::Redirect { resume_pc } if resume_pc != d.offset => {
                    *tally.by_kind.entry("restart: atomic sequence").or_default() += 1
                }
                Decision::Redirect { .. } => tally.safe += 1,
                other => panic!("{} at {:#x}: {other:?}", here(f), d.offset),
            }
            assert_eq!(
                ask(d.offset, t, UnsafePoints::Ignore),
                Decision::Redirect {
                    resume_pc: d.offset
                },
                "{}: ignoring the tables, every instruction is safe",
                here(f)
            );
        }

        // Every region lies on instruction boundaries of this function.
        for r in &regions {
            assert!(
                starts.contains(&r.start),
                "{}: {r:?} starts inside an instruction",
                here(f)
            );
            assert!(
                r.end <= f.end && (r.end == f.end || starts.contains(&r.end)),
                "{}: {r:?} ends inside an instruction or past the function",
                here(f)
            );
        }

        // Frame set-up: from the entry to the first block.
        let setup = regions
            .iter()
            .find(|r| r.start == f.start)
            .unwrap_or_else(|| panic!("{}: no region at the entry", here(f)));
        assert_eq!(setup.kind, UnsafeKind::FrameSetup, "{}", here(f));
        let first_block = t
            .blocks
            .iter()
            .filter(|b| b.func == f.func)
            .map(|b| b.start)
            .min()
            .unwrap_or(f.end);
        assert_eq!(
            setup.end,
            first_block,
            "{}: the frame set-up ends where the first block starts",
            here(f)
        );
        // The prologue's stack check branches to an out-of-line path; that
        // path, to its branch back, is frame set-up as well.
        let check = inside(&insts, setup)
            .into_iter()
            .find_map(|d| branch_target(d).filter(|&x| x >= setup.end && x < f.end))
            .unwrap_or_else(|| panic!("{}: the prologue has no stack-check branch", here(f)));
        let slow = t
            .unsafe_region_at(check)
            .filter(|r| r.start == check && r.kind == UnsafeKind::FrameSetup)
            .unwrap_or_else(|| {
                panic!(
                    "{}: the stack-check path at {check:#x} is not frame set-up",
                    here(f)
                )
            });
        let back = inside(&insts, slow).last().and_then(|d| branch_target(d));
        assert!(
            back.is_some_and(|b| b > setup.start && b < setup.end),
            "{}: the stack-check path ends with its branch back into the prologue",
            here(f)
        );

        // A write barrier's out-of-line part (the slow path that shades the
        // old value through a runtime call) is a region a branch inside
        // another write-barrier region jumps to.
        let barrier_regions: Vec<&&UnsafeRegion> = regions
            .iter()
            .filter(|r| r.kind == UnsafeKind::WriteBarrier)
            .collect();
        let slow_path = |r: &UnsafeRegion| {
            barrier_regions.iter().any(|o| {
                o.start != r.start
                    && inside(&insts, o)
                        .iter()
                        .any(|d| branch_target(d) == Some(r.start))
            })
        };

        // A back-edge's yield on aarch64 (poll, patch) builds the stub's
        // frame as the handler's `push_call` does, and branches to the
        // stub: a runtime transition that ends in that branch.
        let yield_entry = |r: &UnsafeRegion| {
            r.kind == UnsafeKind::RuntimeTransition
                && inside(&insts, r)
                    .last()
                    .is_some_and(|d| branch_target(d) == Some(asm.stub_offsets.preempt_stub))
        };

        // Whatever moves SP or the frame pointer is set-up or tear-down (or
        // a barrier's slow path saving scratch registers around its call,
        // or a yield's entry into the stub), and every return ends a
        // tear-down.
        for d in &insts {
            let region = t.unsafe_region_at(d.offset);
            let kind = region.map(|r| r.kind);
            if moves_frame(arch, d) {
                assert!(
                    matches!(
                        kind,
                        Some(UnsafeKind::FrameSetup | UnsafeKind::FrameTeardown)
                    ) || region.is_some_and(|r| r.kind == UnsafeKind::WriteBarrier && slow_path(r))
                        || region.is_some_and(yield_entry),
                    "{}: `{}` at {:#x} moves the frame outside set-up, tear-down, barrier slow paths and yield entries",
                    here(f),
                    d.text,
                    d.offset
                );
            }
            if is_ret(d) {
                let r = t.unsafe_region_at(d.offset);
                assert!(
                    r.is_some_and(
                        |r| r.kind == UnsafeKind::FrameTeardown && r.end == d.offset + d.len
                    ),
                    "{}: `ret` at {:#x} does not end a tear-down region",
                    here(f),
                    d.offset
                );
            }
        }

        // Atomic sequences: load-exclusive to store-exclusive, restartable.
        for d in insts.iter().filter(|d| is_load_exclusive(d)) {
            let r = t.unsafe_region_at(d.offset);
            assert!(
                r.is_some_and(|r| r.kind == UnsafeKind::AtomicSequence
                    && r.restartable
                    && r.start == d.offset),
                "{}: the load-exclusive at {:#x} does not start a restartable atomic sequence",
                here(f),
                d.offset
            );
        }
        for r in regions
            .iter()
            .filter(|r| r.kind == UnsafeKind::AtomicSequence)
        {
            let body = inside(&insts, r);
            assert!(
                body.first().is_some_and(|d| is_load_exclusive(d))
                    && body.last().is_some_and(|d| is_store_exclusive(d))
                    && body.iter().filter(|d| is_store_exclusive(d)).count() == 1,
                "{}: {r:?} is not load-exclusive ... store-exclusive: {:?}",
                here(f),
                body.iter().map(|d| &d.text).collect::<Vec<_>>()
            );
        }

        // Write barriers: from a load to a store, one per guarded store;
        // a slow path ends with its branch back into its barrier.
        for r in &barrier_regions {
            let body = inside(&insts, r);
            if slow_path(r) {
                let back = body.last().and_then(|d| branch_target(d));
                assert!(
                    back.is_some_and(|b| barrier_regions
                        .iter()
                        .any(|o| !slow_path(o) && b > o.start && b < o.end)),
                    "{}: the barrier slow path {r:?} does not branch back into its barrier: {:?}",
                    here(f),
                    body.iter().map(|d| &d.text).collect::<Vec<_>>()
                );
                continue;
            }
            tally.barriers += 1;
            assert!(
                body.first().is_some_and(|d| loads(arch, d)),
                "{}: {r:?} does not start with a load (the marking flag): {:?}",
                here(f),
                body.iter().map(|d| &d.text).collect::<Vec<_>>()
            );
            assert!(
                body.last().is_some_and(|d| stores(arch, d)),
                "{}: {r:?} does not end with the store: {:?}",
                here(f),
                body.iter().map(|d| &d.text).collect::<Vec<_>>()
            );
        }
        let func = prog.func(f.func);
        for s in t.inst_starts.iter().filter(|s| s.func == f.func) {
            let Some(inst) = func.blocks[s.block.index()].insts.get(s.index as usize) else {
                continue;
            };
            let guarded = match &inst.kind {
                InstKind::Effect { op, .. } => *op == Opcode::SetRef,
                InstKind::Store { global, .. } => prog.global(*global).ty == Type::Ref,
                _ => false,
            };
            if !guarded {
                continue;
            }
            tally.barrier_sites += 1;
            let pc = t.inst_pc(s);
            // The code of this PIR instruction: to the next one's start
            // (its barrier's out-of-line part, if any, is elsewhere).
            let end = t
                .inst_starts
                .iter()
                .map(|x| t.inst_pc(x))
                .filter(|&x| x > pc)
                .min()
                .unwrap_or(f.end);
            let n = regions
                .iter()
                .filter(|r| r.kind == UnsafeKind::WriteBarrier && r.start >= pc && r.start < end)
                .count();
            assert_eq!(
                n,
                1,
                "{}: the ref store at {:#x} has {n} write-barrier regions",
                here(f),
                pc
            );
        }
    }
}

#[test]
fn decide_declines_exactly_inside_the_recorded_unsafe_regions() {
    let programs = programs();
    assert!(programs.len() > 10, "the example programs are found");
    let mut barriers = 0;
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let mut tally = Tally::default();
        for (name, text) in &programs {
            for opt in [0, 1] {
                let (prog, asm) = compile(text, opt, arch);
                check(&format!("{name} -O{opt}"), &prog, &asm, &mut tally);
            }
        }
        let unsafe_total: usize = tally.by_kind.values().sum();
        println!(
            "{}: {} instructions in {} functions: {} safe, {} unsafe or restarting {:?}",
            arch.name(),
            tally.instructions,
            tally.functions,
            tally.safe,
            unsafe_total,
            tally.by_kind
        );
        assert!(tally.safe > 0 && unsafe_total > 0);
        assert!(tally.by_kind.contains_key(UnsafeKind::FrameSetup.name()));
        assert!(tally.by_kind.contains_key(UnsafeKind::FrameTeardown.name()));
        if arch == Arch::Aarch64 {
            assert!(
                tally.by_kind.contains_key("restart: atomic sequence"),
                "the LL/SC sequences restart"
            );
        }
        assert!(tally.barrier_sites > 0, "the programs store refs");
        barriers += tally.barriers;
    }
    assert!(barriers > 0, "no write-barrier region was recorded");
}
