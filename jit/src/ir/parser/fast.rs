//! The parser's fast paths for the commonest lines of a program,
//! `%d = op X[, Y]` (and constants, loads and calls with a destination),
//! `store @g, X` and effects such as `set %o, K, X`: the rest of the line
//! after its first two tokens read straight from the bytes of the text
//! instead of token by token.
//!
//! It takes only what it is sure of: plain operands (a register, a decimal
//! integer of at most 18 digits, `nil`), blanks between them, nothing
//! after the last but blanks and the newline, and names that resolve.
//! Anything else (a comment, a hexadecimal or very long literal, a missing
//! comma, an unknown global, the end of the text) it leaves, having
//! changed nothing, to the general path, which reads the same line token
//! by token and reports its errors. So a line it takes gives exactly the
//! instruction the general path would, its registers numbered in the
//! same order (the destination first, then the operands left to right),
//! and every error is the general path's.

use super::{FuncState, Parser};
use crate::ir::lexer::{ascii, is_name_char, is_name_start, name_end, Tok};
use crate::ir::{Format, FuncId, Inst, InstKind, Opcode, Operand};

/// An operand as read, before its register (if any) is numbered.
#[derive(Clone, Copy)]
pub(super) enum Raw<'a> {
    Reg(&'a str),
    Imm(i64),
    Nil,
}

/// The most operands an instruction the fast path takes may have (a call's
/// arguments beyond these go to the general path).
const MAX_ARGS: usize = 6;

/// The longest decimal literal taken (any 18 digits fit in an i64).
const MAX_DIGITS: usize = 18;

/// The first byte at or after `i` that is not a blank.
#[inline]
fn blanks(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\r')) {
        i += 1;
    }
    i
}

/// The name after a sigil at `i` (`%x`, `@g`): the name and the byte after it.
#[inline]
fn sigil_name(b: &[u8], i: usize, sigil: u8) -> Option<(&str, usize)> {
    if b.get(i) != Some(&sigil) || !b.get(i + 1).is_some_and(|&c| is_name_start(c)) {
        return None;
    }
    let end = name_end(b, i + 1);
    Some((ascii(&b[i + 1..end]), end))
}

/// A decimal literal at `i`, optionally negative, ending where no name
/// character follows: its value and the byte after it.
#[inline]
fn decimal(b: &[u8], mut i: usize) -> Option<(i64, usize)> {
    let negative = b.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let start = i;
    let mut v: i64 = 0;
    while let Some(&c) = b.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        v = v * 10 + i64::from(c - b'0');
        i += 1;
        if i - start > MAX_DIGITS {
            return None;
        }
    }
    // `0x1F`, `1_000`, `12abc`: the lexer's to read, or to reject.
    if i == start || b.get(i).is_some_and(|&c| is_name_char(c)) {
        return None;
    }
    Some((if negative { -v } else { v }, i))
}

/// An operand at `i` (blanks before it skipped): it and the byte after it.
#[inline]
fn operand(b: &[u8], i: usize) -> Option<(Raw<'_>, usize)> {
    let i = blanks(b, i);
    match *b.get(i)? {
        b'%' => sigil_name(b, i, b'%').map(|(name, end)| (Raw::Reg(name), end)),
        b'-' | b'0'..=b'9' => decimal(b, i).map(|(v, end)| (Raw::Imm(v), end)),
        b'n' if b.get(i..i + 3) == Some(b"nil")
            && !b.get(i + 3).is_some_and(|&c| is_name_char(c)) =>
        {
            Some((Raw::Nil, i + 3))
        }
        _ => None,
    }
}

