//! `preempt compare OLD.json NEW.json`: two result files side by side, in
//! the manner of benchstat: every figure both have, old and new, the
//! change, and whether it is beyond the run-to-run noise ([`stats`]).
//!
//! Files of different suites or format versions are refused (exit 2);
//! different machines, kernels or `--quick` are compared with a warning.
//! `--go-format` prints the files in Go's benchmark format instead, for
//! `benchstat` itself.

pub mod stats;

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use preempt_bench::results::{gobench, percentile_of, stat, Document, Figure, Section};
use serde_json::Value;

use crate::console::{self, errln, out};
use stats::{mann_whitney, min_p, percentile_interval, Method};

/// The significance level.
pub const ALPHA: f64 = 0.05;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The old result file, then the new one (`preempt bench --json`,
    /// `--out-dir`, `stress --json`, `bugs --json`, `run --stats-json`).
    /// A side may be several runs, comma-separated (`a1.json,a2.json`):
    /// their samples are taken together, so runs of the two sides made
    /// alternately share whatever else the machine was doing.
    #[arg(required = true, num_args = 1..=2, value_name = "FILE[,FILE...]")]
    pub files: Vec<String>,
    /// Print the file(s) in Go's benchmark format instead (one after the
    /// other), for `benchstat old.txt new.txt`.
    #[arg(long)]
    pub go_format: bool,
}

const HELP_ALPHA: &str = "\
significance: two-sided Mann-Whitney U test on each figure's samples (benchstat's default),
  alpha = 0.05; exact p with no ties and up to 50 samples a side, else the normal
  approximation with tie and continuity corrections. A figure kept as a histogram is
  tested on the values read back from it (3 significant digits). A p99 row compares
  95% distribution-free confidence intervals of the percentile (order statistics) and
  is significant when they do not overlap. \"~\": not significant, or too few samples
  to tell (n is old+new samples; the U test needs 4 a side to reach p < 0.05).
  ±: half the range of a figure's repetitions, in percent of its value.";

/// `preempt compare ...`.
/// The runs of one side, read and merged.
fn side(files: &str) -> Result<Document, String> {
    let docs = files
        .split(',')
        .filter(|f| !f.is_empty())
        .map(|f| Document::read(Path::new(f)))
        .collect::<Result<Vec<_>, _>>()?;
    Document::merge(&docs).map_err(|e| format!("{files}: {e}"))
}

pub fn main(a: &CompareArgs) -> ExitCode {
    let docs: Result<Vec<Document>, String> = a.files.iter().map(|f| side(f)).collect();
    let docs = match docs {
        Ok(d) => d,
        Err(e) => return usage(&e),
    };
    if a.go_format {
        for d in &docs {
            out!("{}", gobench::write(d));
        }
        return console::exit(0);
    }
    let [old, new] = docs.as_slice() else {
        return usage("compare needs two files (or --go-format)");
    };
    match compare(old, new, Path::new(&a.files[0]), Path::new(&a.files[1])) {
        Ok(text) => {
            out!("{text}");
            console::exit(0)
        }
        Err(e) => usage(&e),
    }
}

fn usage(msg: &str) -> ExitCode {
    errln!("preempt compare: {msg}");
    console::exit(2)
}

/// The sections to compare, by suite: both files' suites in common (an
/// `all` file holds several); an error if they have none.
fn pairs<'a>(
    old: &'a Document,
    new: &'a Document,
) -> Result<Vec<(&'a Section, &'a Section)>, String> {
    let mut out = Vec::new();
    for o in &old.sections {
        if let Some(n) = new.sections.iter().find(|n| n.suite == o.suite) {
            out.push((o, n));
        }
    }
    if out.is_empty() {
        return Err(format!(
            "the files are of different suites ({} and {}): nothing to compare",
            old.suite, new.suite
        ));
    }
    Ok(out)
}

/// What in the provenance moves figures: differences are warned about.
const PROVENANCE_KEYS: &[(&str, &str)] = &[
    ("cpu_model", "CPU"),
    ("available_parallelism", "CPUs"),
    ("arch", "architecture"),
    ("kernel", "kernel"),
    ("virtualised", "virtualised"),
    ("clocksource", "clock source"),
    ("timer_slack_ns", "timer slack (ns)"),
    ("isolated_cpus", "isolated CPUs"),
    ("nohz_full", "nohz_full"),
    ("quick", "--quick"),
    ("test_hooks", "test hooks"),
];

fn show(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "none".into(),
        Value::String(s) => s.clone(),
        Value::Null => "unknown".into(),
        other => other.to_string(),
    }
}

