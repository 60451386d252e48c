//! The PIR lexer: text to tokens with positions.
//!
//! PIR is line-oriented, so newlines are tokens. Comments (`;` to the end of
//! the line) and blanks vanish. Integer literals are range-checked here,
//! where their text is still at hand: a literal must fit in i64, and
//! `-0x8000_0000_0000_0000` is the minimum.

use super::{Error, Span};

/// A token; names and string literals borrow from the source text, so a
/// token is copied, never cloned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tok<'a> {
    /// `@name`
    Global(&'a str),
    /// `%name`
    Reg(&'a str),
    /// A bare name: mnemonic, keyword, label, type.
    Ident(&'a str),
    Int(i64),
    /// A string literal's text between its quotes, escapes checked but
    /// not resolved ([`unescape`] resolves them).
    Str(&'a str),
    Eq,
    Comma,
    Colon,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Arrow,
    Newline,
    Eof,
}

impl Tok<'_> {
    /// How the token is named in "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Global(n) => format!("'@{n}'"),
            Tok::Reg(n) => format!("'%{n}'"),
            Tok::Ident(n) => format!("'{n}'"),
            Tok::Int(v) => format!("integer {v}"),
            Tok::Str(_) => "a string".to_string(),
            Tok::Eq => "'='".to_string(),
            Tok::Comma => "','".to_string(),
            Tok::Colon => "':'".to_string(),
            Tok::LParen => "'('".to_string(),
            Tok::RParen => "')'".to_string(),
            Tok::LBrace => "'{'".to_string(),
            Tok::RBrace => "'}'".to_string(),
            Tok::Arrow => "'->'".to_string(),
            Tok::Newline => "end of line".to_string(),
            Tok::Eof => "end of file".to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Token<'a> {
    pub tok: Tok<'a>,
    pub span: Span,
}

/// [`CLASS`] bits: a byte that may start a name, one that may continue it.
const NAME_START: u8 = 1;
const NAME_CHAR: u8 = 2;

/// Each byte's classes, so that scanning a name costs a load and a test
/// per byte.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphabetic() || b == b'_' {
            t[c] |= NAME_START;
        }
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
            t[c] |= NAME_CHAR;
        }
        c += 1;
    }
    t
};

#[inline]
pub(super) fn is_name_start(c: u8) -> bool {
    CLASS[c as usize] & NAME_START != 0
}

#[inline]
pub(super) fn is_name_char(c: u8) -> bool {
    CLASS[c as usize] & NAME_CHAR != 0
}

/// A name's bytes as text, without the check that a slice of the source
/// starts and ends on character boundaries.
#[inline]
pub(super) fn ascii(name: &[u8]) -> &str {
    debug_assert!(name.iter().all(|&c| is_name_char(c)));
    // SAFETY: the lexer takes into a name only bytes of [`CLASS`]'s name
    // classes, all ASCII, and ASCII bytes are UTF-8 on their own.
    unsafe { std::str::from_utf8_unchecked(name) }
}

/// The byte after the name continuing from `i`.
#[inline]
pub(super) fn name_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    i
}

