//! JIT compile throughput: PIR instructions per second through parsing,
//! verification, optimisation, assembly (register allocation and
//! emission) and publication, on a generated program of about a million
//! instructions.

use std::fmt::Write;
use std::time::Instant;

use preempt_jit::ir;
use preempt_jit::module::{Arch, Globals, Module, Names};
use preempt_jit::par::Threads;

use crate::doc::{Doc, Table};
use crate::Budget;

/// A program of `funcs` functions of about `per_func` instructions each:
/// arithmetic chains with some long-lived values, counted loops, global
/// and heap accesses, and calls.
pub fn generate(funcs: usize, per_func: usize) -> String {
    let mut s = String::from("global @g: i64 = 1\nglobal @root: ref\n\n");
    let ops = ["add", "sub", "mul", "xor", "and", "or", "shl", "sar"];
    for k in 0..funcs {
        writeln!(s, "func @f{k}(%a: i64, %b: i64) -> i64 {{").unwrap();
        s.push_str("    %x0 = add %a, %b\n    %x1 = sub %a, %b\n    %x2 = mul %x0, %x1\n");
        let mut j = 3;
        let mut loops = 0;
        while j < per_func {
            if j % 50 == 0 {
                writeln!(
                    s,
                    "    %i{loops} = const 0\nloop{loops}:\n    %x{j} = add %x{}, %i{loops}\n    %i{loops} = add %i{loops}, 1\n    %c{loops} = lt %i{loops}, 10\n    br %c{loops}, loop{loops}, next{loops}\nnext{loops}:",
                    j - 1
                )
                .unwrap();
                loops += 1;
                j += 1;
                continue;
            }
            match j % 17 {
                3 => writeln!(s, "    %x{j} = load @g").unwrap(),
                5 => {
                    writeln!(s, "    store @g, %x{}\n    %x{j} = copy %x{}", j - 1, j - 2).unwrap()
                }
                7 => writeln!(
                    s,
                    "    %o{j} = new 4\n    set %o{j}, 1, %x{}\n    %x{j} = get %o{j}, 1",
                    j - 1
                )
                .unwrap(),
                11 if k > 0 => {
                    writeln!(s, "    %x{j} = call @f{}(%x{}, %a)", k - 1, j - 1).unwrap()
                }
                _ => {
                    let op = ops[j % ops.len()];
                    let far = j.saturating_sub(10);
                    writeln!(s, "    %x{j} = {op} %x{}, %x{far}", j - 1).unwrap()
                }
            }
            j += 1;
        }
        writeln!(s, "    %r = add %x{}, %a\n    ret %r\n}}\n", j - 1).unwrap();
    }
    s.push_str("func @main() {\n    %r = call @f0(1, 2)\n    print \"{}\", %r\n    ret\n}\n");
    s
}

/// Seconds spent in each phase, and the instruction count.
#[derive(Clone, Debug, Default)]
pub struct Phases {
    pub instructions: usize,
    pub parse: f64,
    pub verify: f64,
    pub optimize: f64,
    pub assemble: f64,
    pub publish: f64,
    pub code_bytes: usize,
}

impl Phases {
    pub fn total(&self) -> f64 {
        self.parse + self.verify + self.optimize + self.assemble + self.publish
    }
}

/// Compiles `source` once on up to `threads` threads, timing each phase.
///
/// The allocator first gives the memory it holds free back to the system,
/// so that every measurement starts as a compilation in a fresh process
/// does, with its memory still to be faulted in, whatever the measurement
/// before it left behind (a run right after another reuses its pages, and
/// one right after a run on another thread count finds them in another
/// thread's arena: up to 1.5x apart on this benchmark).
pub fn measure(source: &str, threads: Threads) -> Phases {
    release_free_memory();
    let t = Instant::now();
    let mut prog = ir::parse_with(source, threads).expect("the generated program parses");
    let parse = t.elapsed().as_secs_f64();
    let t = Instant::now();
    ir::verify_with(&mut prog, threads).expect("the generated program verifies");
    let verify = t.elapsed().as_secs_f64();
    let t = Instant::now();
    preempt_jit::opt::optimize_with(&mut prog, 1, threads);
    let optimize = t.elapsed().as_secs_f64();
    let arch = Arch::host().unwrap_or(Arch::X86_64);
    let globals = Globals::new(&prog);
    let t = Instant::now();
    let asm = preempt_jit::isa::assemble_with(arch, &prog, &globals.addresses(), threads);
    let assemble = t.elapsed().as_secs_f64();
    let code_bytes = asm.code.len();
    let t = Instant::now();
    let module = Module::publish(asm, globals, Names::new(&prog)).expect("publish");
    let publish = t.elapsed().as_secs_f64();
    drop(module);
    Phases {
        instructions: prog.inst_count(),
        parse,
        verify,
        optimize,
        assemble,
        publish,
        code_bytes,
    }
}

