//! The PIR lexer: text to tokens with positions.
//!
//! PIR is line-oriented, so newlines are tokens. Comments (`;` to the end of
//! the line) and blanks vanish. Integer literals are range-checked here,
//! where their text is still at hand: a literal must fit in i64, and
//! `-0x8000_0000_0000_0000` is the minimum.

use super::{Error, Span};

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Tok {
    /// `@name`
    Global(String),
    /// `%name`
    Reg(String),
    /// A bare name: mnemonic, keyword, label, type.
    Ident(String),
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

impl Tok {
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
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Turns the source into tokens; the last token is always [`Tok::Eof`].
pub fn lex(source: &str) -> Result<Vec<Token>, Error> {
    // A UTF-8 byte-order mark some editors write is not part of the text.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut tokens = Vec::new();
    let mut line_no: u32 = 0;
    for line in source.split('\n') {
        line_no = line_no.saturating_add(1);
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let at = |i: usize| Span::new(line_no, u32::try_from(i + 1).unwrap_or(u32::MAX));
        while i < chars.len() {
            let c = chars[i];
            let start = i;
            let span = at(start);
            match c {
                ' ' | '\t' | '\r' => i += 1,
                ';' => break,
                '=' => {
                    tokens.push(Token { tok: Tok::Eq, span });
                    i += 1;
                }
                ',' => {
                    tokens.push(Token {
                        tok: Tok::Comma,
                        span,
                    });
                    i += 1;
                }
                ':' => {
                    tokens.push(Token {
                        tok: Tok::Colon,
                        span,
                    });
                    i += 1;
                }
                '(' => {
                    tokens.push(Token {
                        tok: Tok::LParen,
                        span,
                    });
                    i += 1;
                }
                ')' => {
                    tokens.push(Token {
                        tok: Tok::RParen,
                        span,
                    });
                    i += 1;
                }
                '{' => {
                    tokens.push(Token {
                        tok: Tok::LBrace,
                        span,
                    });
                    i += 1;
                }
                '}' => {
                    tokens.push(Token {
                        tok: Tok::RBrace,
                        span,
                    });
                    i += 1;
                }
                '-' if chars.get(i + 1) == Some(&'>') => {
                    tokens.push(Token {
                        tok: Tok::Arrow,
                        span,
                    });
                    i += 2;
                }
                '@' | '%' => {
                    i += 1;
                    if i >= chars.len() || !is_name_start(chars[i]) {
                        let what = if c == '@' {
                            "global or function"
                        } else {
                            "register"
                        };
                        return Err(Error::new(
                            span,
                            format!("expected a {what} name after '{c}'"),
                        ));
                    }
                    while i < chars.len() && is_name_char(chars[i]) {
                        i += 1;
                    }
                    let name: String = chars[start + 1..i].iter().collect();
                    let tok = if c == '@' {
                        Tok::Global(name)
                    } else {
                        Tok::Reg(name)
                    };
                    tokens.push(Token { tok, span });
                }
                '"' => {
                    let (s, next) = lex_string(&chars, i, &at)?;
                    tokens.push(Token {
                        tok: Tok::Str(s),
                        span,
                    });
                    i = next;
                }
                '-' | '0'..='9' => {
                    let (v, next) = lex_int(&chars, i, span)?;
                    tokens.push(Token {
                        tok: Tok::Int(v),
                        span,
                    });
                    i = next;
                }
                c if is_name_start(c) => {
                    while i < chars.len() && is_name_char(chars[i]) {
                        i += 1;
                    }
                    let name: String = chars[start..i].iter().collect();
                    tokens.push(Token {
                        tok: Tok::Ident(name),
                        span,
                    });
                }
                c => {
                    let shown = if c.is_control() {
                        format!("U+{:04X}", c as u32)
                    } else {
                        format!("'{c}'")
                    };
                    return Err(Error::new(span, format!("unexpected character {shown}")));
                }
            }
        }
        tokens.push(Token {
            tok: Tok::Newline,
            span: at(chars.len()),
        });
    }
    let end = tokens.last().map_or(Span::new(1, 1), |t| t.span);
    tokens.push(Token {
        tok: Tok::Eof,
        span: end,
    });
    Ok(tokens)
}

fn lex_string(
    chars: &[char],
    open: usize,
    at: &dyn Fn(usize) -> Span,
) -> Result<(String, usize), Error> {
    let mut i = open + 1;
    let mut s = String::new();
    loop {
        match chars.get(i) {
            None => return Err(Error::new(at(open), "unterminated string literal")),
            Some('"') => return Ok((s, i + 1)),
            Some('\\') => {
                let esc = match chars.get(i + 1) {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('"') => '"',
                    Some('\\') => '\\',
                    Some(c) => {
                        return Err(Error::new(
                            at(i),
                            format!("unknown escape '\\{c}' (PIR strings know \\n \\t \\\" \\\\)"),
                        ))
                    }
                    None => return Err(Error::new(at(open), "unterminated string literal")),
                };
                s.push(esc);
                i += 2;
            }
            Some(&c) if c.is_control() && c != '\t' => {
                return Err(Error::new(
                    at(i),
                    format!(
                        "control character U+{:04X} in a string literal (write \\n or \\t)",
                        c as u32
                    ),
                ))
            }
            Some(&c) => {
                s.push(c);
                i += 1;
            }
        }
    }
}

/// Lexes `-? (0x hex | decimal)` with `_` between digits.
fn lex_int(chars: &[char], start: usize, span: Span) -> Result<(i64, usize), Error> {
    let mut i = start;
    let negative = chars[i] == '-';
    if negative {
        i += 1;
        if !chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
            return Err(Error::new(span, "unexpected character '-'"));
        }
    }
    let hex = chars.get(i) == Some(&'0') && matches!(chars.get(i + 1), Some('x') | Some('X'));
    if hex {
        i += 2;
    }
    let radix = if hex { 16 } else { 10 };
    let digits_start = i;
    let mut magnitude: u128 = 0;
    let mut overflow = false;
    let mut last_was_digit = false;
    while i < chars.len() {
        let c = chars[i];
        if let Some(d) = c.to_digit(radix) {
            magnitude = magnitude
                .saturating_mul(radix as u128)
                .saturating_add(d as u128);
            if magnitude > u64::MAX as u128 {
                overflow = true;
            }
            last_was_digit = true;
        } else if c == '_' {
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
                format!("invalid character '{c}' in integer literal"),
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
        let text: String = chars[start..i].iter().collect();
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

    fn toks(s: &str) -> Vec<Tok> {
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
                Tok::Reg("v".into()),
                Tok::Eq,
                Tok::Ident("load.atomic".into()),
                Tok::Global("done".into()),
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