/// `b'\n'`, `1` and the top bit in every byte of a word, for
/// [`Lexer::skip_line`].
const NEWLINES: u64 = 0x0a0a_0a0a_0a0a_0a0a;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Scans source text on demand, one token at a time: names borrow from the
/// text and nothing is copied except string literals, whose escapes are
/// resolved. Positions are reported as character columns; only a string
/// literal or a comment can hold non-ASCII text before a token, so the
/// column is the byte offset in the line unless one did.
#[derive(Debug)]
pub struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
    line_start: usize,
    /// Whether the current line holds non-ASCII text before `pos`.
    wide: bool,
    /// The final newline has been given: only [`Tok::Eof`] follows.
    ended: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(source: &'a str) -> Lexer<'a> {
        // A UTF-8 byte-order mark some editors write is not part of the text.
        let text = source.strip_prefix('\u{feff}').unwrap_or(source);
        Lexer {
            text,
            pos: 0,
            line: 1,
            line_start: 0,
            wide: false,
            ended: false,
        }
    }

    /// A lexer for `text[pos..end]`, where `pos` is on line `line` and
    /// only blanks stand before it on that line: the piece of a text that
    /// [`Lexer::position`] gave `pos` and `line` for.
    pub fn resume(text: &'a str, pos: usize, line: u32, end: usize) -> Lexer<'a> {
        let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
        debug_assert!(text[line_start..pos]
            .bytes()
            .all(|c| matches!(c, b' ' | b'\t' | b'\r')));
        Lexer {
            text: &text[..end],
            pos,
            line,
            line_start,
            wide: false,
            ended: false,
        }
    }

    /// The text being read (without a byte-order mark).
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Where the next token is looked for: its byte offset in
    /// [`Lexer::text`], and its line.
    pub fn position(&self) -> (usize, u32) {
        (self.pos, self.line)
    }

    /// The position of byte `at` of the current line's text.
    #[inline]
    fn span(&self, at: usize) -> Span {
        let col = if self.wide {
            self.text[self.line_start..at].chars().count()
        } else {
            at - self.line_start
        };
        Span::new(self.line, u32::try_from(col + 1).unwrap_or(u32::MAX))
    }

    /// Moves to the start of the next line without looking at the rest of
    /// this one (the parser's pre-scan reads only the start of each line).
    pub fn skip_line(&mut self) {
        // Lines are short: eight bytes a step in a register beat both a
        // byte loop and a call to a vectorised search.
        let b = self.text.as_bytes();
        let mut i = self.pos;
        while let Some(eight) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(eight.try_into().expect("eight bytes")) ^ NEWLINES;
            // A zero byte of `w` is a newline. The lowest bit this sets is
            // exact (a false mark needs the borrow of a true zero below it).
            let zero = w.wrapping_sub(ONES) & !w & HIGH_BITS;
            if zero != 0 {
                return self.new_line(i + (zero.trailing_zeros() / 8) as usize + 1);
            }
            i += 8;
        }
        match b[i..].iter().position(|&c| c == b'\n') {
            Some(k) => self.new_line(i + k + 1),
            None => self.pos = self.text.len(),
        }
    }

    /// For the pre-scan: skips the blanks at the start of a line and, unless
    /// the first byte of what follows is one of `first`, the rest of the
    /// line too. Whether a token that may start with one of `first` is
    /// next; `None` at the end of the text.
    pub fn line_starts_with_one_of(&mut self, first: &[u8]) -> Option<bool> {
        let b = self.text.as_bytes();
        while matches!(b.get(self.pos), Some(b' ' | b'\t' | b'\r')) {
            self.pos += 1;
        }
        let &c = b.get(self.pos)?;
        if first.contains(&c) {
            return Some(true);
        }
        self.skip_line();
        Some(false)
    }

    /// Moves to byte `start`, the first of a line, which the caller has
    /// read up to (the newline before it included) without tokens: the
    /// parser's fast path for the commonest instruction lines.
    pub fn start_line_at(&mut self, start: usize) {
        debug_assert!(start > self.pos && self.text.as_bytes()[start - 1] == b'\n');
        self.new_line(start);
    }

    fn new_line(&mut self, start: usize) {
        self.pos = start;
        self.line_start = start;
        self.line = self.line.saturating_add(1);
        self.wide = false;
    }

    /// The next token; after the last line's [`Tok::Newline`], [`Tok::Eof`]
    /// for ever.
    pub fn next_token(&mut self) -> Result<Token<'a>, Error> {
        let text = self.text;
        let b = text.as_bytes();
        let mut i = self.pos;
        // Blanks and comments; the common case, one space, costs a test.
        loop {
            match b.get(i) {
                Some(b' ' | b'\t' | b'\r') => i += 1,
                Some(b';') => i = self.comment(i),
                _ => break,
            }
        }
        let start = i;
        let Some(&c) = b.get(i) else {
            self.pos = i;
            let span = self.span(i);
            let tok = if self.ended { Tok::Eof } else { Tok::Newline };
            self.ended = true;
            return Ok(Token { tok, span });
        };
        let tok = match c {
            b'%' | b'@' => {
                i += 1;
                if !b.get(i).is_some_and(|&c| is_name_start(c)) {
                    return Err(self.no_name(start, c));
                }
                i = name_end(b, i);
                let name = ascii(&b[start + 1..i]);
                if c == b'@' {
                    Tok::Global(name)
                } else {
                    Tok::Reg(name)
                }
            }
            c if is_name_start(c) => {
                i = name_end(b, i);
                Tok::Ident(ascii(&b[start..i]))
            }
            b'\n' => {
                let span = self.span(i);
                self.new_line(i + 1);
                return Ok(Token {
                    tok: Tok::Newline,
                    span,
                });
            }
            b'=' | b',' | b':' | b'(' | b')' | b'{' | b'}' => {
                i += 1;
                match c {
                    b'=' => Tok::Eq,
                    b',' => Tok::Comma,
                    b':' => Tok::Colon,
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    b'{' => Tok::LBrace,
                    _ => Tok::RBrace,
                }
            }
            b'-' if b.get(i + 1) == Some(&b'>') => {
                i += 2;
                Tok::Arrow
            }
            b'-' | b'0'..=b'9' => {
                let (v, next) = lex_int(b, start, || self.span(start))?;
                i = next;
                Tok::Int(v)
            }
            b'"' => {
                let span = self.span(start);
                let next = self.string(start)?;
                if !b[start..next].is_ascii() {
                    self.wide = true;
                }
                self.pos = next;
                return Ok(Token {
                    tok: Tok::Str(&text[start + 1..next - 1]),
                    span,
                });
            }
            _ => return Err(self.unexpected_character(start)),
        };
        self.pos = i;
        Ok(Token {
            tok,
            span: self.span(start),
        })
    }

    /// Skips the comment at byte `i`: the byte of the newline that ends it.
    #[cold]
    fn comment(&mut self, i: usize) -> usize {
        let b = self.text.as_bytes();
        let end = b[i..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |k| i + k);
        if !b[i..end].is_ascii() {
            self.wide = true;
        }
        end
    }

    #[cold]
    fn no_name(&self, start: usize, sigil: u8) -> Error {
        let what = if sigil == b'@' {
            "global or function"
        } else {
            "register"
        };
        Error::new(
            self.span(start),
            format!("expected a {what} name after '{}'", sigil as char),
        )
    }

    #[cold]
    fn unexpected_character(&self, start: usize) -> Error {
        let ch = self.text[start..].chars().next().unwrap_or('?');
        let shown = if ch.is_control() || ch == '\u{feff}' {
            format!("U+{:04X}", ch as u32)
        } else {
            format!("'{ch}'")
        };
        Error::new(self.span(start), format!("unexpected character {shown}"))
    }

    /// Checks the string literal opening at byte `open`; the byte after its
    /// closing quote.
    fn string(&self, open: usize) -> Result<usize, Error> {
        let line_end = self.text[open..]
            .find('\n')
            .map_or(self.text.len(), |k| open + k);
        // Columns of errors inside the literal count characters from the
        // start of the line.
        let at = |byte: usize| {
            let col = self.text[self.line_start..byte].chars().count();
            Span::new(self.line, u32::try_from(col + 1).unwrap_or(u32::MAX))
        };
        check_string(&self.text[..line_end], open, at)
    }
}

