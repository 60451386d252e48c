//! The PIR lexer: text to tokens with positions.
//!
//! PIR is line-oriented, so newlines are tokens. Comments (`;` to the end of
//! the line) and blanks vanish. Integer literals are range-checked here,
//! where their text is still at hand: a literal must fit in i64, and
//! `-0x8000_0000_0000_0000` is the minimum.

use super::{Error, Span};

/// A token; names borrow from the source text.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Tok<'a> {
    /// `@name`
    Global(&'a str),
    /// `%name`
    Reg(&'a str),
    /// A bare name: mnemonic, keyword, label, type.
    Ident(&'a str),
    Int(i64),
    /// A string literal, escapes resolved.
    Str(String),
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

#[derive(Clone, Debug)]
pub struct Token<'a> {
    pub tok: Tok<'a>,
    pub span: Span,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

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

    /// The position of byte `at` of the current line's text.
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
        match self.text[self.pos..].find('\n') {
            Some(k) => self.new_line(self.pos + k + 1),
            None => self.pos = self.text.len(),
        }
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
        loop {
            let Some(&c) = b.get(i) else {
                self.pos = i;
                let span = self.span(i);
                let tok = if self.ended { Tok::Eof } else { Tok::Newline };
                self.ended = true;
                return Ok(Token { tok, span });
            };
            let start = i;
            let tok = match c {
                b' ' | b'\t' | b'\r' => {
                    i += 1;
                    continue;
                }
                b'\n' => {
                    let span = self.span(i);
                    self.new_line(i + 1);
                    return Ok(Token {
                        tok: Tok::Newline,
                        span,
                    });
                }
                b';' => {
                    let end = text[i..].find('\n').map_or(b.len(), |k| i + k);
                    if !b[i..end].is_ascii() {
                        self.wide = true;
                    }
                    i = end;
                    continue;
                }
                b'=' => Tok::Eq,
                b',' => Tok::Comma,
                b':' => Tok::Colon,
                b'(' => Tok::LParen,
                b')' => Tok::RParen,
                b'{' => Tok::LBrace,
                b'}' => Tok::RBrace,
                b'-' if b.get(i + 1) == Some(&b'>') => {
                    i += 1;
                    Tok::Arrow
                }
                b'@' | b'%' => {
                    i += 1;
                    if i >= b.len() || !is_name_start(b[i]) {
                        let what = if c == b'@' {
                            "global or function"
                        } else {
                            "register"
                        };
                        return Err(Error::new(
                            self.span(start),
                            format!("expected a {what} name after '{}'", c as char),
                        ));
                    }
                    while i < b.len() && is_name_char(b[i]) {
                        i += 1;
                    }
                    let name = &text[start + 1..i];
                    self.pos = i;
                    let tok = if c == b'@' {
                        Tok::Global(name)
                    } else {
                        Tok::Reg(name)
                    };
                    return Ok(Token {
                        tok,
                        span: self.span(start),
                    });
                }
                b'"' => {
                    let span = self.span(start);
                    let (s, next) = self.string(start)?;
                    if !b[start..next].is_ascii() {
                        self.wide = true;
                    }
                    self.pos = next;
                    return Ok(Token {
                        tok: Tok::Str(s),
                        span,
                    });
                }
                b'-' | b'0'..=b'9' => {
                    let span = self.span(start);
                    let (v, next) = lex_int(b, start, span)?;
                    self.pos = next;
                    return Ok(Token {
                        tok: Tok::Int(v),
                        span,
                    });
                }
                c if is_name_start(c) => {
                    while i < b.len() && is_name_char(b[i]) {
                        i += 1;
                    }
                    self.pos = i;
                    return Ok(Token {
                        tok: Tok::Ident(&text[start..i]),
                        span: self.span(start),
                    });
                }
                _ => {
                    let ch = text[start..].chars().next().unwrap_or('?');
                    let shown = if ch.is_control() || ch == '\u{feff}' {
                        format!("U+{:04X}", ch as u32)
                    } else {
                        format!("'{ch}'")
                    };
                    return Err(Error::new(
                        self.span(start),
                        format!("unexpected character {shown}"),
                    ));
                }
            };
            // One- and two-byte punctuation.
            self.pos = i + 1;
            return Ok(Token {
                tok,
                span: self.span(start),
            });
        }
    }

    /// The string literal opening at byte `open`, escapes resolved, and the
    /// byte after its closing quote.
    fn string(&self, open: usize) -> Result<(String, usize), Error> {
        let line_end = self.text[open..]
            .find('\n')
            .map_or(self.text.len(), |k| open + k);
        // Columns of errors inside the literal count characters from the
        // start of the line.
        let at = |byte: usize| {
            let col = self.text[self.line_start..byte].chars().count();
            Span::new(self.line, u32::try_from(col + 1).unwrap_or(u32::MAX))
        };
        lex_string(&self.text[..line_end], open, at)
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

fn lex_string(
    text: &str,
    open: usize,
    span: impl Fn(usize) -> Span,
) -> Result<(String, usize), Error> {
    let mut s = String::new();
    let mut chars = text[open + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        let at = open + 1 + k;
        match c {
            '"' => return Ok((s, at + 1)),
            '\\' => {
                let esc = match chars.next() {
                    Some((_, 'n')) => '\n',
                    Some((_, 't')) => '\t',
                    Some((_, '"')) => '"',
                    Some((_, '\\')) => '\\',
                    Some((_, c)) => {
                        return Err(Error::new(
                            span(at),
                            format!("unknown escape '\\{c}' (PIR strings know \\n \\t \\\" \\\\)"),
                        ))
                    }
                    None => return Err(Error::new(span(open), "unterminated string literal")),
                };
                s.push(esc);
            }
            c if c.is_control() && c != '\t' => {
                return Err(Error::new(
                    span(at),
                    format!(
                        "control character U+{:04X} in a string literal (write \\n or \\t)",
                        c as u32
                    ),
                ))
            }
            c => s.push(c),
        }
    }
    Err(Error::new(span(open), "unterminated string literal"))
}

/// Lexes `-? (0x hex | decimal)` with `_` between digits.
fn lex_int(b: &[u8], start: usize, span: Span) -> Result<(i64, usize), Error> {
    let mut i = start;
    let negative = b[i] == b'-';
    if negative {
        i += 1;
        if !b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            return Err(Error::new(span, "unexpected character '-'"));
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
                    span,
                    "'_' in an integer literal must stand between digits",
                ));
            }
            last_was_digit = false;
        } else if is_name_char(c) {
            return Err(Error::new(
                span,
                format!("invalid character '{}' in integer literal", c as char),
            ));
        } else {
            break;
        }
        i += 1;
    }
    if i == digits_start {
        return Err(Error::new(span, "integer literal has no digits"));
    }
    if !last_was_digit {
        return Err(Error::new(
            span,
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
            span,
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
        assert_eq!(toks(r#""a\n\t\"\\""#)[0], Tok::Str("a\n\t\"\\".into()));
        assert_eq!(toks("->")[0], Tok::Arrow);
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
