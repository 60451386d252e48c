//! The catalogue: one directory per bug of the seed under `examples/bugs/`,
//! each with a `bug.toml` that says what the bug is, which scenarios it
//! runs on each side (preempt and Go), and which claims of the seed's
//! diagnosis the runs decide, with the rule that decides each. The PIR
//! programs and the Go twin (`main.go`) sit beside it.
//!
//! ```toml
//! number = 8
//! title = "Misbelief about runtime.Gosched ordering"
//! question = "Will the output be exactly A1 B1 A2 B2?"
//! go = "main.go"               # the Go twin of the seed's program
//! pir = "gosched-ordering.pir" # preempt's program
//!
//! [[scenario]]
//! name = "one_p"
//! about = "one P"
//! runs = 10                    # fresh processes (default 1)
//! quick_runs = 2               # with --quick (default: runs)
//! timeout = 5                  # seconds: the watchdog, and Go's kill timer
//! preempt = { args = ["--procs", "1"], expect = { status = 0, out = "B1 A1 B2 A2" } }
//! go = { env = { GOMAXPROCS = "1" } }   # also: args, build = ["-race"], disasm
//!
//! [[claim]]
//! says = "The output is not guaranteed to be A1 B1 A2 B2"
//! holds = "none(one_p.out == 'A1 B1 A2 B2')"
//! fails = "any(one_p.out == 'A1 B1 A2 B2')"
//! figures = [{ label = "runs printing A1 B1 A2 B2", of = "count(one_p.out == 'A1 B1 A2 B2')" }]
//! ```
//!
//! A side's `expect` states a deterministic outcome (exit status, stdout,
//! texts stderr contains, a hang); the catalogue checks it on every run and
//! the tests check it in CI. A claim's rules ([`super::rules`]) are tried in
//! the order `holds`, `part`, `fails`, on each side's runs (`[claim.go]`
//! or `[claim.preempt]` replace them for one side); none true is
//! "undecided", and the figures are printed either way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::rules::{self, Expr};

/// Which side a claim or a scenario is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Preempt,
    Go,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Preempt => "preempt",
            Side::Go => "Go",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BugFile {
    number: u32,
    title: String,
    question: String,
    go: String,
    pir: String,
    #[serde(default)]
    scenario: Vec<ScenarioFile>,
    #[serde(default)]
    claim: Vec<ClaimFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Spanned<String>,
    about: String,
    #[serde(default = "one")]
    runs: u32,
    quick_runs: Option<u32>,
    #[serde(default = "ten")]
    timeout: f64,
    preempt: Option<SideFile>,
    go: Option<SideFile>,
}

fn one() -> u32 {
    1
}