/// Turns the whole source into tokens; the last token is always
/// [`Tok::Eof`]. The parser does not use this: it pulls tokens from a
/// [`Lexer`] one at a time.
pub fn lex(source: &str) -> Result<Vec<Token<'_>>, Error> {
    let mut lexer = Lexer::new(source);
    let mut tokens = Vec::new();
    loop {
        let t = lexer.next_token()?;
        let eof = t.tok == Tok::Eof;
        tokens.push(t);
        if eof {
            return Ok(tokens);
        }
    }
}

/// A string literal's text (as [`Tok::Str`] holds it) with its escapes
/// resolved.
pub fn unescape(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            s.push(c);
            continue;
        }
        // The lexer let through only these four escapes.
        s.push(match chars.next() {
            Some('n') => '\n',
            Some('t') => '\t',
            Some(other) => other,
            None => break,
        });
    }
    s
}

/// Checks the escapes and characters of the string literal opening at
/// byte `open`; the byte after its closing quote.
fn check_string(text: &str, open: usize, span: impl Fn(usize) -> Span) -> Result<usize, Error> {
    let mut chars = text[open + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        let at = open + 1 + k;
        match c {
            '"' => return Ok(at + 1),
            '\\' => match chars.next() {
                Some((_, 'n' | 't' | '"' | '\\')) => {}
                Some((_, c)) => {
                    return Err(Error::new(
                        span(at),
                        format!("unknown escape '\\{c}' (PIR strings know \\n \\t \\\" \\\\)"),
                    ))
                }
                None => return Err(Error::new(span(open), "unterminated string literal")),
            },
            c if c.is_control() && c != '\t' => {
                return Err(Error::new(
                    span(at),
                    format!(
                        "control character U+{:04X} in a string literal (write \\n or \\t)",
                        c as u32
                    ),
                ))
            }
            _ => {}
        }
    }
    Err(Error::new(span(open), "unterminated string literal"))
}

