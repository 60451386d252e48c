//! Verdicts and the three ways of showing them: the terminal view, JSON
//! (`--json`) and a Markdown report (`--report`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value as Json};

use super::catalogue::{Bug, Claim, Rules, Side};
use super::rules::{self, number, Run, Value};
use super::run::Outcome;

/// What the runs say of a claim on one side.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Holds,
    HoldsInPart,
    DoesNotHold,
    /// No rule was true, or one could not be evaluated (why).
    Undecided(String),
    /// The side did not run (why).
    NotRun(String),
    /// The claim is about the other side only.
    NotObservable,
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::HoldsInPart => "holds in part",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Undecided(_) => "undecided",
            Verdict::NotRun(_) => "not run",
            Verdict::NotObservable => "-",
        }
    }

    fn decided(&self) -> bool {
        matches!(
            self,
            Verdict::Holds | Verdict::HoldsInPart | Verdict::DoesNotHold
        )
    }
}

/// A figure as computed: label, value (or why not), unit.
#[derive(Clone, Debug)]
pub struct Shown {
    pub label: String,
    pub value: Result<String, String>,
    pub unit: String,
}

/// A claim decided on one side.
#[derive(Clone, Debug)]
pub struct Decided {
    pub verdict: Verdict,
    /// The rule that decided it.
    pub by: Option<String>,
    pub figures: Vec<Shown>,
}

/// A claim decided on both sides.
#[derive(Clone, Debug)]
pub struct ClaimResult {
    pub id: String,
    pub says: String,
    pub how: Option<String>,
    pub preempt: Decided,
    pub go: Decided,
}

impl ClaimResult {
    /// The verdict on the seed's claim: Go's where Go ran and can show it
    /// (the seed is about Go), else preempt's.
    pub fn overall(&self) -> (&Verdict, Side) {
        if self.go.verdict.decided() || self.preempt.verdict == Verdict::NotObservable {
            (&self.go.verdict, Side::Go)
        } else {
            (&self.preempt.verdict, Side::Preempt)
        }
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::List(xs) if xs.len() == 1 => show(&xs[0]),
        Value::Num(n) => number(*n),
        other => other.to_string(),
    }
}

fn decide(claim: &Claim, side: Side, outcome: &Outcome) -> Decided {
    let rules: &Rules = claim.rules(side);
    let figures_of = |runs| {
        rules
            .figures
            .iter()
            .map(|f| Shown {
                label: f.label.clone(),
                value: rules::eval(&f.rule.expr, runs).map(|v| show(&v)),
                unit: f.unit.clone(),
            })
            .collect::<Vec<_>>()
    };
    if claim.only.is_some_and(|o| o != side) {
        return Decided {
            verdict: Verdict::NotObservable,
            by: None,
            figures: Vec::new(),
        };
    }
    let Some(runs) = outcome.runs.get(&side) else {
        let why = match side {
            Side::Go => outcome
                .go_missing
                .clone()
                .unwrap_or_else(|| "Go was not run".into()),
            Side::Preempt => "preempt was not run".into(),
        };
        return Decided {
            verdict: Verdict::NotRun(why),
            by: None,
            figures: Vec::new(),
        };
    };
    let figures = figures_of(runs);
    let mut errors = Vec::new();
    for (rule, verdict) in [
        (&rules.holds, Verdict::Holds),
        (&rules.part, Verdict::HoldsInPart),
        (&rules.fails, Verdict::DoesNotHold),
    ] {
        let Some(rule) = rule else { continue };
        match rules::eval(&rule.expr, runs).and_then(|v| rules::truth(&v)) {
            Ok(true) => {
                return Decided {
                    verdict,
                    by: Some(rule.text.clone()),
                    figures,
                }
            }
            Ok(false) => {}
            Err(e) => errors.push(format!("{}: {e}", rule.text)),
        }
    }
    Decided {
        verdict: Verdict::Undecided(if errors.is_empty() {
            "no rule was true of these runs".into()
        } else {
            errors.join("; ")
        }),
        by: None,
        figures,
    }
}