fn ten() -> f64 {
    10.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SideFile {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    program: Option<String>,
    disasm: Option<String>,
    #[serde(default)]
    build: Vec<String>,
    expect: Option<Expect>,
}

/// A deterministic outcome every run of a scenario must have.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: Option<i32>,
    /// stdout's lines, joined by single spaces (`measure` lines left out).
    pub out: Option<String>,
    #[serde(default)]
    pub stderr: Vec<String>,
    pub hung: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimFile {
    says: String,
    /// Observable on one side only (a claim about Go's compiler, say).
    only: Option<Side>,
    /// Why it is checked where it is, or how the scenario tests it.
    how: Option<String>,
    holds: Option<Spanned<String>>,
    part: Option<Spanned<String>>,
    fails: Option<Spanned<String>>,
    #[serde(default)]
    figures: Vec<FigureFile>,
    go: Option<RulesFile>,
    preempt: Option<RulesFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    holds: Option<Spanned<String>>,
    part: Option<Spanned<String>>,
    fails: Option<Spanned<String>>,
    figures: Option<Vec<FigureFile>>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FigureFile {
    label: String,
    of: Spanned<String>,
    #[serde(default)]
    unit: String,
}

/// One bug of the seed.
#[derive(Debug)]
pub struct Bug {
    pub number: u32,
    pub title: String,
    pub question: String,
    /// The bug's directory.
    pub dir: PathBuf,
    /// The Go twin (shown as the seed's program).
    pub go: PathBuf,
    /// preempt's program.
    pub pir: PathBuf,
    pub scenarios: Vec<Scenario>,
    pub claims: Vec<Claim>,
}

/// A way of running the bug's program, on one or both sides.
#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub about: String,
    pub runs: u32,
    pub quick_runs: u32,
    pub timeout: f64,
    pub preempt: Option<Invocation>,
    pub go: Option<Invocation>,
}

impl Scenario {
    pub fn side(&self, side: Side) -> Option<&Invocation> {
        match side {
            Side::Preempt => self.preempt.as_ref(),
            Side::Go => self.go.as_ref(),
        }
    }
}

/// How one side runs a scenario.
#[derive(Debug)]
pub struct Invocation {
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// preempt: the PIR program (the bug's own unless the scenario names
    /// another).
    pub program: Option<PathBuf>,
    /// Disassemble this function instead of running: preempt `@name`
    /// (with the scenario's `-O` flags), Go a `go tool objdump -s` pattern.
    pub disasm: Option<String>,
    /// Go: extra `go build` flags (`-race`).
    pub build: Vec<String>,
    pub expect: Option<Expect>,
}

/// A rule: its text, for the report, and its parsed form.
#[derive(Debug)]
pub struct Rule {
    pub text: String,
    pub expr: Expr,
}

#[derive(Debug)]
pub struct Figure {
    pub label: String,
    pub rule: Rule,
    pub unit: String,
}

/// The rules that decide a claim on one side.
#[derive(Debug, Default)]
pub struct Rules {
    pub holds: Option<Rule>,
    pub part: Option<Rule>,
    pub fails: Option<Rule>,
    pub figures: Vec<Figure>,
}

/// One checkable claim of the seed's diagnosis.
#[derive(Debug)]
pub struct Claim {
    /// `8.1`, ...
    pub id: String,
    pub says: String,
    pub only: Option<Side>,
    pub how: Option<String>,
    pub preempt: Rules,
    pub go: Rules,
}

impl Claim {
    pub fn rules(&self, side: Side) -> &Rules {
        match side {
            Side::Preempt => &self.preempt,
            Side::Go => &self.go,
        }
    }
}

/// The byte offset `at` of `text` as LINE:COL (both from 1).
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Reads and checks one bug's file; an error is `FILE:LINE:COL: what`.
pub fn load(file: &Path) -> Result<Bug, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    let at = |offset: usize, msg: &str| {
        let (l, c) = line_col(&text, offset);
        format!("{}:{l}:{c}: {msg}", file.display())
    };
    let raw: BugFile = toml::from_str(&text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        at(offset, e.message().trim())
    })?;
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let existing = |name: &str, offset: usize| -> Result<PathBuf, String> {
        let p = dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(at(offset, &format!("no file {}", p.display())))
        }
    };
    let go = existing(&raw.go, 0)?;
    let pir = existing(&raw.pir, 0)?;
    let names: Vec<String> = raw
        .scenario
        .iter()
        .map(|s| s.name.get_ref().clone())
        .collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut scenarios = Vec::new();
    for (i, s) in raw.scenario.into_iter().enumerate() {
        let name_at = s.name.span().start;
        let name = s.name.into_inner();
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(at(
                name_at,
                &format!(
                    "scenario name {name:?}: letters, digits and _ only, not starting with a digit"
                ),
            ));
        }
        if names[..i].contains(&name) {
            return Err(at(name_at, &format!("a second scenario named {name:?}")));
        }
        if s.preempt.is_none() && s.go.is_none() {
            return Err(at(
                name_at,
                &format!("scenario {name:?} runs on neither side"),
            ));
        }
        if s.runs == 0 || s.timeout <= 0.0 {
            return Err(at(
                name_at,
                &format!("scenario {name:?}: runs and timeout must be positive"),
            ));
        }
        let side = |f: Option<SideFile>, is_preempt: bool| -> Result<Option<Invocation>, String> {
            let Some(f) = f else { return Ok(None) };
            let program = match (&f.program, is_preempt) {
                (Some(p), true) => Some(existing(p, name_at)?),
                (Some(_), false) => {
                    return Err(at(
                        name_at,
                        "a Go side runs the bug's main.go: no `program`",
                    ))
                }
                (None, true) => Some(pir.clone()),
                (None, false) => None,
            };
            if is_preempt && !f.build.is_empty() {
                return Err(at(name_at, "`build` flags are for the Go side"));
            }
            Ok(Some(Invocation {
                args: f.args,
                env: f.env,
                program,
                disasm: f.disasm,
                build: f.build,
                expect: f.expect,
            }))
        };
        scenarios.push(Scenario {
            about: s.about,
            runs: s.runs,
            quick_runs: s.quick_runs.unwrap_or(s.runs).clamp(1, s.runs),
            timeout: s.timeout,
            preempt: side(s.preempt, true)?,
            go: side(s.go, false)?,
            name,
        });
    }
    let rule = |r: Option<Spanned<String>>| -> Result<Option<Rule>, String> {
        let Some(r) = r else { return Ok(None) };
        let start = r.span().start;
        let src = r.into_inner();
        // The span covers the quotes: the text starts after them.
        let quote = text[start..]
            .find(|c: char| c != '"' && c != '\'')
            .unwrap_or(0);
        let expr = rules::parse(&src, &name_refs)
            .map_err(|e| at(start + quote + e.at, &format!("in a rule: {}", e.msg)))?;
        Ok(Some(Rule { text: src, expr }))
    };
    let figures = |fs: Vec<FigureFile>| -> Result<Vec<Figure>, String> {
        fs.into_iter()
            .map(|f| {
                Ok(Figure {
                    label: f.label,
                    rule: rule(Some(f.of))?.expect("a figure has a rule"),
                    unit: f.unit,
                })
            })
            .collect()
    };
    let mut claims = Vec::new();
    for (i, c) in raw.claim.into_iter().enumerate() {
        let id = format!("{}.{}", raw.number, i + 1);
        let base = || -> Result<Rules, String> {
            Ok(Rules {
                holds: rule(c.holds.clone())?,
                part: rule(c.part.clone())?,
                fails: rule(c.fails.clone())?,
                figures: figures(c.figures.clone())?,
            })
        };
        let side = |over: Option<RulesFile>| -> Result<Rules, String> {
            let mut r = base()?;
            if let Some(o) = over {
                if o.holds.is_some() || o.part.is_some() || o.fails.is_some() {
                    r.holds = rule(o.holds)?;
                    r.part = rule(o.part)?;
                    r.fails = rule(o.fails)?;
                }
                if let Some(f) = o.figures {
                    r.figures = figures(f)?;
                }
            }
            Ok(r)
        };
        let preempt = side(c.preempt)?;
        let go = side(c.go)?;
        for (s, r) in [(Side::Preempt, &preempt), (Side::Go, &go)] {
            if c.only.is_none_or(|o| o == s)
                && r.holds.is_none()
                && r.part.is_none()
                && r.fails.is_none()
            {
                return Err(format!(
                    "{}: claim {id} ({:?}) has no rule for {}",
                    file.display(),
                    c.says,
                    s.name()
                ));
            }
        }
        claims.push(Claim {
            id,
            says: c.says,
            only: c.only,
            how: c.how,
            preempt,
            go,
        });
    }
    if claims.is_empty() {
        return Err(format!("{}: a bug with no claims", file.display()));
    }
    Ok(Bug {
        number: raw.number,
        title: raw.title,
        question: raw.question,
        dir,
        go,
        pir,
        scenarios,
        claims,
    })
}

