//! `preempt bugs`: the seed's sixteen bugs as a measured catalogue.
//!
//! Each bug ([`catalogue`]) runs its scenarios on preempt's runtime and,
//! when a Go toolchain is present, as its Go twin ([`run`]), in the same
//! session; the claims of the seed's diagnosis are decided from those runs
//! by the rules in the bug's file ([`rules`]), never written in by hand,
//! and shown on the terminal, as JSON or as a Markdown report
//! ([`report`]).

pub mod catalogue;
pub mod report;
pub mod rules;
pub mod run;

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use preempt_bench::peers::Paths;
use preempt_bench::results::{Document, Figure, Provenance, Section};

use crate::console::{self, errln, outln};
use catalogue::{Bug, Side};
use run::{Go, Options};

#[derive(Args, Debug)]
pub struct BugsArgs {
    /// Which bug: a number (1-16), several (`3,5`), or `all`; none lists
    /// them.
    pub which: Option<String>,
    /// Do not ask for a prediction before running (never asked when
    /// stdin or stdout is not a terminal).
    #[arg(long)]
    pub no_predict: bool,
    /// Fewer runs per scenario: to check the catalogue, not to measure.
    #[arg(long)]
    pub quick: bool,
    /// Also write every run and verdict to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write a Markdown report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The `go` command to build and run the Go twins with (default: the
    /// one `make peers` installed, `$PREEMPT_GO`, or `go` on the PATH).
    #[arg(long, value_name = "PATH")]
    pub go: Option<PathBuf>,
    /// Run one side only.
    #[arg(long, value_enum, default_value = "both")]
    pub side: SideArg,
    /// Exit 1 if any run missed an outcome its bug's file states as
    /// certain.
    #[arg(long)]
    pub check: bool,
    /// The catalogue (default: `examples/bugs` in the current directory,
    /// else the catalogue built into preempt, written out under
    /// $XDG_CACHE_HOME/preempt or ~/.cache/preempt).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum SideArg {
    Both,
    Preempt,
    Go,
}

/// `preempt bugs ...`.
pub fn main(args: &BugsArgs) -> ExitCode {
    let mut paths = Paths::locate();
    let (dir, built_in) = match catalogue_dir(args.dir.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            errln!("preempt bugs: {e}");
            return console::exit(2);
        }
    };
    // Built elsewhere, from a checkout since removed: the twins' builds
    // and the last outcomes go to the cache instead.
    if !paths.target.is_dir() {
        paths.target = crate::embedded::cache_dir().join("target");
    }
    let bugs = match catalogue::load_all(&dir) {
        Ok(b) => b,
        Err(e) => {
            errln!("preempt bugs: {e}");
            return console::exit(2);
        }
    };
    let state = paths.target.join("bugs").join("last.tsv");
    let Some(which) = &args.which else {
        list(&bugs, &state);
        return console::exit(0);
    };
    let chosen = match choose(&bugs, which) {
        Ok(c) => c,
        Err(e) => {
            errln!("preempt bugs: {e}");
            return console::exit(2);
        }
    };
    // Output paths are checked before minutes of runs, not after.
    for path in [&args.json, &args.report].into_iter().flatten() {
        if let Err(e) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            errln!("preempt bugs: cannot write {}: {e}", path.display());
            return console::exit(2);
        }
    }
    let sides = match args.side {
        SideArg::Both => vec![Side::Preempt, Side::Go],
        SideArg::Preempt => vec![Side::Preempt],
        SideArg::Go => vec![Side::Go],
    };
    let go = if sides.contains(&Side::Go) {
        Go::find(&paths, args.go.as_deref())
    } else {
        Go::Unavailable("not asked for (--side preempt)".into())
    };
    let go_line = match &go {
        Go::Ready {
            version, source, ..
        } => format!("{version} ({source})"),
        Go::Unavailable(why) => format!("not run: {why}"),
    };
    outln!(
        "preempt bugs on {}; Go: {go_line}",
        preempt_bench::machine_description()
    );
    if built_in {
        outln!(
            "the catalogue built into preempt, written out to {}",
            dir.display()
        );
    }
    let interactive =
        !args.no_predict && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let opts = Options {
        quick: args.quick,
        paths: paths.clone(),
        go: go.clone(),
        sides,
    };
    let mut done = Vec::new();
    for bug in chosen {
        outln!("\n==== Bug {}: {} ====\n", bug.number, bug.title);
        outln!("{}", side_by_side(bug));
        outln!("Predict: {}", bug.question);
        let prediction = if interactive { ask() } else { None };
        let outcome = run::run_bug(bug, &opts, &mut |line| outln!("  {line}"));
        let results = report::verdicts(bug, &outcome);
        if let Some(p) = &prediction {
            outln!("\nYou predicted: {p}");
        }
        outln!("{}", report::terminal(bug, &outcome, &results));
        remember(&state, bug.number, &report::one_line(&results, &outcome));
        done.push((bug, outcome, results));
    }
    let unexpected: usize = done.iter().map(|(_, o, _)| o.unexpected.len()).sum();
    if let Some(path) = &args.json {
        let details = serde_json::json!({
            "machine": preempt_bench::machine_description(),
            "go": go.version(),
            "quick": args.quick,
            "bugs": done.iter().map(|(b, o, r)| report::json(b, o, r)).collect::<Vec<_>>(),
        });
        let doc = Document::one(
            &Provenance::here(args.quick),
            Section {
                suite: "bugs".into(),
                figures: figures(&done),
                details,
            },
        );
        if let Err(e) = doc.write(path) {
            errln!("preempt bugs: {e}");
            return console::exit(1);
        }
    }
    if let Some(path) = &args.report {
        let header = format!(
            "Measured on {} by `preempt bugs {which}{}` on {}; Go: {go_line}. Every figure below comes from that run.",
            today(),
            if args.quick { " --quick" } else { "" },
            preempt_bench::machine_description(),
        );
        if let Err(e) = std::fs::write(path, report::markdown(&header, &done)) {
            errln!("preempt bugs: cannot write {}: {e}", path.display());
            return console::exit(1);
        }
        outln!("report written to {}", path.display());
    }
    finish(args.check, unexpected)
}

