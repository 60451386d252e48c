//! The prescan: every function and global named before any body is
//! parsed, so that references may precede definitions, and where each
//! line `func @name` starts, where the text may be cut into pieces.

use super::{pieces, Lexer, Parser, Tok, Token};
use crate::ir::{FuncId, GlobalId, Span};
use crate::par::{self, Threads};

impl<'a> Parser<'a> {
    /// Assigns ids to every `func @f` and `global @g` at the start of a line,
    /// so references may precede definitions. Duplicates are reported when
    /// the parser reaches them, keeping errors in text order. Only the first
    /// two tokens of each line are read; a lexical error there is the
    /// parser's to report. Returns where each line `func @name` starts (its
    /// first byte and its line), where a piece of the text may start.
    ///
    /// The scan reads the text line by line, knowing nothing of the lines
    /// before, so a large text is scanned in pieces cut at line starts, on
    /// up to `threads` threads; the pieces' finds, their lines counted from
    /// each piece's start, are then taken in text order, as one pass would
    /// have taken them.
    pub(super) fn prescan(&mut self, source: &'a str, threads: Threads) -> Vec<(usize, u32)> {
        let text = Lexer::new(source).text();
        let n = threads.count(text.len() / pieces::BYTES_PER_INSTRUCTION, usize::MAX);
        let m = par::piece_count(n);
        let b = text.as_bytes();
        let mut starts = vec![0];
        for k in 1..m {
            // Each cut is after the one before: the search starts no earlier.
            let from = (text.len() * k / m).max(*starts.last().unwrap_or(&0));
            match b
                .get(from..)
                .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
            {
                Some(i) if from + i + 1 < text.len() => starts.push(from + i + 1),
                _ => break,
            }
        }
        let pieces = par::Pieces {
            ranges: (0..starts.len()).map(|k| k..k + 1).collect(),
            threads: n.min(starts.len()),
        };
        let scans = par::map(&pieces, |piece| {
            let end = starts.get(piece.end).copied().unwrap_or(text.len());
            prescan_piece(Lexer::resume(text, starts[piece.start], 1, end))
        });
        let mut funcs = Vec::new();
        // Lines before the piece being taken.
        let mut before = 0u32;
        for scan in scans {
            let at_line = |line: u32| line.saturating_add(before);
            for found in scan.found {
                let (name, span) = (found.name, found.span);
                let span = Span::new(at_line(span.line), span.col);
                let taken = self.func_ids.contains_key(name) || self.global_ids.contains_key(name);
                if found.func {
                    funcs.push((found.at, at_line(found.line)));
                }
                if found.func && !taken {
                    self.func_ids
                        .insert(name, (FuncId::new(self.n_funcs), span));
                    self.n_funcs += 1;
                } else if !found.func && !taken {
                    self.global_ids
                        .insert(name, (GlobalId::new(self.n_globals), span));
                    self.n_globals += 1;
                }
            }
            before = before.saturating_add(scan.lines);
        }
        funcs
    }
}

/// A line `func @name` or `global @name` the prescan found in a piece of
/// the text, lines counted from the piece's first.
struct Found<'a> {
    func: bool,
    name: &'a str,
    span: Span,
    /// The line's first byte, and its line.
    at: usize,
    line: u32,
}

/// What the prescan found in a piece of the text, and the lines it holds.
struct PieceScan<'a> {
    found: Vec<Found<'a>>,
    lines: u32,
}

/// The prescan of the piece `lexer` reads (see [`Parser::prescan`]):
/// most lines are instructions, passed over byte by byte, not lexed.
fn prescan_piece(mut lexer: Lexer<'_>) -> PieceScan<'_> {
    let mut found = Vec::new();
    loop {
        match lexer.line_starts_with_one_of(b"fg") {
            None => break,
            Some(false) => continue,
            Some(true) => {}
        }
        let (at, line) = lexer.position();
        let func = match lexer.next_token() {
            Ok(Token { tok: Tok::Eof, .. }) => break,
            Ok(Token {
                tok: Tok::Newline, ..
            }) => continue,
            Ok(Token {
                tok: Tok::Ident(kw),
                ..
            }) if kw == "func" || kw == "global" => kw == "func",
            _ => {
                lexer.skip_line();
                continue;
            }
        };
        let next = lexer.next_token();
        // A keyword without a name names nothing, and is no place to cut.
        if let Ok(Token {
            tok: Tok::Global(name),
            span,
        }) = next
        {
            found.push(Found {
                func,
                name,
                span,
                at,
                line,
            });
        }
        if !matches!(
            next,
            Ok(Token {
                tok: Tok::Newline | Tok::Eof,
                ..
            })
        ) {
            lexer.skip_line();
        }
    }
    PieceScan {
        found,
        lines: lexer.position().1 - 1,
    }
}