/// Every bug under `root` (its subdirectories' `bug.toml`), by number.
pub fn load_all(root: &Path) -> Result<Vec<Bug>, String> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| format!("{}: cannot read the catalogue: {e}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("bug.toml").is_file())
        .collect();
    dirs.sort();
    let mut bugs = dirs
        .iter()
        .map(|d| load(&d.join("bug.toml")))
        .collect::<Result<Vec<_>, _>>()?;
    bugs.sort_by_key(|b| b.number);
    for w in bugs.windows(2) {
        if w[0].number == w[1].number {
            return Err(format!(
                "{} and {}: two bugs numbered {}",
                w[0].dir.display(),
                w[1].dir.display(),
                w[0].number
            ));
        }
    }
    Ok(bugs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, toml: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("main.go"), "package main\n").unwrap();
        std::fs::write(dir.join("p.pir"), "func @main() {\n  ret\n}\n").unwrap();
        let f = dir.join("bug.toml");
        std::fs::write(&f, toml).unwrap();
        f
    }

    const GOOD: &str = r#"number = 8
title = "t"
question = "q?"
go = "main.go"
pir = "p.pir"

[[scenario]]
name = "one_p"
about = "one P"
runs = 3
quick_runs = 1
preempt = { args = ["--procs", "1"], expect = { status = 0 } }
go = { env = { GOMAXPROCS = "1" } }