/// An operand the lexer has read as a token (the general path's reading
/// of an operand too).
pub(super) fn raw(tok: Tok<'_>) -> Option<Raw<'_>> {
    match tok {
        Tok::Reg(name) => Some(Raw::Reg(name)),
        Tok::Int(v) => Some(Raw::Imm(v)),
        Tok::Ident("nil") => Some(Raw::Nil),
        _ => None,
    }
}

/// What stands after the mnemonic of a line without a destination.
#[derive(Clone, Copy)]
enum First<'a> {
    Global(crate::ir::GlobalId),
    Operand(Raw<'a>),
}

/// Blanks and the newline from `i`: the first byte of the next line.
#[inline]
fn line_end(b: &[u8], i: usize) -> Option<usize> {
    punct(b, i, b'\n')
}

/// `c` after blanks at `i`: the byte after it.
#[inline]
fn punct(b: &[u8], i: usize, c: u8) -> Option<usize> {
    let i = blanks(b, i);
    (b.get(i) == Some(&c)).then_some(i + 1)
}

impl<'a> FuncState<'a> {
    /// The operand `raw` stands for, its register numbered.
    pub(super) fn operand(&mut self, raw: Raw<'a>) -> Operand {
        match raw {
            Raw::Reg(name) => Operand::Reg(self.reg(name)),
            Raw::Imm(v) => Operand::Imm(v),
            Raw::Nil => Operand::Nil,
        }
    }
}

impl<'a> Parser<'a> {
    /// With `%d` the current token and `=` the next, reads the rest of the
    /// line from the text if the fast path takes it (see the module's
    /// documentation): adds the instruction, moves to the next line and
    /// returns true. Otherwise returns false, nothing changed.
    pub(super) fn fast_instruction(&mut self, st: &mut FuncState<'a>) -> bool {
        let Tok::Reg(dst) = self.cur.tok else {
            return false;
        };
        if !self.fast || !matches!(self.ahead.tok, Tok::Eq) || self.lex_error.is_some() {
            return false;
        }
        let b = self.lexer.text().as_bytes();
        let (after_eq, _) = self.lexer.position();
        let Some(line) = self.fast_line(b, after_eq) else {
            return false;
        };
        let span = self.cur.span;
        let dst = st.reg(dst);
        let mut reg = |raw| st.operand(raw);
        let kind = match line.shape {
            Shape::Const(value) => InstKind::Const { dst, value },
            Shape::Nullary => InstKind::Nullary { op: line.op, dst },
            Shape::Unary(x) => InstKind::Unary {
                op: line.op,
                dst,
                arg: reg(x),
            },
            Shape::Binary(x, y) => {
                let a = reg(x);
                InstKind::Binary {
                    op: line.op,
                    dst,
                    args: [a, reg(y)],
                }
            }
            Shape::Load(global) => InstKind::Load {
                op: line.op,
                dst,
                global,
            },
            Shape::Call(func, n, args) => InstKind::Call {
                dst: Some(dst),
                func,
                args: args[..n].iter().map(|&a| reg(a)).collect(),
            },
        };
        self.finish_line(st, Inst::new(kind, span), line.next);
        true
    }

    /// With a mnemonic the current token and its first operand the next,
    /// reads the rest of a `store @g, X` or an effect's line (`set %o, 1,
    /// %x`) from the text if the fast path takes it, as
    /// [`Parser::fast_instruction`] does.
    pub(super) fn fast_effect(&mut self, st: &mut FuncState<'a>) -> bool {
        let Tok::Ident(mnemonic) = self.cur.tok else {
            return false;
        };
        if !self.fast || self.lex_error.is_some() {
            return false;
        }
        let Some(op) = Opcode::from_mnemonic(mnemonic) else {
            return false;
        };
        let b = self.lexer.text().as_bytes();
        let (at, _) = self.lexer.position();
        let (first, n) = match (op.format(), self.ahead.tok) {
            (Format::Store, Tok::Global(name)) => match self.global_ids.get(name) {
                Some(&(global, _)) => (First::Global(global), 1),
                None => return false,
            },
            (Format::Effect, tok) => match raw(tok) {
                Some(x) => (First::Operand(x), op.operand_types().len()),
                None => return false,
            },
            _ => return false,
        };
        if n == 0 || n > MAX_ARGS {
            return false;
        }
        // The operands after the first, each after a comma.
        let mut rest = [Raw::Nil; MAX_ARGS];
        let mut end = at;
        for r in rest
            .iter_mut()
            .take(n - usize::from(matches!(first, First::Operand(_))))
        {
            let Some((x, next)) = punct(b, end, b',').and_then(|i| operand(b, i)) else {
                return false;
            };
            *r = x;
            end = next;
        }
        let Some(next) = line_end(b, end) else {
            return false;
        };
        let span = self.cur.span;
        let mut reg = |raw| st.operand(raw);
        let kind = match first {
            First::Global(global) => InstKind::Store {
                op,
                global,
                value: reg(rest[0]),
            },
            First::Operand(x) => {
                let mut args = Vec::with_capacity(n);
                args.push(reg(x));
                args.extend(rest[..n - 1].iter().map(|&r| reg(r)));
                InstKind::Effect { op, args }
            }
        };
        self.finish_line(st, Inst::new(kind, span), next);
        true
    }

    /// Adds the instruction a fast path read and moves to the line that
    /// starts at byte `next`.
    fn finish_line(&mut self, st: &mut FuncState<'a>, inst: Inst, next: usize) {
        st.push(inst);
        self.lexer.start_line_at(next);
        self.cur = self.pull();
        self.ahead = self.pull();
        self.fast_lines += 1;
    }

    /// Reads `op operands` and the line's end from byte `i`, resolving
    /// globals and functions; `None` where the general path must read it.
    #[inline]
    fn fast_line(&self, b: &'a [u8], i: usize) -> Option<Line<'a>> {
        let i = blanks(b, i);
        if !b.get(i).is_some_and(|&c| is_name_start(c)) {
            return None;
        }
        let m_end = name_end(b, i);
        let op = Opcode::from_mnemonic(ascii(&b[i..m_end]))?;
        let (shape, end) = match op.format() {
            Format::Const => {
                let at = blanks(b, m_end);
                let (v, end) = decimal(b, at)?;
                (Shape::Const(v), end)
            }
            Format::Nullary => (Shape::Nullary, m_end),
            Format::Unary => {
                let (x, end) = operand(b, m_end)?;
                (Shape::Unary(x), end)
            }
            Format::Binary => {
                let (x, end) = operand(b, m_end)?;
                let (y, end) = operand(b, punct(b, end, b',')?)?;
                (Shape::Binary(x, y), end)
            }
            Format::Load => {
                let (name, end) = sigil_name(b, blanks(b, m_end), b'@')?;
                let &(global, _) = self.global_ids.get(name)?;
                (Shape::Load(global), end)
            }
            Format::Call => {
                let (name, end) = sigil_name(b, blanks(b, m_end), b'@')?;
                let &(func, _) = self.func_ids.get(name)?;
                let mut at = punct(b, end, b'(')?;
                let mut args = [Raw::Nil; MAX_ARGS];
                let mut n = 0;
                if let Some(close) = punct(b, at, b')') {
                    at = close;
                } else {
                    loop {
                        let (x, end) = operand(b, at)?;
                        *args.get_mut(n)? = x;
                        n += 1;
                        if let Some(next) = punct(b, end, b',') {
                            at = next;
                            continue;
                        }
                        at = punct(b, end, b')')?;
                        break;
                    }
                }
                (Shape::Call(func, n, args), at)
            }
            _ => return None,
        };
        Some(Line {
            op,
            shape,
            next: line_end(b, end)?,
        })
    }
}

/// A line the fast path read.
struct Line<'a> {
    op: Opcode,
    shape: Shape<'a>,
    /// The first byte of the next line.
    next: usize,
}

/// The operands of a line the fast path read, by its instruction's format.
enum Shape<'a> {
    Const(i64),
    Nullary,
    Unary(Raw<'a>),
    Binary(Raw<'a>, Raw<'a>),
    Load(crate::ir::GlobalId),
    Call(FuncId, usize, [Raw<'a>; MAX_ARGS]),
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::Parser;
    use crate::ir::{parse_with, Error, Program};
    use crate::par::Threads;

    /// The text read by the general path alone.
    fn general(source: &str) -> Result<Program, Error> {
        let mut p = Parser::new(source);
        p.fast = false;
        p.prescan(source, Threads::ONE);
        p.whole()
    }

    /// The text read as the parser reads it, and how many lines the fast
    /// path took.
    fn with_fast_path(source: &str) -> (Result<Program, Error>, usize) {
        let mut p = Parser::new(source);
        p.prescan(source, Threads::ONE);
        let taken = {
            let result = p.program(false);
            (result, p.fast_lines)
        };
        (parse_with(source, Threads::ONE), taken.1)
    }

    /// Both paths agree on `source`; how many lines the fast path took.
    #[track_caller]
    fn agree(source: &str) -> usize {
        let (fast, taken) = with_fast_path(source);
        assert_eq!(fast, general(source), "the paths differ on:\n{source}");
        taken
    }

    /// `line` as the second line of a function's body.
    fn in_function(line: &str) -> String {
        format!(
            "global @g: i64 = 1\nfunc @h(%a: i64) -> i64 {{\n    ret %a\n}}\n\
             func @f(%a: i64, %p: ref) {{\n    %y = const 1\n    {line}\n    ret\n}}\n"
        )
    }

    #[test]
    fn every_program_of_the_repository_parses_the_same() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut dirs = vec![root.clone()];
        let (mut files, mut taken) = (0, 0);
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("a directory of the repository") {
                let path = entry.expect("a directory entry").path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if path.is_dir() && name != "target" && !name.starts_with('.') {
                    dirs.push(path);
                } else if name.ends_with(".pir") {
                    let bytes = std::fs::read(&path).expect("a readable program");
                    // Text that is not UTF-8 never reaches the parser.
                    let Ok(text) = String::from_utf8(bytes) else {
                        continue;
                    };
                    taken += agree(&text);
                    files += 1;
                }
            }
        }
        assert!(files > 100, "found only {files} programs under {root:?}");
        assert!(taken > 1000, "the fast path took only {taken} lines");
    }

    #[test]
    fn the_lines_it_takes_and_the_ones_it_leaves() {
        // (line, whether the fast path takes it)
        let cases = [
            ("%x = add %a, 1", true),
            ("%x=add %a,1", true),
            ("%x = add%a,%a", true),
            ("%x = add %a, -5\t\r", true),
            ("%x = add %a, 999999999999999999", true),
            ("%x = const -0", true),
            ("%x = copy nil", true),
            ("%x = load @g", true),
            ("%x = load.atomic @g", true),
            ("%x = call @h(%a)", true),
            ("%x = call @h( 1 , %a )", false), // too many arguments for @h: the verifier's
            ("%x = call @h()", true),
            ("%x = now", true),
            ("%x = neg %y", true),
            ("%x = add %a, 9999999999999999999", false),
            ("%x = add %a, 99999999999999999999", false),
            ("%x = add %a, -9223372036854775808", false),
            ("%x = add %a, 0x10", false),
            ("%x = add %a, 1_000", false),
            ("%x = add %a, 12abc", false),
            ("%x = add %a, 1.5", false),
            ("%x = add %a 1", false),
            ("%x = add %a, 1 ; a comment", false),
            ("%x = add %a, 1 ; é", false),
            ("%x = add %a, 1é", false),
            ("%x = add %a, \"s\"", false),
            ("%x = add %a, -", false),
            ("%x = add %a, --1", false),
            ("%x = add %a, %b, %c", false),
            ("%x = add %a, 1 extra", false),
            ("%x = add", false),
            ("%x = add %", false),
            ("%x = add %1, %a", false),
            ("%x = frob %a", false),
            ("%x = const nil", false),
            ("%x = copy nilx", false),
            ("%x = copy nil.y", false),
            ("%x = load @nope", false),
            ("%x = load @h", false),
            ("%x = call @h(%a,)", false),
            ("%x = call @h(1, 2, 3, 4, 5, 6, 7)", false),
            ("%x = call @nope(1)", false),
            ("%x = call @g(1)", false),
            ("%x = call @h", false),
            ("%x = now %a", false),
            ("%x = store @g, 1", false),
            ("%x = print \"{}\", 1", false),
            ("store @g, 1", true),
            ("store.atomic @g,%a", true),
            ("store @g 1", false),
            ("store @g, 1 ; c", false),
            ("store @nope, 1", false),
            ("store %a, 1", false),
            ("set %p, 0, %a", true),
            ("set nil, 0, 1", true),
            ("set 0x10, 0, 1", true),
            ("set %p, 0x10, 1", false),
            ("set %p, 0", false),
            ("set %p, 0, %a, 1", false),
            ("set %p 0, 1", false),
            ("yield", false),
            ("gc", false),
        ];
        for (line, takes) in cases {
            let text = in_function(line);
            // `%y = const 1` is taken in every case.
            let taken = agree(&text) - 1;
            // The call with two arguments is taken and fails later, in the
            // verifier, not the parser.
            let expected = usize::from(takes || line.contains("( 1 , %a )"));
            assert_eq!(taken, expected, "{line:?}");
        }
        // Line endings the fast path does not take.
        for text in [
            "func @f() {\n    %x = add 1, 2",
            "func @f() {\n    %x = add 1, 2\r\n}\r\n",
            "func @f() {\n    %x = add 1, 2 ;\n}",
        ] {
            agree(text);
        }
    }

    /// Bits of lines, to put together at random.
    const FRAGMENTS: &[&str] = &[
        "%x",
        "%a",
        "%p",
        " ",
        " ",
        ",",
        ", ",
        "=",
        " = ",
        "add",
        "const",
        "copy",
        "call",
        "load",
        "now",
        "@h",
        "@g",
        "@f",
        "(",
        ")",
        "1",
        "-",
        "-7",
        "0x1F",
        "_",
        "nil",
        ";",
        "\t",
        "\r",
        "9999999999999999999",
        "é",
        "\"s\"",
        "\n",
        "{",
        "}",
        ":",
        "->",
        "set",
        "print",
        "store",
        "@g,",
        "yield",
    ];

    /// How a random line starts: with a destination, or a mnemonic that
    /// takes none, or anything.
    const STARTS: &[&str] = &["%x = ", "%x = add ", "", "set ", "store ", "store @g, "];

    proptest! {
        #![proptest_config(ProptestConfig {
            // PREEMPT_PROPTEST_DIVISOR=N runs 1/N of the cases (the aarch64
            // lane, under qemu).
            cases: 2000 / std::env::var("PREEMPT_PROPTEST_DIVISOR")
                .map_or(1, |d| d.parse().expect("PREEMPT_PROPTEST_DIVISOR: a positive integer")),
            ..ProptestConfig::default()
        })]

        /// Whatever the line, the fast path gives what the general path
        /// gives: the same program or the same error.
        #[test]
        fn random_lines_parse_the_same(
            start in proptest::sample::select(STARTS),
            parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..10),
        ) {
            let line = format!("{start}{}", parts.concat());
            let text = in_function(&line);
            let (fast, _) = with_fast_path(&text);
            prop_assert_eq!(fast, general(&text), "{:?}", line);
        }
    }
}
