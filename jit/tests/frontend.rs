//! File tests of the PIR front end (lexer, parser, verifier, printer).
//!
//! - `golden/*.pir`: programs that must parse and verify. Each is printed,
//!   followed by the register types the verifier found, and compared with
//!   `golden/NAME.expected`; `BLESS=1 cargo test -p preempt-jit --test
//!   frontend` rewrites the expected files. Printing must round-trip:
//!   `parse(print(p)) == p`. Together the golden programs must use every
//!   opcode, select arm form, foreign function and setting.
//! - `bad/*.pir`: programs that must be rejected. The first line of each is
//!   `; error: LINE:COL: TEXT`, and the error must be at LINE:COL with TEXT
//!   in its message.
//! - Robustness: whatever the bytes, the front end returns `Ok` or `Err`,
//!   never panics, and stays fast on huge inputs.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use preempt_jit::ir::parser::parse_bytes;
use preempt_jit::ir::{self, ArmKind, InstKind, Opcode, Program, TermKind};
use preempt_jit::par::Threads;
use proptest::prelude::*;

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// The `.pir` files of a test directory, sorted so failures are stable.
fn pir_files(name: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pir"))
        .collect();
    files.sort();
    files
}

/// Parses and verifies; the error rendered as the CLI shows it. Also
/// parses and verifies on two and three threads (which cuts even a small
/// program into pieces, one or two functions each) and checks that the
/// result, program or error, is the same.
fn front_end(file: &str, bytes: &[u8]) -> Result<Program, String> {
    let one = front_end_on(file, bytes, Threads::ONE);
    for n in [2, 3] {
        let several = front_end_on(file, bytes, Threads::fixed(n));
        assert!(
            several == one,
            "{file}: on {n} threads {several:?}\non one {one:?}\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
    one
}

fn front_end_on(file: &str, bytes: &[u8], threads: Threads) -> Result<Program, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut prog = match std::str::from_utf8(bytes) {
        Ok(source) => ir::parse_with(source, threads),
        Err(_) => parse_bytes(bytes),
    }
    .map_err(|e| e.render(file, &text))?;
    ir::verify_with(&mut prog, threads).map_err(|e| e.render(file, &text))?;
    Ok(prog)
}

/// The printed program and, as trailing comments, every register's type.
fn golden_text(prog: &Program) -> String {
    let mut out = ir::print(prog);
    out.push_str("\n; register types\n");
    for f in &prog.funcs {
        let regs: Vec<String> = f
            .regs
            .iter()
            .map(|r| format!("%{}: {}", r.name, r.ty.expect("verified")))
            .collect();
        if regs.is_empty() {
            writeln!(out, "; @{}: no registers", f.name).unwrap();
        } else {
            writeln!(out, "; @{}: {}", f.name, regs.join(", ")).unwrap();
        }
    }
    out
}

/// What a program uses, for the coverage check of the golden suite.
#[derive(Default)]
struct Coverage {
    opcodes: BTreeSet<&'static str>,
    arms: BTreeSet<&'static str>,
    foreign: BTreeSet<&'static str>,
    settings: BTreeSet<&'static str>,
    fall_through: bool,
    unlabelled_after_terminator: bool,
    call_without_result: bool,
}

impl Coverage {
    fn add(&mut self, prog: &Program) {
        let s = &prog.settings;
        for (key, set) in [
            ("procs", s.procs.is_some()),
            ("preempt", s.preempt.is_some()),
            ("gc_percent", s.gc_percent.is_some()),
            ("opt", s.opt.is_some()),
            ("quantum_us", s.quantum_us.is_some()),
            ("nosplit_leaves", s.nosplit_leaves.is_some()),
        ] {
            if set {
                self.settings.insert(key);
            }
        }
        for f in &prog.funcs {
            for (i, b) in f.blocks.iter().enumerate() {
                if b.term.is_none() && i + 1 < f.blocks.len() {
                    self.fall_through = true;
                }
                if i > 0 && b.label.is_none() {
                    self.unlabelled_after_terminator = true;
                }
                for inst in &b.insts {
                    self.opcodes.insert(inst.kind.opcode().mnemonic());
                    match &inst.kind {
                        InstKind::CCall { func, .. } => {
                            self.foreign.insert(func.name());
                        }
                        InstKind::Call { dst: None, .. } => self.call_without_result = true,
                        _ => {}
                    }
                }
                let Some(t) = &b.term else { continue };
                self.opcodes.insert(t.kind.opcode().mnemonic());
                if let TermKind::Select { arms } = &t.kind {
                    for arm in arms {
                        self.arms.insert(match arm.kind {
                            ArmKind::Recv { into: Some(_), .. } => "recv into",
                            ArmKind::Recv { into: None, .. } => "recv",
                            ArmKind::Send { .. } => "send",
                            ArmKind::Default => "default",
                        });
                    }
                }
            }
        }
    }
}

#[test]
fn golden_programs_print_as_expected_and_round_trip() {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v != "0");
    let files = pir_files("golden");
    assert!(files.len() >= 8, "golden suite went missing");
    let mut failures = Vec::new();
    let mut coverage = Coverage::default();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let prog = match front_end(&name, &bytes) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: does not verify:\n{e}"));
                continue;
            }
        };
        coverage.add(&prog);

        let printed = ir::print(&prog);
        match front_end("printed", printed.as_bytes()) {
            Ok(reparsed) if reparsed == prog => {
                if ir::print(&reparsed) != printed {
                    failures.push(format!("{name}: printing is not stable"));
                }
            }
            Ok(_) => failures.push(format!("{name}: parse(print(p)) != p:\n{printed}")),
            Err(e) => failures.push(format!("{name}: printed text does not verify:\n{e}")),
        }

        let got = golden_text(&prog);
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{name}: printed program differs from {} (BLESS=1 to accept)\n{}",
                expected_path.display(),
                diff(&want, &got)
            )),
            Err(_) => failures.push(format!(
                "{name}: {} is missing (BLESS=1 to create it)",
                expected_path.display()
            )),
        }
        // The expected text, types and all, is itself a valid program equal
        // to the input.
        match front_end("expected", got.as_bytes()) {
            Ok(p) if p == prog => {}
            _ => failures.push(format!("{name}: the expected text is not the same program")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    let missing: Vec<&str> = Opcode::ALL
        .iter()
        .map(|o| o.mnemonic())
        .filter(|m| !coverage.opcodes.contains(m))
        .collect();
    assert!(missing.is_empty(), "no golden program uses {missing:?}");
    assert_eq!(
        coverage.arms.len(),
        4,
        "select arm forms: {:?}",
        coverage.arms
    );
    assert_eq!(coverage.foreign.len(), ir::ForeignFn::ALL.len());
    assert_eq!(coverage.settings.len(), ir::Settings::KEYS.len());
    assert!(coverage.fall_through);
    assert!(coverage.unlabelled_after_terminator);
    assert!(coverage.call_without_result);
}

/// The first differing line, with a little context.
fn diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
    format!(
        "line {}:\n  expected: {:?}\n  got:      {:?}",
        i + 1,
        w.get(i).copied().unwrap_or("<end of file>"),
        g.get(i).copied().unwrap_or("<end of file>")
    )
}

