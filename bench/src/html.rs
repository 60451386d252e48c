//! `preempt bench --report DIR`: one self-contained HTML page per run,
//! for a report or a colleague. It holds what the text shows, in the same
//! order ([`crate::doc`]): a header with the run's provenance (version,
//! date, machine, the command) and the `--quick` mark, then a section per
//! suite with its titles, warnings, tables (as HTML tables), notes and
//! plots (each SVG embedded as a `data:` URI). Nothing is fetched: no
//! script, no style sheet, no font, no image outside the file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::doc::{Block, Doc, Table, QUICK_MARK};

/// `text` with the characters HTML gives a meaning escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648, padded).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}\
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;margin-top:2em}\
h3{font-size:1.05em;margin:1.4em 0 .4em}\
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}\
th,td{border:1px solid #ddd;padding:.25em .6em;white-space:nowrap}\
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}\
td.reason{color:#666;font-style:italic;white-space:normal}td.sub{padding-left:2em}\
p.provenance{color:#555;margin:.2em 0}p.note{color:#555;font-size:.9em;margin:.3em 0}\
p.warning{background:#fff3cd;border-left:4px solid #d39e00;padding:.5em .8em}\
p.quick{background:#f8d7da;border-left:4px solid #c82333;padding:.5em .8em;font-weight:bold}\
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}\
figcaption{color:#555;font-size:.9em}";

/// A table as HTML.
fn table(t: &Table, out: &mut String) {
    out.push_str("<table>\n<thead><tr>");
    for h in &t.head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let cols = t.head.len();
    for r in &t.rows {
        out.push_str("<tr>");
        if r.len() == cols {
            for (i, c) in r.iter().enumerate() {
                // A name indented in the text is a row under the one above
                // (`  p99`): indented here too.
                let class = if !t.is_left(i) {
                    " class=\"num\""
                } else if c.starts_with(' ') {
                    " class=\"sub\""
                } else {
                    ""
                };
                let _ = write!(out, "<td{class}>{}</td>", escape(c.trim_start()));
            }
        } else {
            // A name and a reason: the reason spans the other columns.
            let _ = write!(
                out,
                "<td>{}</td><td class=\"reason\" colspan=\"{}\">{}</td>",
                escape(r.first().map_or("", String::as_str)),
                cols.saturating_sub(1).max(1),
                escape(&r[1.min(r.len())..].join("  "))
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// A plot as an `<img>` with its SVG in a `data:` URI, or a note that it
/// could not be read.
fn plot(caption: &str, path: &Path, out: &mut String) {
    match std::fs::read(path) {
        Ok(svg) => {
            let _ = writeln!(
                out,
                "<figure><img alt=\"{}\" src=\"data:image/svg+xml;base64,{}\">\
                 <figcaption>{} ({})</figcaption></figure>",
                escape(caption),
                base64(&svg),
                escape(caption),
                escape(&path.display().to_string())
            );
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "<p class=\"note\">plot {} not embedded: cannot read it: {}</p>",
                escape(&path.display().to_string()),
                escape(&e.to_string())
            );
        }
    }
}

/// A suite's section.
fn section(doc: &Doc, out: &mut String) {
    let _ = writeln!(
        out,
        "<section id=\"{0}\">\n<h2>preempt bench {0}</h2>",
        escape(&doc.suite)
    );
    for b in &doc.blocks {
        match b {
            Block::Title(t) => {
                let _ = writeln!(out, "<h3>{}</h3>", escape(t));
            }
            Block::Line(l) => {
                let _ = writeln!(out, "<p>{}</p>", escape(l));
            }
            Block::Table(t) => table(t, out),
            Block::Note(n) => {
                let _ = writeln!(out, "<p class=\"note\">note: {}</p>", escape(n));
            }
            Block::Warning(w) => {
                let _ = writeln!(
                    out,
                    "<p class=\"warning\"><strong>WARNING:</strong> {}</p>",
                    escape(w)
                );
            }
            Block::Plot { caption, path } => plot(caption, path, out),
        }
    }
    out.push_str("</section>\n");
}

/// The page: `provenance` (the run line, the command) under the heading,
/// the `--quick` mark when `quick`, then every suite's section.
pub fn page(provenance: &[String], quick: bool, docs: &[Doc]) -> String {
    let mut out =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let suites: Vec<&str> = docs.iter().map(|d| d.suite.as_str()).collect();
    let _ = writeln!(
        out,
        "<title>preempt bench {}{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n\
         <h1>preempt bench</h1>",
        escape(&suites.join(", ")),
        if quick { " (--quick)" } else { "" }
    );
    for p in provenance {
        let _ = writeln!(out, "<p class=\"provenance\">{}</p>", escape(p));
    }
    if quick {
        let _ = writeln!(
            out,
            "<p class=\"quick\">{}: --quick runs tiny sizes to check the harness; no figure on \
             this page is a measurement.</p>",
            escape(QUICK_MARK)
        );
    }
    out.push_str("</header>\n");
    for d in docs {
        section(d, &mut out);
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Where the page of a run started at `secs` (Unix time) goes in `dir`:
/// `preempt-bench-YYYYMMDDHHMMSS.html`.
pub fn page_path(dir: &Path, secs: u64) -> PathBuf {
    let stamp: String = crate::utc(secs)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    dir.join(format!("preempt-bench-{stamp}{:02}.html", secs % 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_rfc4648() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc, "{raw}");
        }
    }

    #[test]
    fn pages_hold_tables_warnings_and_plots_and_fetch_nothing() {
        let dir = std::env::temp_dir().join(format!("preempt-html-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let svg = dir.join("p.svg");
        std::fs::write(&svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>").unwrap();
        let mut d = Doc::new("kernels");
        d.title("kernels <fast> & slow", true);
        d.warning("busy");
        let mut t = Table::new(&["kernel", "ns", "x"]);
        t.row(&["sum", "0.27", "1x"]);
        t.row(&["  p99", "0.5", "2x"]);
        t.row(&["poll", "not measured: why"]);
        d.table(t);
        d.plot("a plot", svg.clone());
        d.plot("gone", dir.join("missing.svg"));
        let html = page(&["preempt 0.1.0".to_string()], true, &[d]);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(html.contains("<h3>kernels &lt;fast&gt; &amp; slow [--quick"));
        assert!(html.contains("<td>sum</td><td class=\"num\">0.27</td>"));
        assert!(html.contains("<td class=\"sub\">p99</td>"));
        assert!(html.contains("<td class=\"reason\" colspan=\"2\">not measured: why</td>"));
        assert!(html.contains("<strong>WARNING:</strong> busy"));
        assert!(html.contains("src=\"data:image/svg+xml;base64,PHN2Zy"));
        assert!(html.contains("plot") && html.contains("not embedded"));
        assert!(html.contains("class=\"quick\""));
        for external in ["<script", "<link", "href=", "src=\"http", "url("] {
            assert!(!html.contains(external), "{external}");
        }
    }
}
