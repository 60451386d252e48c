//! A compilation's output does not depend on how many threads made it:
//! every valid program of the repository (the front end's golden
//! programs, the encoding tests' programs, the runtime's test programs and
//! the examples) is parsed, verified and assembled for both architectures
//! on one thread and on several, and the programs, the code, the tables
//! and the constant pools are compared. A generated program large enough
//! for `Threads::Auto` to cut it is compared too. (The front end's own
//! tests also compare one thread with several on every bad program and on
//! random and mutated ones.)

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use preempt_jit::ir::{self, Program, Span};
use preempt_jit::module::{Arch, Assembled, Names};
use preempt_jit::par::Threads;

/// Every `.pir` file under `dir`, recursively, sorted.
fn pir_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            pir_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "pir") {
            out.push(path);
        }
    }
}

fn front_end(src: &str, threads: Threads) -> Option<Program> {
    let mut prog = ir::parse_with(src, threads).ok()?;
    ir::verify_with(&mut prog, threads).ok()?;
    let level = prog.settings.opt.unwrap_or(1) as u8;
    preempt_jit::opt::optimize_with(&mut prog, level, threads);
    Some(prog)
}

fn assemble(arch: Arch, prog: &Program, threads: Threads) -> Assembled {
    let globals: Vec<usize> = (0..prog.globals.len())
        .map(|i| 0x7fab_0000_0000 + 8 * i)
        .collect();
    preempt_jit::isa::assemble_with(arch, prog, &globals, threads)
}

/// Compares one thread's compilation of `src` with `threads`'; false when
/// the program does not compile (it is then no test of this).
fn same_on(name: &str, src: &str, threads: Threads) -> bool {
    let Some(one) = front_end(src, Threads::ONE) else {
        return false;
    };
    let several = front_end(src, threads).expect("compiles on one thread");
    assert!(one == several, "{name}: the program differs on {threads:?}");
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let a = assemble(arch, &one, Threads::ONE);
        let b = assemble(arch, &several, threads);
        assert!(
            a.code[..] == b.code[..],
            "{name} {arch:?}: code differs on {threads:?}"
        );
        assert_eq!(a.function_offsets, b.function_offsets, "{name} {arch:?}");
        // (The pool's index of messages is a hash map, whose Debug order
        // varies from map to map: its contents are the messages'.)
        let contents = |x: &Assembled| {
            format!(
                "{:?}{:?}{:?}{:?}{:?}",
                x.tables, x.pool.messages, x.pool.prints, x.pool.selects, x.stub_offsets
            )
        };
        assert!(
            contents(&a) == contents(&b),
            "{name} {arch:?}: tables or pool differ on {threads:?}"
        );
    }
    true
}

#[test]
fn every_program_compiles_to_the_same_code_on_any_number_of_threads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        root.join("tests/golden"),
        root.join("tests/encoding"),
        root.join("../tests/programs"),
        root.join("../examples"),
    ] {
        pir_files(&dir, &mut files);
    }
    files.sort();
    let mut compared = 0;
    for file in &files {
        let src = std::fs::read_to_string(file).unwrap();
        let name = file.display().to_string();
        if same_on(&name, &src, Threads::fixed(2)) {
            compared += 1;
        }
    }
    assert!(
        compared >= 100,
        "only {compared} of {} programs compiled",
        files.len()
    );
}