/// One phase's seconds in a measurement.
type PhaseSeconds = fn(&Phases) -> f64;

/// The benchmark program's functions and instructions per function.
const FUNCS: usize = 2000;
const PER_FUNC: usize = 500;

/// Returns the allocator's free memory to the system (`malloc_trim`).
fn release_free_memory() {
    // SAFETY: malloc_trim only releases free memory of the allocator's own
    // heaps; nothing else refers to it.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The suite's result: the table, and every repetition for tools.
#[derive(Clone, Debug)]
pub struct Report {
    pub doc: Doc,
    pub json: serde_json::Value,
}

/// Every repetition's phases in seconds, as JSON.
fn seconds(all: &[Phases]) -> serde_json::Value {
    let phase = |f: fn(&Phases) -> f64| all.iter().map(f).collect::<Vec<f64>>();
    serde_json::json!({
        "parse": phase(|p| p.parse), "verify": phase(|p| p.verify),
        "optimize": phase(|p| p.optimize), "assemble": phase(|p| p.assemble),
        "publish": phase(|p| p.publish), "total": phase(Phases::total),
    })
}

/// The fastest repetition by total time.
fn fastest(all: &[Phases]) -> Phases {
    all.iter()
        .min_by(|a, b| a.total().total_cmp(&b.total()))
        .cloned()
        .unwrap_or_default()
}

/// The best of the budget's repetitions of compiling a ~1M-instruction
/// program, per phase, on one thread and on as many as the compiler takes
/// by itself (`Threads::Auto`), alternating: the table, and every
/// repetition as JSON.
pub fn run(budget: Budget) -> Report {
    let repetitions = budget.repetitions.max(1);
    let source = generate(FUNCS, PER_FUNC);
    let mut one = Vec::new();
    let mut auto = Vec::new();
    for r in 0..repetitions {
        crate::progress::step(&format!(
            "compiling {} bytes of PIR, {} of {repetitions}",
            source.len(),
            r + 1,
        ));
        one.push(measure(&source, Threads::ONE));
        auto.push(measure(&source, Threads::Auto));
    }
    let (p1, pn) = (fastest(&one), fastest(&auto));
    // The generated functions and `@main`.
    let threads = Threads::Auto.count(pn.instructions, FUNCS + 1);
    let mut doc = Doc::new("compile");
    doc.title(
        format!(
            "compile: {} PIR instructions ({} bytes of source, {} bytes of {} code), fastest of {}, on one thread and on {threads}",
            pn.instructions,
            source.len(),
            pn.code_bytes,
            Arch::host().unwrap_or(Arch::X86_64).name(),
            crate::runs(repetitions)
        ),
        budget.quick,
    );
    for w in crate::noise::warnings(&crate::noise::Seen {
        load: crate::noise::load_at_start(),
        ..Default::default()
    }) {
        doc.warning(w);
    }
    let header_n = format!("{threads} threads ms");
    let mut t = Table::new(&["phase", "1 thread ms", "M instr/s", &header_n, "M instr/s"]);
    let rate = |p: &Phases, secs: f64| p.instructions as f64 / secs / 1e6;
    let phases: [(&str, PhaseSeconds); 6] = [
        ("parse", |p| p.parse),
        ("verify", |p| p.verify),
        ("optimize", |p| p.optimize),
        ("assemble", |p| p.assemble),
        ("publish", |p| p.publish),
        ("total", Phases::total),
    ];
    for (name, secs) in phases {
        t.row(&[
            name.to_string(),
            format!("{:.1}", secs(&p1) * 1e3),
            format!("{:.2}", rate(&p1, secs(&p1))),
            format!("{:.1}", secs(&pn) * 1e3),
            format!("{:.2}", rate(&pn, secs(&pn))),
        ]);
    }
    doc.table(t);
    Report {
        json: serde_json::json!({
            "instructions": pn.instructions,
            "source_bytes": source.len(),
            "code_bytes": pn.code_bytes,
            "arch": Arch::host().unwrap_or(Arch::X86_64).name(),
            "repetitions": repetitions,
            "threads": threads,
            "seconds": seconds(&auto),
            "one_thread": { "seconds": seconds(&one) },
        }),
        doc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_programs_compile_and_count() {
        for threads in [Threads::ONE, Threads::fixed(2)] {
            let p = measure(&generate(5, 200), threads);
            assert!(p.instructions > 5 * 150, "{}", p.instructions);
            assert!(p.code_bytes > 0);
        }
    }
}
