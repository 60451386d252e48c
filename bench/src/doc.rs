//! What a suite shows people, built once and rendered twice: as the text
//! `preempt bench` prints, and as a section of the HTML page of
//! `preempt bench --report DIR` ([`crate::html`]). A suite builds a
//! [`Doc`] of titled tables, lines, notes, warnings and plots; the text
//! and the page show the same things in the same order.

use std::fmt::Write as _;
use std::path::PathBuf;

/// How `--quick` marks every title: its figures check the harness, they
/// are not measurements.
pub const QUICK_MARK: &str = "[--quick: tiny sizes, NOT A MEASUREMENT]";

/// A table: a head and rows of cells. Columns are right-aligned except
/// those in `left` (the first, by default). A row shorter than the head
/// is a name and a reason: its first cell in the first column, the rest
/// run on in one cell (HTML: spanning the other columns).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub left: Vec<usize>,
}

impl Table {
    pub fn new<S: ToString>(head: &[S]) -> Table {
        Table {
            head: head.iter().map(ToString::to_string).collect(),
            rows: Vec::new(),
            left: vec![0],
        }
    }

    /// These columns left-aligned (the first always is).
    pub fn left(mut self, cols: &[usize]) -> Table {
        self.left.extend_from_slice(cols);
        self
    }

    pub fn row<S: ToString>(&mut self, cells: &[S]) {
        self.rows
            .push(cells.iter().map(ToString::to_string).collect());
    }

    pub fn is_left(&self, col: usize) -> bool {
        self.left.contains(&col)
    }

    /// The table as aligned text, one line per row, trailing blanks cut.
    pub fn text(&self) -> String {
        let cols = self.head.len();
        let mut width: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            // A reason row sets the first column's width only.
            let n = if r.len() == cols { cols } else { 1 };
            for (w, c) in width.iter_mut().zip(r).take(n) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                let sep = if i == 0 { "" } else { "  " };
                if cells.len() != cols && i > 0 {
                    let _ = write!(s, "  {c}");
                } else if self.is_left(i) {
                    let _ = write!(s, "{sep}{c:<w$}", w = width[i]);
                } else {
                    let _ = write!(s, "{sep}{c:>w$}", w = width[i]);
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.head);
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// One piece of a suite's output.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A title: what the table or lines under it are.
    Title(String),
    /// A line of description (the machine, the settings).
    Line(String),
    Table(Table),
    /// Printed as `note: ...`.
    Note(String),
    /// Printed as `WARNING: ...`: a reason not to trust figures of the run.
    Warning(String),
    /// An SVG plot written to `path`, with what it shows.
    Plot {
        caption: String,
        path: PathBuf,
    },
}

/// A suite's output: its name and its blocks, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Doc {
    pub suite: String,
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn new(suite: &str) -> Doc {
        Doc {
            suite: suite.to_string(),
            blocks: Vec::new(),
        }
    }

    /// A title, marked when the run is `--quick`.
    pub fn title(&mut self, text: impl Into<String>, quick: bool) {
        self.blocks.push(Block::Title(marked(text.into(), quick)));
    }

    pub fn line(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Line(text.into()));
    }

    pub fn table(&mut self, t: Table) {
        self.blocks.push(Block::Table(t));
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Note(text.into()));
    }

    pub fn warning(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Warning(text.into()));
    }

    pub fn plot(&mut self, caption: impl Into<String>, path: PathBuf) {
        self.blocks.push(Block::Plot {
            caption: caption.into(),
            path,
        });
    }

    /// The warnings, in order.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Warning(w) => Some(w.as_str()),
            _ => None,
        })
    }

    /// The output as `preempt bench` prints it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, b) in self.blocks.iter().enumerate() {
            match b {
                // A blank line before each title but the first.
                Block::Title(t) if i > 0 => {
                    let _ = writeln!(out, "\n{t}");
                }
                Block::Title(t) | Block::Line(t) => {
                    let _ = writeln!(out, "{t}");
                }
                Block::Table(t) => out.push_str(&t.text()),
                Block::Note(n) => {
                    let _ = writeln!(out, "note: {n}");
                }
                Block::Warning(w) => {
                    let _ = writeln!(out, "WARNING: {w}");
                }
                Block::Plot { path, .. } => {
                    let _ = writeln!(out, "wrote {}", path.display());
                }
            }
        }
        out
    }
}

/// `text`, with the `--quick` mark when `quick`.
pub fn marked(text: String, quick: bool) -> String {
    if quick {
        format!("{text} {QUICK_MARK}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_keep_reasons_whole() {
        let mut t = Table::new(&["mode", "a", "bb"]);
        t.row(&["none", "1.0", "22.0"]);
        t.row(&["poll/mprotect", "not measured: why"]);
        let text = t.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("mode{}a    bb", " ".repeat(13)));
        assert_eq!(lines[1], format!("none{}1.0  22.0", " ".repeat(11)));
        assert_eq!(lines[2], "poll/mprotect  not measured: why");
        let mut t = Table::new(&["name", "unit", "v"]).left(&[1]);
        t.row(&["x", "ms", "1.5"]);
        assert_eq!(t.text().lines().nth(1), Some("x     ms    1.5"));
    }

    #[test]
    fn docs_print_in_order_and_quick_titles_are_marked() {
        let mut d = Doc::new("s");
        d.title("first", true);
        d.line("machine: m");
        d.warning("busy");
        d.title("second", false);
        d.note("n");
        d.plot("p", PathBuf::from("/x.svg"));
        assert_eq!(
            d.text(),
            format!(
                "first {QUICK_MARK}\nmachine: m\nWARNING: busy\n\nsecond\nnote: n\nwrote /x.svg\n"
            )
        );
        assert_eq!(d.warnings().collect::<Vec<_>>(), ["busy"]);
    }
}