/// `; error: LINE:COL: TEXT` from the first line of a bad file.
fn expectation(name: &str, bytes: &[u8]) -> (u32, u32, String) {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let rest = first
        .strip_prefix("; error: ")
        .unwrap_or_else(|| panic!("{name}: first line must be '; error: LINE:COL: TEXT'"));
    let mut parts = rest.splitn(3, ':');
    let mut num = || -> u32 {
        parts
            .next()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name}: bad position in '{first}'"))
    };
    let (line, col) = (num(), num());
    let text = parts.next().unwrap_or_default().trim().to_string();
    assert!(!text.is_empty(), "{name}: no message text in '{first}'");
    (line, col, text)
}

#[test]
fn bad_programs_are_rejected_at_the_right_place() {
    let files = pir_files("bad");
    assert!(files.len() >= 40, "only {} bad programs", files.len());
    let mut failures = Vec::new();
    let mut messages = BTreeSet::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let (line, col, text) = expectation(&name, &bytes);
        let text_src = String::from_utf8_lossy(&bytes);
        let parsed = parse_bytes(&bytes);
        let err = match parsed {
            Err(e) => e,
            Ok(mut prog) => match ir::verify(&mut prog) {
                Err(e) => e,
                Ok(()) => {
                    failures.push(format!("{name}: accepted"));
                    continue;
                }
            },
        };
        let rendered = err.render(&name, &text_src);
        if (err.span.line, err.span.col) != (line, col) || !err.message.contains(&text) {
            failures.push(format!(
                "{name}: expected {line}:{col}: ...{text}...\n   got {rendered}"
            ));
        }
        // The rendered form is `FILE:LINE:COL: message`, the source line
        // and a caret.
        let lines: Vec<&str> = rendered.lines().collect();
        let header = format!("{name}:{}:{}: {}", err.span.line, err.span.col, err.message);
        if lines.len() != 3 || lines[0] != header || !lines[2].ends_with('^') {
            failures.push(format!("{name}: badly rendered:\n{rendered}"));
        }
        messages.insert(err.message.clone());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // One file per error class: no two files produce the same message.
    assert_eq!(
        messages.len(),
        files.len(),
        "two bad files test the same error"
    );
}