/// Every claim of `bug`, decided on both sides.
pub fn verdicts(bug: &Bug, outcome: &Outcome) -> Vec<ClaimResult> {
    bug.claims
        .iter()
        .map(|c| ClaimResult {
            id: c.id.clone(),
            says: c.says.clone(),
            how: c.how.clone(),
            preempt: decide(c, Side::Preempt, outcome),
            go: decide(c, Side::Go, outcome),
        })
        .collect()
}

/// The bug's verdicts in one line (for `preempt bugs`' list).
pub fn one_line(results: &[ClaimResult], outcome: &Outcome) -> String {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for r in results {
        *count.entry(r.overall().0.word()).or_default() += 1;
    }
    let mut parts: Vec<String> = ["holds", "holds in part", "does not hold", "undecided"]
        .iter()
        .filter_map(|w| count.get(w).map(|n| format!("{n} {w}")))
        .collect();
    if outcome.go_missing.is_some() {
        parts.push("Go not run".into());
    }
    if !outcome.unexpected.is_empty() {
        parts.push(format!("{} unexpected", outcome.unexpected.len()));
    }
    format!("{} claims: {}", results.len(), parts.join(", "))
}

/// How a side invoked a scenario, as a command line.
fn command_of(bug: &Bug, side: Side, s: &super::catalogue::Scenario) -> String {
    let Some(inv) = s.side(side) else {
        return String::new();
    };
    let env: String = inv.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    let file = |p: &std::path::Path| super::shown_path(p);
    match side {
        Side::Preempt => {
            let verb = if inv.disasm.is_some() {
                "disasm"
            } else {
                "run"
            };
            let timeout = if inv.disasm.is_some() {
                String::new()
            } else {
                format!("--timeout {} ", s.timeout)
            };
            format!(
                "{env}preempt {verb} {timeout}{}{}",
                inv.args.iter().map(|a| format!("{a} ")).collect::<String>(),
                inv.program.as_deref().map(file).unwrap_or_default()
            )
        }
        Side::Go => match &inv.disasm {
            Some(p) => format!("go tool objdump -s '{p}' ({})", file(&bug.go)),
            None => format!(
                "{env}{}{} {}",
                file(&bug.go),
                if inv.build.is_empty() {
                    String::new()
                } else {
                    format!(" (go build {})", inv.build.join(" "))
                },
                inv.args.join(" ")
            ),
        },
    }
}

/// A summary of a scenario's runs on one side.
fn summary(runs: &[Run]) -> String {
    let mut ends: BTreeMap<String, usize> = BTreeMap::new();
    let mut outs: BTreeMap<String, usize> = BTreeMap::new();
    let mut measures: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in runs {
        let end = if r.hung {
            "hung".to_string()
        } else {
            format!("exit {}", r.status)
        };
        *ends.entry(end).or_default() += 1;
        let o: String = if r.disasm {
            format!("{} lines of machine code", r.stdout.lines().count())
        } else {
            r.out().chars().take(70).collect()
        };
        *outs.entry(o).or_default() += 1;
        for (k, v) in &r.measures {
            measures.entry(k).or_default().push(*v);
        }
    }
    let times = |n: usize| {
        if runs.len() > 1 {
            format!(" x{n}")
        } else {
            String::new()
        }
    };
    let mut s: Vec<String> = ends
        .iter()
        .map(|(e, n)| format!("{e}{}", times(*n)))
        .collect();
    let mut outs: Vec<_> = outs.into_iter().filter(|(o, _)| !o.is_empty()).collect();
    outs.sort_by_key(|o| std::cmp::Reverse(o.1));
    for (o, n) in outs.iter().take(3) {
        s.push(format!("\"{o}\"{}", times(*n)));
    }
    if outs.len() > 3 {
        s.push(format!("{} other outputs", outs.len() - 3));
    }
    for (k, mut v) in measures {
        v.sort_by(f64::total_cmp);
        s.push(if v.len() == 1 {
            format!("{k} {}", number(v[0]))
        } else {
            format!(
                "{k} {}..{} (median {})",
                number(v[0]),
                number(v[v.len() - 1]),
                number(v[v.len() / 2])
            )
        });
    }
    s.join("; ")
}