/// The header: which files, from where; warnings where the machines or
/// settings differ.
fn header(old: &Document, new: &Document, a: &Path, b: &Path) -> String {
    let mut s = String::new();
    let line = |d: &Document, f: &Path| {
        let p = &d.provenance;
        let commit: String = show(&p["git_commit"]).chars().take(12).collect();
        format!(
            "{} ({}, {} {}, {}, {}{})",
            f.display(),
            show(&p["date"]),
            show(&p["preempt_version"]),
            commit,
            show(&p["cpu_model"]),
            show(&p["available_parallelism"]),
            if d.quick() { ", --quick" } else { "" }
        )
    };
    let _ = writeln!(s, "preempt compare: {}", old.suite);
    let _ = writeln!(s, "  old: {}", line(old, a));
    let _ = writeln!(s, "  new: {}", line(new, b));
    for (k, what) in PROVENANCE_KEYS {
        let (x, y) = (&old.provenance[*k], &new.provenance[*k]);
        if x != y {
            let _ = writeln!(
                s,
                "warning: the runs differ in {what}: {} against {}; a difference below may be the machine's, not preempt's",
                show(x),
                show(y)
            );
        }
    }
    if old.quick() || new.quick() {
        let _ = writeln!(
            s,
            "warning: --quick runs are not measurements: they check the harness"
        );
    }
    s
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub key: String,
    pub unit: String,
    pub old: f64,
    pub new: f64,
    /// ± half the samples' range, in percent of the value (repetitions).
    pub old_spread: Option<f64>,
    pub new_spread: Option<f64>,
    pub verdict: Verdict,
}

/// A row's test, and what it says (p, n, or why there is none).
#[derive(Clone, Debug)]
pub enum Verdict {
    Significant(String),
    NotSignificant(String),
    /// One value each, or too few samples: no test could tell.
    Untested(String),
}

impl Row {
    pub fn significant(&self) -> bool {
        matches!(self.verdict, Verdict::Significant(_))
    }

    pub fn tested(&self) -> bool {
        !matches!(self.verdict, Verdict::Untested(_))
    }

    /// new / old - 1, in percent.
    pub fn delta_pct(&self) -> Option<f64> {
        (self.old != 0.0 && self.old.is_finite() && self.new.is_finite())
            .then(|| (self.new / self.old - 1.0) * 100.0)
    }
}

/// One suite's comparison.
#[derive(Clone, Debug)]
pub struct Table {
    pub suite: String,
    pub rows: Vec<Row>,
    /// Figures in one file only (or in other units).
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
}

fn spread(f: &Figure) -> Option<f64> {
    if (f.stat != stat::MIN && f.stat != stat::MAX) || f.samples.len() < 2 || f.value == 0.0 {
        return None;
    }
    let lo = f.samples.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = f.samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((hi - lo) / 2.0 / f.value.abs() * 100.0)
}

/// The U test of two figures' observations.
fn u_verdict(o: &[f64], n: &[f64]) -> Verdict {
    let counts = format!("n={}+{}", o.len(), n.len());
    if o.len() < 2 || n.len() < 2 {
        return Verdict::Untested(format!("{counts}: too few samples to test"));
    }
    let Some(t) = mann_whitney(o, n) else {
        return Verdict::Untested(counts);
    };
    let how = if t.method == Method::Exact {
        ""
    } else {
        " normal"
    };
    if t.method == Method::Exact && min_p(o.len(), n.len()) > ALPHA {
        return Verdict::Untested(format!("{counts}: too few samples to reach p < {ALPHA}"));
    }
    let text = format!("p={:.3}{how} {counts}", t.p);
    if t.p < ALPHA {
        Verdict::Significant(text)
    } else {
        Verdict::NotSignificant(text)
    }
}

/// Percentile `q` of two distributions, by their confidence intervals.
fn tail_verdict(o: &[f64], n: &[f64], q: f64) -> Verdict {
    let counts = format!("n={}+{}", o.len(), n.len());
    match (percentile_interval(o, q), percentile_interval(n, q)) {
        (Some(a), Some(b)) => {
            let text = format!(
                "95% CIs [{}, {}] and [{}, {}] {counts}",
                num(a.0),
                num(a.1),
                num(b.0),
                num(b.1)
            );
            if a.1 < b.0 || b.1 < a.0 {
                Verdict::Significant(text)
            } else {
                Verdict::NotSignificant(text)
            }
        }
        _ => Verdict::Untested(format!("{counts}: too few samples for a p{q} interval")),
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// The rows of one figure in both files: its value, and for a
/// distribution its p99 too.
fn rows(o: &Figure, n: &Figure) -> Result<Vec<Row>, String> {
    let (oo, no) = (sorted(o.observations()?), sorted(n.observations()?));
    let single = o.n <= 1 && n.n <= 1;
    let verdict = if single {
        Verdict::Untested("n=1+1: one value each, no test".into())
    } else {
        u_verdict(&oo, &no)
    };
    let mut out = vec![Row {
        key: o.key.clone(),
        unit: o.unit.clone(),
        old: o.value,
        new: n.value,
        old_spread: spread(o),
        new_spread: spread(n),
        verdict,
    }];
    let p99 = |f: &Figure| {
        f.percentiles
            .iter()
            .find(|(k, _)| percentile_of(k) == 99.0)
            .map(|(_, v)| *v)
    };
    if let (Some(a), Some(b)) = (p99(o), p99(n)) {
        out.push(Row {
            key: format!("{} p99", o.key),
            unit: o.unit.clone(),
            old: a,
            new: b,
            old_spread: None,
            new_spread: None,
            verdict: tail_verdict(&oo, &no, 99.0),
        });
    }
    Ok(out)
}

/// A number to 4 significant digits, without exponent for everyday sizes.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if (1e-3..1e15).contains(&a) {
        let digits = (3 - a.log10().floor().max(-3.0) as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.3e}")
    }
}

