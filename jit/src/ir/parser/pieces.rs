//! Parsing a large text in pieces, one per thread.
//!
//! The prescan has named every function and global, so a function's body
//! can be parsed knowing nothing of the text before it. The text is cut at
//! lines `func @name` into pieces of about equal length, a few per thread
//! ([`par::PIECES_PER_THREAD`]); each piece is parsed, on whichever thread
//! takes it, as a run of top-level items (the first holds
//! the `set` lines; a later one may not), and the pieces' globals and
//! functions are put together in text order.
//!
//! Only a text that parses is assembled this way. If any piece fails, the
//! whole text is parsed again on one thread, so that the error reported is
//! exactly the one a single pass finds: a piece does not know, for
//! instance, that the function before its first line was never closed,
//! and which error wins between a syntax error and a lexical one further
//! on depends on the whole text. When every piece parses, the one-pass
//! parse reads the same items with the same tables at each cut (a line
//! `func @name` inside a body is an error, so every cut is between
//! items), and the result is the same program.

use super::{Lexer, Parser, Program};
use crate::par::{self, Threads};

/// Source bytes per instruction, about: how the size of a text is weighed
/// against [`Threads::MIN_WORK`].
pub(super) const BYTES_PER_INSTRUCTION: usize = 24;

/// The program, parsed in pieces on up to `threads` threads; `None` when
/// one thread should parse it (the text is small, or a piece failed).
/// `funcs` is where each line `func @name` starts, from the prescan.
pub(super) fn parse_in_pieces<'a>(
    p: &Parser<'a>,
    source: &'a str,
    funcs: &[(usize, u32)],
    threads: Threads,
) -> Option<Program> {
    let text = p.lexer.text();
    let n = threads.count(text.len() / BYTES_PER_INSTRUCTION, funcs.len());
    if n < 2 {
        return None;
    }
    // Piece k + 1 starts at the first function at or after k + 1 m-ths of
    // the text; piece 0 at the start.
    let m = par::piece_count(n);
    let mut starts = vec![(0, 1)];
    for k in 1..m {
        let target = text.len() * k / m;
        let i = funcs.partition_point(|&(pos, _)| pos < target);
        if let Some(&s) = funcs.get(i) {
            if starts.last().is_none_or(|last| last.0 < s.0) {
                starts.push(s);
            }
        }
    }
    let pieces = par::Pieces {
        ranges: (0..starts.len()).map(|k| k..k + 1).collect(),
        threads: n.min(starts.len()),
    };
    let parts = par::map(&pieces, |piece| {
        let k = piece.start;
        let (pos, line) = starts[k];
        let end = starts.get(k + 1).map_or(text.len(), |s| s.0);
        let mut parser = Parser::with_lexer(
            Lexer::resume(text, pos, line, end),
            source,
            p.func_ids.clone(),
            p.global_ids.clone(),
        );
        let prog = parser.program(k > 0).ok()?;
        parser.lex_error.is_none().then_some(prog)
    });
    let mut prog = Program::default();
    for (k, part) in parts.into_iter().enumerate() {
        let part = part?;
        if k == 0 {
            prog.settings = part.settings;
        }
        prog.globals.extend(part.globals);
        prog.funcs.extend(part.funcs);
    }
    Some(prog)
}