/// `funcs` functions calling the one before, with loops, heap and global
/// accesses and prints: about 40 instructions each.
fn generated(funcs: usize) -> String {
    let mut s = String::from("global @g: i64 = 1\n\n");
    for k in 0..funcs {
        writeln!(
            s,
            "func @f{k}(%a: i64) -> i64 {{\n    %i = const 0\n    %s = copy %a\nloop:"
        )
        .unwrap();
        for j in 0..10 {
            writeln!(s, "    %s = add %s, {j}\n    %t{j} = mul %s, %i").unwrap();
        }
        s.push_str("    %o = new 2\n    set %o, 0, %s\n    %v = get %o, 0\n    store @g, %v\n");
        if k > 0 {
            writeln!(s, "    %r = call @f{}(%v)\n    %s = add %s, %r", k - 1).unwrap();
        }
        s.push_str("    %i = add %i, 1\n    %c = lt %i, 3\n    br %c, loop, done\ndone:\n");
        s.push_str("    print \"{} {}\", %s, %i\n    ret %s\n}\n\n");
    }
    s.push_str("func @main() {\n    %r = call @f0(1)\n    print \"{}\", %r\n    ret\n}\n");
    s
}

#[test]
fn a_program_large_enough_to_be_cut_compiles_the_same_as_on_one_thread() {
    // Enough instructions for two threads' minimum each, on any machine
    // that has two CPUs; a fixed count of three otherwise cuts it too.
    let src = generated(2 * Threads::MIN_WORK / 30);
    let prog = front_end(&src, Threads::ONE).expect("the generated program compiles");
    assert!(
        prog.inst_count() >= 2 * Threads::MIN_WORK,
        "{}",
        prog.inst_count()
    );
    assert!(same_on("generated", &src, Threads::Auto));
    assert!(same_on("generated", &src, Threads::fixed(3)));
    // The module's names, and the span each instruction start carries,
    // recorded by the emitter while the planner worked on another thread.
    let names = Names::new(&prog);
    assert_eq!(names.functions.len(), prog.funcs.len());
    let asm = assemble(Arch::X86_64, &prog, Threads::Auto);
    let mut starts = asm.tables.inst_starts.iter();
    for (f, func) in prog.funcs.iter().enumerate() {
        assert_eq!(names.functions[f], func.name);
        for (b, block) in func.blocks.iter().enumerate() {
            let end = block
                .term
                .as_ref()
                .map(|t| t.span)
                .or(block.insts.last().map(|i| i.span))
                .unwrap_or(block.span);
            let want: Vec<(u32, Span)> = block
                .insts
                .iter()
                .enumerate()
                .map(|(i, inst)| (i as u32, inst.span))
                .chain([(u32::MAX, end)])
                .collect();
            let got: Vec<(u32, Span)> = starts
                .by_ref()
                .take(want.len())
                .inspect(|s| assert_eq!((s.func.index(), s.block.index()), (f, b)))
                .map(|s| (s.index, s.span))
                .collect();
            assert_eq!(got, want, "@{} block {b}", func.name);
            let (fid, bid) = (ir::FuncId::new(f), ir::BlockId::new(b));
            assert_eq!(names.block(fid, bid), func.block_name(bid));
        }
        assert_eq!(names.block_count(ir::FuncId::new(f)), func.blocks.len());
        assert_eq!(names.block_name(f, func.blocks.len()), None);
    }
}

#[test]
fn a_panic_while_emitting_reaches_the_caller_instead_of_leaving_the_planner_waiting() {
    // Assembling an unverified program is a bug in the caller, and the
    // emitter panics on the first `print` of a register with no type,
    // in the first function, while the planner still has nineteen to
    // hand over through its bounded channel. The panic must come out
    // of `assemble`; the watchdog (generous: a loaded machine or an
    // emulator is slow) turns a planner left blocked into a failure.
    let mut src =
        String::from("func @main() {\n    %x = add 1, 2\n    print \"{}\", %x\n    ret\n}\n");
    for k in 0..19 {
        writeln!(src, "func @f{k}() {{\n    %y = add 1, 2\n    ret\n}}").unwrap();
    }
    let prog = ir::parse_with(&src, Threads::ONE).expect("parses");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| {
            assemble(Arch::X86_64, &prog, Threads::fixed(2));
        });
        let _ = tx.send(result.is_err());
    });
    let panicked = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("assemble returned or panicked within 60 s");
    assert!(panicked, "assembling an unverified print should panic");
}
