//! Golden encoding tests for the backends: each `.pir` file under
//! `tests/encoding/` is compiled for every architecture and its annotated
//! listing (offset, bytes, disassembly by an independent decoder —
//! iced-x86, yaxpeax-arm — and the PIR source) is compared with
//! `tests/encoding/<arch>/<name>.expected`. Every emitted instruction must
//! also decode: a `.word` or `(bad)` in a listing fails the test. Globals
//! get fixed addresses so listings are deterministic and host-independent.
//!
//! `BLESS=1 cargo test -p preempt-jit --test encoding` rewrites the
//! expected files; review the diff like code.

use std::path::Path;

use preempt_jit::code::disasm;
use preempt_jit::ir;
use preempt_jit::module::Arch;

fn listing(arch: Arch, src: &str, file: &Path) -> String {
    let mut prog =
        ir::parse(src).unwrap_or_else(|e| panic!("{}", e.render(&file.display().to_string(), src)));
    ir::verify(&mut prog)
        .unwrap_or_else(|e| panic!("{}", e.render(&file.display().to_string(), src)));
    let level = prog.settings.opt.unwrap_or(1) as u8;
    preempt_jit::opt::optimize(&mut prog, level);
    let globals: Vec<usize> = (0..prog.globals.len())
        .map(|i| 0x7fab_0000_0000 + 8 * i)
        .collect();
    let asm = preempt_jit::isa::assemble(arch, &prog, &globals);
    let mut out = disasm::listing(&prog, &asm, level);
    out.push('\n');
    out.push_str(&disasm::stubs_listing(&asm));
    out
}

fn check_arch(arch: Arch) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/encoding");
    let bless = std::env::var_os("BLESS").is_some();
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let mut failures = Vec::new();
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pir"))
    {
        let src = std::fs::read_to_string(path).unwrap();
        let got = listing(arch, &src, path);
        for line in got.lines() {
            if line.contains(".word") || line.contains("(bad)") {
                failures.push(format!(
                    "{}: an emitted instruction does not decode: {line}",
                    path.display()
                ));
            }
        }
        let name = path.file_stem().expect("a file name");
        let expected_path = dir.join(arch.name()).join(name).with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
        } else {
            let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
            if want != got {
                failures.push(format!(
                    "{}: listing differs (BLESS=1 to accept)\n{}",
                    path.display(),
                    first_difference(&want, &got)
                ));
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 3,
        "only {checked} encoding files in {}",
        dir.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n  expected: {w}\n  got:      {g}", i + 1);
        }
    }
    format!(
        "expected {} lines, got {}",
        want.lines().count(),
        got.lines().count()
    )
}

#[test]
fn x86_64_encodings_match_golden_listings() {
    check_arch(Arch::X86_64);
}

#[test]
fn aarch64_encodings_match_golden_listings() {
    check_arch(Arch::Aarch64);
}