/// Runs the front end and, when it accepts, checks the round trip, which
/// is where a lenient parser and a strict printer would disagree.
fn never_panics(bytes: &[u8]) {
    if let Ok(prog) = front_end("input", bytes) {
        let printed = ir::print(&prog);
        let again = front_end("printed", printed.as_bytes()).expect("printed program verifies");
        assert!(again == prog, "parse(print(p)) != p:\n{printed}");
    }
}

#[test]
fn degenerate_inputs_are_errors_not_panics() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("newlines", b"\n\n\n".to_vec()),
        ("only comments", b"; one\n   ; two\n;three".to_vec()),
        ("NUL", b"\0".to_vec()),
        (
            "NUL in a function",
            b"func @main() {\n    ret\0\n}\n".to_vec(),
        ),
        (
            "NUL in a string",
            b"func @main() {\n    print \"a\0b\"\n    ret\n}\n".to_vec(),
        ),
        ("lone brace", b"}".to_vec()),
        ("nesting of nothing", "{".repeat(100_000).into_bytes()),
        ("parens", "(".repeat(50_000).into_bytes()),
        (
            "func nesting",
            "func @main() {\n".repeat(10_000).into_bytes(),
        ),
        ("closing braces", "}\n".repeat(10_000).into_bytes()),
        ("long line", "x".repeat(100_000).into_bytes()),
        (
            "long comment",
            format!(";{}\n", "y".repeat(100_000)).into_bytes(),
        ),
        (
            "long register name",
            format!(
                "func @main() {{\n    %{0} = const 1\n    print \"{{}}\", %{0}\n    ret\n}}\n",
                "r".repeat(100_000)
            )
            .into_bytes(),
        ),
        (
            "long number",
            format!("global @g: i64 = {}", "9".repeat(100_000)).into_bytes(),
        ),
        (
            "long string",
            format!("func @main() {{\n    print \"{}\n}}\n", "s".repeat(100_000)).into_bytes(),
        ),
        ("invalid UTF-8", b"func @main() {\n\xc3\x28\n}".to_vec()),
        ("CR only", b"func @main() {\r    ret\r}\r".to_vec()),
        (
            "BOM",
            "\u{feff}func @main() {\n    ret\n}\n".as_bytes().to_vec(),
        ),
    ];
    for (what, bytes) in &cases {
        let result = std::panic::catch_unwind(|| front_end(what, bytes));
        assert!(result.is_ok(), "{what}: panicked");
    }
    // Valid programs among the oddities.
    assert!(front_end("crlf", b"func @main() {\r\n    ret\r\n}\r\n").is_ok());
    assert!(front_end("no final newline", b"func @main() {\n    ret\n}").is_ok());
    // The empty program parses and then lacks @main.
    let e = front_end("empty", b"").unwrap_err();
    assert!(
        e.starts_with("empty:1:1: program has no function @main"),
        "{e}"
    );
}

#[test]
fn huge_programs_verify_in_reasonable_time() {
    // 100k lines in one block: a chain of definitions.
    let mut src = String::from("func @main() {\n    %r0 = const 0\n");
    for i in 1..100_000 {
        writeln!(src, "    %r{i} = add %r{}, 1", i - 1).unwrap();
    }
    src.push_str("    print \"{}\", %r99999\n    ret\n}\n");
    assert!(front_end("chain", src.as_bytes()).is_ok());

    // Many blocks and many registers, each defined in its own block and
    // read in the next: the definite-assignment state is blocks x
    // registers bits.
    let mut src = String::from("func @main() {\n    %r0 = const 0\n");
    for i in 1..20_000 {
        writeln!(src, "b{i}:\n    %r{i} = add %r{}, 1", i - 1).unwrap();
    }
    src.push_str("    ret\n}\n");
    assert!(front_end("blocks", src.as_bytes()).is_ok());

    // A copy chain written bottom-up: each type waits for the next line.
    // It is unreachable, so only its types matter.
    let mut src = String::from("func @main() {\n    %c50000 = copy nil\n    ret\n");
    for i in 0..50_000 {
        writeln!(src, "    %c{i} = copy %c{}", i + 1).unwrap();
    }
    src.push_str("    ret\n}\n");
    let prog = front_end("copies", src.as_bytes()).unwrap();
    assert!(prog.funcs[0]
        .regs
        .iter()
        .all(|r| r.ty == Some(ir::Type::Ref)));

    // The same error deep in a huge file is still found and located.
    let mut src = String::from("func @main() {\n");
    for _ in 0..100_000 {
        src.push_str("    yield\n");
    }
    src.push_str("    %x = add %y, 1\n    ret\n}\n");
    let e = front_end("deep", src.as_bytes()).unwrap_err();
    assert!(e.starts_with("deep:100002:5: undefined register %y"), "{e}");
}