/// Lexes `-? (0x hex | decimal)` with `_` between digits.
fn lex_int(b: &[u8], start: usize, at: impl Fn() -> Span) -> Result<(i64, usize), Error> {
    let mut i = start;
    let negative = b[i] == b'-';
    if negative {
        i += 1;
        if !b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            return Err(Error::new(at(), "unexpected character '-'"));
        }
    }
    let hex = b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x') | Some(b'X'));
    if hex {
        i += 2;
    }
    let radix: u32 = if hex { 16 } else { 10 };
    let digits_start = i;
    let mut magnitude: u128 = 0;
    let mut overflow = false;
    let mut last_was_digit = false;
    while i < b.len() {
        let c = b[i];
        if let Some(d) = (c as char).to_digit(radix) {
            magnitude = magnitude
                .saturating_mul(radix as u128)
                .saturating_add(d as u128);
            if magnitude > u64::MAX as u128 {
                overflow = true;
            }
            last_was_digit = true;
        } else if c == b'_' {
            if !last_was_digit {
                return Err(Error::new(
                    at(),
                    "'_' in an integer literal must stand between digits",
                ));
            }
            last_was_digit = false;
        } else if is_name_char(c) {
            return Err(Error::new(
                at(),
                format!("invalid character '{}' in integer literal", c as char),
            ));
        } else {
            break;
        }
        i += 1;
    }
    if i == digits_start {
        return Err(Error::new(at(), "integer literal has no digits"));
    }
    if !last_was_digit {
        return Err(Error::new(
            at(),
            "'_' in an integer literal must stand between digits",
        ));
    }
    let value: i128 = if negative {
        -(magnitude as i128)
    } else {
        magnitude as i128
    };
    if overflow || value < i64::MIN as i128 || value > i64::MAX as i128 {
        let text = String::from_utf8_lossy(&b[start..i]);
        return Err(Error::new(
            at(),
            format!("integer literal {text} does not fit in i64 (-9223372036854775808 ..= 9223372036854775807)"),
        ));
    }
    Ok((value as i64, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn integers() {
        assert_eq!(toks("1_000_000")[0], Tok::Int(1_000_000));
        assert_eq!(toks("0xFF")[0], Tok::Int(255));
        assert_eq!(toks("0Xff")[0], Tok::Int(255));
        assert_eq!(toks("-0x8000_0000_0000_0000")[0], Tok::Int(i64::MIN));
        assert_eq!(toks("9223372036854775807")[0], Tok::Int(i64::MAX));
        assert_eq!(toks("-9223372036854775808")[0], Tok::Int(i64::MIN));
        for bad in [
            "9223372036854775808",
            "0x8000000000000000",
            "-9223372036854775809",
            "1__0",
            "1_",
            "0x",
            "12ab",
            "99999999999999999999999999999999999",
        ] {
            assert!(lex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_strings_and_punctuation() {
        assert_eq!(
            toks("%v = load.atomic @done ; hi\n"),
            vec![
                Tok::Reg("v"),
                Tok::Eq,
                Tok::Ident("load.atomic"),
                Tok::Global("done"),
                Tok::Newline,
                Tok::Newline,
                Tok::Eof
            ]
        );
        assert_eq!(toks(r#""a\n\t\"\\""#)[0], Tok::Str(r#"a\n\t\"\\"#));
        assert_eq!(unescape(r#"a\n\t\"\\ é"#), "a\n\t\"\\ é");
        assert_eq!(toks("->")[0], Tok::Arrow);
    }

    /// Skipping a line finds its newline wherever it falls in the
    /// eight-byte steps, past bytes that differ from a newline in one bit
    /// or only in the top bit, and at the end of a text without one.
    #[test]
    fn skip_line_stops_after_the_newline() {
        for fill in ["a", "\u{b}", "\u{8}", "Ċ", "é"] {
            for len in 0..24 {
                let text = format!("{}\nnext\n", fill.repeat(len));
                let mut lexer = Lexer::new(&text);
                lexer.skip_line();
                let t = lexer.next_token().unwrap();
                assert_eq!(
                    (t.tok, t.span.key()),
                    (Tok::Ident("next"), (2, 1)),
                    "{text:?}"
                );
                let unended = fill.repeat(len);
                let mut lexer = Lexer::new(&unended);
                lexer.skip_line();
                assert_eq!(lexer.next_token().unwrap().tok, Tok::Newline);
                assert_eq!(lexer.next_token().unwrap().tok, Tok::Eof);
            }
        }
    }

    #[test]
    fn errors_have_positions() {
        let e = lex("ok\n  $").unwrap_err();
        assert_eq!(e.span.key(), (2, 3));
        let e = lex("print \"abc").unwrap_err();
        assert_eq!(e.span.key(), (1, 7));
        assert!(lex("\"\\q\"").is_err());
        assert!(lex("@").is_err());
        assert!(lex("\0").is_err());
    }
}