/// Every suite both documents hold, figure by figure; an error if they
/// cannot be compared.
pub fn tables(old: &Document, new: &Document) -> Result<Vec<Table>, String> {
    let mut out = Vec::new();
    for (os, ns) in pairs(old, new)? {
        let mut t = Table {
            suite: os.suite.clone(),
            rows: Vec::new(),
            only_old: Vec::new(),
            only_new: Vec::new(),
        };
        for o in &os.figures {
            match ns.figures.iter().find(|n| n.key == o.key) {
                Some(n) if n.unit == o.unit => t.rows.extend(rows(o, n)?),
                Some(n) => t
                    .only_old
                    .push(format!("{} (units {} and {})", o.key, o.unit, n.unit)),
                None => t.only_old.push(o.key.clone()),
            }
        }
        t.only_new = ns
            .figures
            .iter()
            .filter(|n| os.figures.iter().all(|o| o.key != n.key))
            .map(|n| n.key.clone())
            .collect();
        out.push(t);
    }
    Ok(out)
}

/// The comparison of two documents, as text; an error if they cannot be
/// compared.
pub fn compare(old: &Document, new: &Document, a: &Path, b: &Path) -> Result<String, String> {
    let tables = tables(old, new)?;
    let mut s = header(old, new, a, b);
    let _ = writeln!(s, "{HELP_ALPHA}");
    let many = tables.len() > 1 || old.sections.len() > 1 || new.sections.len() > 1;
    for t in &tables {
        if many {
            let _ = writeln!(s, "\n== {}", t.suite);
        }
        let w = t.rows.iter().map(|r| r.key.len()).max().unwrap_or(6).max(6);
        let u = t
            .rows
            .iter()
            .map(|r| r.unit.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            s,
            "\n{:<w$}  {:<u$}  {:>11} {:>6}  {:>11} {:>6}  {:>8}  test",
            "figure", "unit", "old", "", "new", "", "delta"
        );
        for r in &t.rows {
            let pm = |p: Option<f64>| p.map(|p| format!("±{p:.0}%")).unwrap_or_default();
            let (mark, why) = match &r.verdict {
                Verdict::Significant(w) => (
                    r.delta_pct().map_or("n/a".into(), |d| format!("{d:+.1}%")),
                    w,
                ),
                Verdict::NotSignificant(w) | Verdict::Untested(w) => ("~".to_string(), w),
            };
            let _ = writeln!(
                s,
                "{:<w$}  {:<u$}  {:>11} {:>6}  {:>11} {:>6}  {:>8}  ({why})",
                r.key,
                r.unit,
                num(r.old),
                pm(r.old_spread),
                num(r.new),
                pm(r.new_spread),
                mark
            );
        }
        if !t.only_old.is_empty() {
            let _ = writeln!(s, "only in old: {}", t.only_old.join(", "));
        }
        if !t.only_new.is_empty() {
            let _ = writeln!(s, "only in new: {}", t.only_new.join(", "));
        }
    }
    let all = tables.iter().flat_map(|t| &t.rows);
    let tested = all.clone().filter(|r| r.tested()).count();
    let flagged = all.clone().filter(|r| r.significant()).count();
    let untested = all.filter(|r| !r.tested()).count();
    let _ = writeln!(
        s,
        "\n{flagged} of {tested} tested rows differ significantly (alpha {ALPHA}); {untested} rows could not be tested (one value each, or too few samples)"
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use preempt_bench::results::{Provenance, Section};

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(num(0.5488394858), "0.5488");
        assert_eq!(num(10.342831289), "10.34");
        assert_eq!(num(52383.0), "52383");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(2e-5), "2.000e-5");
        assert_eq!(num(f64::NAN), "-");
    }

    fn doc(suite: &str, sections: &[(&str, f64)]) -> Document {
        Document {
            suite: suite.into(),
            provenance: Provenance::here(false).to_json(),
            settings: Value::Null,
            sections: sections
                .iter()
                .map(|(s, v)| Section {
                    suite: s.to_string(),
                    figures: vec![Figure::single("total", "ns", *v)],
                    details: Value::Null,
                })
                .collect(),
        }
    }

    #[test]
    fn an_all_file_is_compared_suite_by_suite() {
        let all = doc("all", &[("compile", 1.0), ("kernels", 2.0)]);
        let kernels = doc("kernels", &[("kernels", 4.0)]);
        let t = tables(&all, &kernels).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].suite, "kernels");
        assert_eq!(t[0].rows[0].delta_pct(), Some(100.0));
        assert!(!t[0].rows[0].tested(), "one value each");
        assert_eq!(tables(&all, &all).unwrap().len(), 2);
        let compile = doc("compile", &[("compile", 1.0)]);
        assert!(tables(&kernels, &compile)
            .unwrap_err()
            .contains("different suites"));
    }
}