/// Words that make random text get past the lexer and into the parser and
/// verifier.
const VOCABULARY: &[&str] = &[
    "func",
    "@main",
    "@f",
    "@g",
    "global",
    "set",
    "procs",
    "opt",
    "=",
    "(",
    ")",
    "{",
    "}",
    "->",
    ",",
    ":",
    "i64",
    "ref",
    "chan",
    "%a",
    "%b",
    "%c",
    "%v",
    "0",
    "1",
    "-1",
    "0x10",
    "nil",
    "\"{}\"",
    "\"x\"",
    "L",
    "M",
    "L:",
    "M:",
    "\n",
    "\n",
    "\n",
    "    ",
    "ret",
    "jmp",
    "br",
    "select",
    "recv",
    "send",
    "default",
    "into",
    "const",
    "copy",
    "add",
    "eq",
    "load",
    "store",
    "load.atomic",
    "cas.atomic",
    "call",
    "spawn",
    "print",
    "assert",
    "panic",
    "ccall",
    "sleep",
    "new",
    "get",
    "setref",
    "chan",
    "close",
    "after",
    "goexit",
    "yield",
    "now",
    "; c",
];

/// A valid program to mutate line by line.
const SEED: &str = "global @g: i64 = 1
global @r: ref

func @f(%a: i64, %p: ref) -> i64 {
    %s = add %a, 1
    %q = getref %p, 0
    store @r, %q
    ret %s
}

func @main() {
    %c = chan 1
    send %c, 2
    %o = new 2
    %x = call @f(3, %o)
    select recv %c into %v -> L, default -> M
L:
    print \"{} {}\", %x, %v
M:
    %n = add.atomic @g, %x
    br %n, M, N
N:
    ret
}
";

#[test]
fn the_mutation_seed_is_valid() {
    front_end("seed", SEED.as_bytes()).unwrap();
}

proptest! {
    // Integration tests have no lib.rs for proptest to store regressions
    // beside; a failure prints its minimal input instead.
    #![proptest_config(ProptestConfig {
        // PREEMPT_PROPTEST_DIVISOR=N runs 1/N of the cases (the aarch64 lane, under qemu).
        cases: (512 / std::env::var("PREEMPT_PROPTEST_DIVISOR")
            .map_or(1, |d| d.parse().expect("PREEMPT_PROPTEST_DIVISOR: a positive integer")))
        .max(1),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        never_panics(&bytes);
    }

    #[test]
    fn random_token_soup_never_panics(
        words in proptest::collection::vec(proptest::sample::select(VOCABULARY), 0..200)
    ) {
        never_panics(words.join(" ").as_bytes());
    }

    #[test]
    fn mutated_programs_never_panic(
        edits in proptest::collection::vec((0usize..4, 0usize..64, 0usize..64), 1..6)
    ) {
        // Delete, duplicate, swap or truncate lines of a valid program:
        // this reaches the verifier with almost-valid programs.
        let mut lines: Vec<String> = SEED.lines().map(str::to_string).collect();
        for (kind, i, j) in edits {
            let n = lines.len();
            if n == 0 {
                break;
            }
            let (i, j) = (i % n, j % n);
            match kind {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let l = lines[i].clone();
                    lines.insert(j, l);
                }
                2 => lines.swap(i, j),
                _ => {
                    let l = &mut lines[i];
                    let cut = l.char_indices().nth(j % (l.len() + 1)).map_or(l.len(), |c| c.0);
                    l.truncate(cut);
                }
            }
        }
        never_panics(lines.join("\n").as_bytes());
    }
}