[[claim]]
says = "s"
holds = "all(one_p.status == 0)"
fails = "any(one_p.status != 0)"
figures = [{ label = "exit 0", of = "count(one_p.status == 0)", unit = "runs" }]

[claim.go]
holds = "true"
"#;

    #[test]
    fn a_bug_file_reads_into_scenarios_and_claims() {
        let dir = std::env::temp_dir().join(format!("preempt-cat-{}", std::process::id()));
        let b = load(&write(&dir, GOOD)).unwrap();
        assert_eq!((b.number, b.scenarios.len(), b.claims.len()), (8, 1, 1));
        let s = &b.scenarios[0];
        assert_eq!((s.runs, s.quick_runs, s.timeout), (3, 1, 10.0));
        assert_eq!(
            s.preempt.as_ref().unwrap().program.as_deref(),
            Some(&*dir.join("p.pir"))
        );
        assert_eq!(s.go.as_ref().unwrap().env["GOMAXPROCS"], "1");
        let c = &b.claims[0];
        assert_eq!(c.id, "8.1");
        assert_eq!(
            c.preempt.holds.as_ref().unwrap().text,
            "all(one_p.status == 0)"
        );
        // [claim.go] replaces the rules for Go, and keeps the figures.
        assert_eq!(c.go.holds.as_ref().unwrap().text, "true");
        assert!(c.go.fails.is_none());
        assert_eq!(c.go.figures.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn mistakes_name_file_line_and_column() {
        let dir = std::env::temp_dir().join(format!("preempt-cat-bad-{}", std::process::id()));
        let bad_rule = GOOD.replace("holds = \"all(one_p.status", "holds = \"all(onep.status");
        let e = load(&write(&dir, &bad_rule)).unwrap_err();
        assert!(
            e.ends_with("bug.toml:17:14: in a rule: no scenario \"onep\" (the bug has: one_p)"),
            "{e}"
        );
        let unknown = GOOD.replace("runs = 3", "runz = 3");
        let e = load(&write(&dir, &unknown)).unwrap_err();
        assert!(e.contains("bug.toml:10:1: unknown field `runz`"), "{e}");
        let no_rule = GOOD.replace(
            "holds = \"all(one_p.status == 0)\"\nfails = \"any(one_p.status != 0)\"\n",
            "",
        );
        let e = load(&write(&dir, &no_rule)).unwrap_err();
        assert!(e.contains("has no rule for preempt"), "{e}");
        let missing = GOOD.replace("pir = \"p.pir\"", "pir = \"q.pir\"");
        let e = load(&write(&dir, &missing)).unwrap_err();
        assert!(e.contains("no file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