/// `--dir`, else `examples/bugs` in the current directory (a checkout),
/// else the catalogue built into preempt, written out to the cache
/// directory (the Go twins build from files); true for the last.
fn catalogue_dir(dir: Option<&Path>) -> Result<(PathBuf, bool), String> {
    if let Some(d) = dir {
        return Ok((d.to_path_buf(), false));
    }
    let here = std::env::current_dir()
        .map(|d| d.join("examples/bugs"))
        .unwrap_or_default();
    if here.is_dir() {
        return Ok((here, false));
    }
    crate::embedded::write_out("bugs")
        .map(|d| (d, true))
        .map_err(|e| {
            format!(
                "cannot write the built-in catalogue under {}: {e} (give one with --dir)",
                crate::embedded::cache_dir().display()
            )
        })
}

fn finish(check: bool, unexpected: usize) -> ExitCode {
    if check && unexpected > 0 {
        errln!("preempt bugs: {unexpected} run(s) missed an outcome their bug's file states as certain");
        return console::exit(1);
    }
    console::exit(0)
}

/// The bugs `which` names.
fn choose<'a>(bugs: &'a [Bug], which: &str) -> Result<Vec<&'a Bug>, String> {
    if which == "all" {
        return Ok(bugs.iter().collect());
    }
    which
        .split(',')
        .map(|w| {
            let n: u32 = w
                .trim()
                .parse()
                .map_err(|_| format!("{w:?} is not a bug number (1-{}) or `all`", bugs.len()))?;
            bugs.iter()
                .find(|b| b.number == n)
                .ok_or_else(|| format!("no bug {n} (the catalogue has 1-{})", bugs.len()))
        })
        .collect()
}

/// `preempt bugs`: number, title and the last run's outcome.
fn list(bugs: &[Bug], state: &Path) {
    let last = std::fs::read_to_string(state).unwrap_or_default();
    outln!("The seed's bugs (preempt bugs N to run one, `all` for every one):");
    for b in bugs {
        let prefix = format!("{}\t", b.number);
        let outcome = last
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or("not run yet".to_string(), |o| format!("last run: {o}"));
        outln!("  {:>2}  {:<58} {outcome}", b.number, b.title);
    }
}

/// Records the one-line outcome of a bug's run for the list.
fn remember(state: &Path, number: u32, line: &str) {
    let old = std::fs::read_to_string(state).unwrap_or_default();
    let prefix = format!("{number}\t");
    let mut lines: Vec<String> = old
        .lines()
        .filter(|l| !l.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    lines.push(format!("{number}\t{} ({})", line, today()));
    if let Some(d) = state.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let _ = std::fs::write(state, lines.join("\n") + "\n");
}

/// Asks the reader for a prediction (Enter alone skips it).
fn ask() -> Option<String> {
    console::stdout("Your prediction (Enter to run): ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    let line = line.trim().to_string();
    (!line.is_empty()).then_some(line)
}

/// The Go twin and the PIR program in two columns.
fn side_by_side(bug: &Bug) -> String {
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(160)
        .max(60);
    let col = (width - 3) / 2;
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| format!("({e})"));
    let name = |p: &Path| shown_path(p);
    let left: Vec<String> = std::iter::once(format!("Go ({})", name(&bug.go)))
        .chain(read(&bug.go).lines().map(|l| l.replace('\t', "    ")))
        .collect();
    let right: Vec<String> = std::iter::once(format!("preempt ({})", name(&bug.pir)))
        .chain(read(&bug.pir).lines().map(str::to_string))
        .collect();
    let cut = |s: &str| -> String {
        let n = s.chars().count();
        if n <= col {
            format!("{s}{}", " ".repeat(col - n))
        } else {
            format!("{}~", s.chars().take(col - 1).collect::<String>())
        }
    };
    let rows = left.len().max(right.len());
    (0..rows)
        .map(|i| {
            let l = left.get(i).map_or("", String::as_str);
            let r = right.get(i).map_or("", String::as_str);
            format!("{} | {}", cut(l), r.chars().take(col).collect::<String>())
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `p` relative to the current directory when it is under it.
pub(crate) fn shown_path(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|d| p.strip_prefix(d).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
        .display()
        .to_string()
}

/// Every numeric figure of every claim, on each side:
/// `bugN/CLAIM/SIDE/LABEL`, for `preempt compare`.
fn figures(done: &[(&Bug, run::Outcome, Vec<report::ClaimResult>)]) -> Vec<Figure> {
    let mut out = Vec::new();
    for (bug, _, results) in done {
        for r in results {
            for (side, d) in [("preempt", &r.preempt), ("go", &r.go)] {
                for f in &d.figures {
                    if let Some(v) = f.value.as_ref().ok().and_then(|v| v.parse::<f64>().ok()) {
                        let k = format!("bug{}/{}/{side}/{}", bug.number, r.id, f.label);
                        let unit = preempt_bench::results::key(&f.unit);
                        let unit = if unit.is_empty() {
                            "count".into()
                        } else {
                            unit
                        };
                        out.push(Figure::single(&k, &unit, v));
                    }
                }
            }
        }
    }
    out
}

/// Today's date (UTC), YYYY-MM-DD.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    preempt_bench::utc(secs)[..10].to_string()
}
