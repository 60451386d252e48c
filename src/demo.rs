//! `preempt demo`: the register-hoisted load, shown side by side.

use preempt_jit::code::disasm::function_lines;
use preempt_jit::ir::{FuncId, Program};
use preempt_jit::module::Arch;

const WIDTH: usize = 84;

fn column(s: &str) -> String {
    let n = s.chars().count();
    if n <= WIDTH {
        format!("{s}{}", " ".repeat(WIDTH - n))
    } else {
        let cut: String = s.chars().take(WIDTH - 1).collect();
        format!("{cut}…")
    }
}

/// The listing of the spinner at one optimisation level.
fn listing(prog: &Program, fid: FuncId, level: u8) -> Vec<String> {
    let mut p = prog.clone();
    preempt_jit::opt::optimize(&mut p, level);
    let globals: Vec<usize> = (0..p.globals.len())
        .map(|i| 0x7f00_0000_0000 + 8 * i)
        .collect();
    let arch = Arch::host().unwrap_or(Arch::X86_64);
    let asm = preempt_jit::isa::assemble(arch, &p, &globals);
    function_lines(&p, &asm, fid, false)
}

/// The side-by-side disassembly of the program's `@spinner` at -O0 and
/// -O1, with what to look for.
pub fn hoisting(prog: &Program, file: &str) -> String {
    let fid = prog.func_by_name("spinner").unwrap_or(FuncId::new(0));
    let name = &prog.func(fid).name;
    let (o0, o1) = (listing(prog, fid, 0), listing(prog, fid, 1));
    let mut out = format!(
        "The register-hoisted load ({file}, the seed's Bug 1)\n\n\
         @{name} spins until another goroutine sets a global with a plain store. At -O1\n\
         LICM moves the plain `load` out of the loop: the loop has no call, no store to the\n\
         global, no atomic and no runtime operation, so for one goroutine the value cannot\n\
         change. The loop then tests a register that no other goroutine can reach.\n\n"
    );
    out.push_str(&format!("{}-O1 @{name}\n", column(&format!("-O0 @{name}"))));
    out.push_str(&format!(
        "{}{}\n",
        column(&"-".repeat(WIDTH - 2)),
        "-".repeat(WIDTH - 2)
    ));
    for i in 0..o0.len().max(o1.len()) {
        let l = o0.get(i).map(String::as_str).unwrap_or("");
        let r = o1.get(i).map(String::as_str).unwrap_or("");
        out.push_str(format!("{}{}", column(l), r).trim_end());
        out.push('\n');
    }
    out.push_str(
        "\nWhat to look for:\n\
         - left: the `load` (mov from [r11]) sits between the loop header and the BACK-EDGE,\n  \
           so every iteration reads memory and sees another goroutine's store;\n\
         - right: the load is marked HOISTED and sits in loop.preheader, before the header;\n  \
           the loop body only copies and tests a register.\n\
         - either way the back-edge is a bare `jmp`: loops carry no preemption poll, which is\n  \
           why stopping this goroutine needs an asynchronous signal.\n\
         The fix is `load.atomic` (examples/hoist-atomic.pir): atomics are never hoisted.\n",
    );
    out
}
