//! Front-end errors and how they are shown.
//!
//! Every error of the parser and the verifier is one [`Error`]: a position
//! and a message. [`Error::render`] turns it into the form every tool of
//! preempt prints:
//!
//! ```text
//! prog.pir:12:9: use of undefined register %x
//!     %y = add %x, 1
//!              ^
//! ```

use std::fmt;

use super::Span;

/// A parse or verify error at a position of the source text.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Error {
    pub span: Span,
    pub message: String,
}

impl Error {
    pub fn new(span: Span, message: impl Into<String>) -> Error {
        Error {
            span,
            message: message.into(),
        }
    }

    /// `FILE:LINE:COL: message`, then the source line and a caret under the
    /// column. Long lines are cut to a window around the column; control
    /// characters are shown as `?` so the caret stays aligned.
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut out = format!(
            "{file}:{}:{}: {}\n",
            self.span.line, self.span.col, self.message
        );
        let Some(line) = source
            .split('\n')
            .nth((self.span.line as usize).saturating_sub(1))
        else {
            return out;
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        let chars: Vec<char> = line.chars().collect();
        let col = (self.span.col as usize).saturating_sub(1).min(chars.len());
        const WINDOW: usize = 100;
        let start = col.saturating_sub(WINDOW / 2);
        let end = (start + WINDOW).min(chars.len());
        let mut text = String::new();
        let mut caret = String::new();
        if start > 0 {
            text.push_str("...");
            caret.push_str("   ");
        }
        for (i, &c) in chars[start..end].iter().enumerate() {
            let shown = if c == '\t' {
                '\t'
            } else if c.is_control() {
                '?'
            } else {
                c
            };
            text.push(shown);
            if start + i < col {
                caret.push(if c == '\t' { '\t' } else { ' ' });
            }
        }
        if end < chars.len() {
            text.push_str("...");
        }
        caret.push('^');
        out.push_str(&text);
        out.push('\n');
        out.push_str(&caret);
        out.push('\n');
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.span, self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_column() {
        let e = Error::new(Span::new(2, 5), "bad");
        let got = e.render("f.pir", "a\n\tx = y\n");
        assert_eq!(got, "f.pir:2:5: bad\n\tx = y\n\t   ^\n");
    }

    #[test]
    fn long_lines_are_windowed() {
        let line = "x".repeat(100_000);
        let e = Error::new(Span::new(1, 50_000), "long");
        let got = e.render("f.pir", &line);
        let lines: Vec<&str> = got.lines().collect();
        assert!(lines[1].len() < 120, "{}", lines[1].len());
        assert_eq!(lines[2].find('^'), Some(53));
    }

    #[test]
    fn missing_line_renders_header_only() {
        let e = Error::new(Span::new(9, 1), "eof");
        assert_eq!(e.render("f.pir", "a\n"), "f.pir:9:1: eof\n");
    }
}