fn figures_text(d: &Decided) -> String {
    d.figures
        .iter()
        .map(|f| match &f.value {
            Ok(v) if f.unit.is_empty() => format!("{} {v}", f.label),
            Ok(v) => format!("{} {v} {}", f.label, f.unit),
            Err(e) => format!("{}: ({e})", f.label),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn verdict_text(d: &Decided) -> String {
    match &d.verdict {
        Verdict::Undecided(why) | Verdict::NotRun(why) => format!("{} ({why})", d.verdict.word()),
        v => v.word().to_string(),
    }
}

/// The terminal view of a bug's runs and verdicts.
pub fn terminal(bug: &Bug, outcome: &Outcome, results: &[ClaimResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\nScenarios");
    for sc in &bug.scenarios {
        let _ = writeln!(s, "  {}: {}", sc.name, sc.about);
        for side in [Side::Preempt, Side::Go] {
            if sc.side(side).is_none() {
                continue;
            }
            let _ = writeln!(s, "    {:<8} $ {}", side.name(), command_of(bug, side, sc));
            let line = match outcome.runs.get(&side).and_then(|r| r.get(&sc.name)) {
                Some(runs) => format!("{} run(s): {}", runs.len(), summary(runs)),
                None if side == Side::Go => format!(
                    "not run: {}",
                    outcome.go_missing.as_deref().unwrap_or("see above")
                ),
                None => "not run".into(),
            };
            let _ = writeln!(s, "    {:<8}   {line}", "");
        }
    }
    let _ = writeln!(s, "\nClaims of the seed's diagnosis");
    for r in results {
        let _ = writeln!(s, "  {}  \"{}\"", r.id, r.says);
        if let Some(how) = &r.how {
            let _ = writeln!(s, "        ({how})");
        }
        for (side, d) in [(Side::Preempt, &r.preempt), (Side::Go, &r.go)] {
            if d.verdict == Verdict::NotObservable {
                let _ = writeln!(
                    s,
                    "        {:<8} - (a claim about the other side only)",
                    side.name()
                );
                continue;
            }
            let _ = writeln!(
                s,
                "        {:<8} {:<14} {}",
                side.name(),
                verdict_text(d),
                figures_text(d)
            );
        }
        let (v, from) = r.overall();
        let _ = writeln!(
            s,
            "        verdict: {} (from {}'s runs)",
            v.word(),
            from.name()
        );
    }
    if !outcome.unexpected.is_empty() {
        let _ = writeln!(
            s,
            "\nUnexpected (the bug's file states these outcomes as certain):"
        );
        for (side, scn, i, what) in &outcome.unexpected {
            let _ = writeln!(s, "  {} {scn} run {}: {what}", side.name(), i + 1);
        }
    }
    s
}

/// A bug's results as JSON: every run, every verdict.
pub fn json(bug: &Bug, outcome: &Outcome, results: &[ClaimResult]) -> Json {
    let runs: BTreeMap<&str, BTreeMap<&String, Vec<Json>>> = outcome
        .runs
        .iter()
        .map(|(side, by)| {
            (
                side.name(),
                by.iter()
                    .map(|(scn, rs)| {
                        (
                            scn,
                            rs.iter()
                                .map(|r| {
                                    json!({
                                        "status": r.status, "hung": r.hung, "out": r.out(),
                                        "wall_ms": r.wall_ms, "measures": r.measures, "stats": r.stats,
                                    })
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let decided = |d: &Decided| {
        json!({
            "verdict": d.verdict.word(),
            "why": match &d.verdict { Verdict::Undecided(w) | Verdict::NotRun(w) => Some(w), _ => None },
            "by": d.by,
            "figures": d.figures.iter().map(|f| json!({
                "label": f.label, "value": f.value.as_ref().ok(), "error": f.value.as_ref().err(), "unit": f.unit,
            })).collect::<Vec<_>>(),
        })
    };
    json!({
        "bug": bug.number,
        "title": bug.title,
        "go_not_run": outcome.go_missing,
        "runs": runs,
        "claims": results.iter().map(|r| json!({
            "id": r.id, "says": r.says, "preempt": decided(&r.preempt), "go": decided(&r.go),
            "verdict": r.overall().0.word(), "verdict_from": r.overall().1.name(),
        })).collect::<Vec<_>>(),
        "unexpected": outcome.unexpected.iter().map(|(side, scn, i, what)| json!({
            "side": side.name(), "scenario": scn, "run": i + 1, "what": what,
        })).collect::<Vec<_>>(),
    })
}

/// The Markdown report: one row per bug, then a section per bug.
pub fn markdown(header: &str, done: &[(&Bug, Outcome, Vec<ClaimResult>)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# The seed's bugs, measured\n\n{header}\n");
    let _ = writeln!(
        s,
        "| bug | claims | preempt | Go | verdict on the seed's diagnosis |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    let tally = |it: &mut dyn Iterator<Item = &Verdict>| {
        let mut c: BTreeMap<&str, usize> = BTreeMap::new();
        for v in it {
            *c.entry(v.word()).or_default() += 1;
        }
        c.iter()
            .filter(|(w, _)| **w != "-")
            .map(|(w, n)| format!("{n} {w}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (bug, _, results) in done {
        let overall: Vec<&Verdict> = results.iter().map(|r| r.overall().0).collect();
        let word = if overall.iter().all(|v| **v == Verdict::Holds) {
            "holds"
        } else if overall.iter().all(|v| **v == Verdict::DoesNotHold) {
            "does not hold"
        } else if overall.iter().any(|v| v.decided()) {
            "holds in part"
        } else {
            "undecided"
        };
        let _ = writeln!(
            s,
            "| [{}. {}](#bug-{}) | {} | {} | {} | {word} |",
            bug.number,
            bug.title,
            bug.number,
            results.len(),
            tally(&mut results.iter().map(|r| &r.preempt.verdict)),
            tally(&mut results.iter().map(|r| &r.go.verdict)),
        );
    }
    for (bug, outcome, results) in done {
        let _ = writeln!(
            s,
            "\n## Bug {}\n\n**{}.** {}\n",
            bug.number, bug.title, bug.question
        );
        let _ = writeln!(s, "| claim | preempt | Go | verdict |");
        let _ = writeln!(s, "|---|---|---|---|");
        let cell = |d: &Decided| {
            let f = figures_text(d);
            if f.is_empty() {
                verdict_text(d)
            } else {
                format!("{}: {f}", verdict_text(d))
            }
            .replace('|', "\\|")
        };
        for r in results {
            let _ = writeln!(
                s,
                "| {} {} | {} | {} | {} |",
                r.id,
                r.says.replace('|', "\\|"),
                cell(&r.preempt),
                cell(&r.go),
                r.overall().0.word()
            );
        }
        let _ = writeln!(s, "\nScenarios:\n");
        for sc in &bug.scenarios {
            for side in [Side::Preempt, Side::Go] {
                if let Some(runs) = outcome.runs.get(&side).and_then(|r| r.get(&sc.name)) {
                    let _ = writeln!(
                        s,
                        "- `{}` ({}): `{}`: {}",
                        sc.name,
                        sc.about,
                        command_of(bug, side, sc),
                        summary(runs)
                    );
                }
            }
        }
        if let Some(why) = &outcome.go_missing {
            let _ = writeln!(s, "- Go was not run: {why}");
        }
        for (side, scn, i, what) in &outcome.unexpected {
            let _ = writeln!(
                s,
                "- **unexpected**: {} {scn} run {}: {what}",
                side.name(),
                i + 1
            );
        }
    }
    s
}
