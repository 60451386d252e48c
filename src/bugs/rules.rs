//! The rules that turn a bug's measurements into verdicts: a small
//! expression language, parsed when the bug's file is read (an error names
//! FILE:LINE:COL) and evaluated against the runs of one side (preempt or
//! Go).
//!
//! ```text
//! expr    := or
//! or      := and ('||' and)*
//! and     := not ('&&' not)*
//! not     := '!' not | cmp
//! cmp     := sum (('==' | '!=' | '<' | '<=' | '>' | '>=') sum)?
//! sum     := product (('+' | '-') product)*
//! product := atom (('*' | '/') atom)*
//! atom    := NUMBER | 'STRING' | "STRING" | true | false | '(' expr ')'
//!          | SCENARIO '.' FIELD            one value per run of the scenario
//!          | NAME '(' expr (',' expr)* ')' a function
//! ```
//!
//! A scenario's field is a list, one value per run: `status` (the exit
//! status; -1 when the kill timer ended a Go run), `hung` (the watchdog or
//! the kill timer ended it), `out` (stdout's lines joined by single
//! spaces), `stdout`, `stderr`, `wall_ms`, or a measure the program
//! printed (`measure KEY VALUE` on a line of its own; a run that did not
//! print it has no value). Operators apply element by element (a list
//! against a single value, or two lists of one length); `&&`, `||` and `!`
//! take single truth values, so a list must be reduced first:
//!
//! - `all(x)`, `any(x)`, `none(x)`, `count(x)` (how many are true);
//! - `min(x)`, `max(x)`, `median(x)`, `mean(x)`, `sum(x)`, `len(x)`;
//! - `contains(x, 'text')` (element by element), `lines(x, 'text')` (how
//!   many lines of each element contain the text);
//! - `stat(scenario, 'name')`: a `--stats` figure of each preempt run.

use std::collections::BTreeMap;
use std::fmt;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Num(f64),
    Str(String),
    Bool(bool),
    /// `scenario.field`.
    Field(String, String),
    /// `stat(scenario, 'name')`.
    Stat(String, String),
    Call(Func, Vec<Expr>),
    Not(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    All,
    Any,
    None,
    Count,
    Min,
    Max,
    Median,
    Mean,
    Sum,
    Len,
    Contains,
    Lines,
}

impl Func {
    fn named(name: &str) -> Option<(Func, usize)> {
        Some(match name {
            "all" => (Func::All, 1),
            "any" => (Func::Any, 1),
            "none" => (Func::None, 1),
            "count" => (Func::Count, 1),
            "min" => (Func::Min, 1),
            "max" => (Func::Max, 1),
            "median" => (Func::Median, 1),
            "mean" => (Func::Mean, 1),
            "sum" => (Func::Sum, 1),
            "len" => (Func::Len, 1),
            "contains" => (Func::Contains, 2),
            "lines" => (Func::Lines, 2),
            _ => return None,
        })
    }
}

/// A value: a number, a truth value, a text, or one of each per run.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Num(f64),
    Bool(bool),
    Str(String),
    List(Vec<Value>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(n) => f.write_str(&number(*n)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// A number as a reader wants it: whole numbers without a fraction, others
/// with three significant figures or more.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else if n.abs() >= 100.0 {
        format!("{n:.0}")
    } else if n.abs() >= 10.0 {
        format!("{n:.1}")
    } else if n.abs() >= 1.0 {
        format!("{n:.2}")
    } else {
        format!("{n:.3}")
    }
}

/// A parse error: the byte offset in the expression, and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub at: usize,
    pub msg: String,
}

/// Parses `src`; `scenarios` are the names a field may name.
pub fn parse(src: &str, scenarios: &[&str]) -> Result<Expr, ParseError> {
    let mut p = Parser {
        src,
        pos: 0,
        scenarios,
    };
    let e = p.or()?;
    p.skip_ws();
    if p.pos < src.len() {
        return Err(p.err(format!("unexpected {:?}", p.rest_token())));
    }
    Ok(e)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    scenarios: &'a [&'a str],
}

impl Parser<'_> {
    fn err(&self, msg: String) -> ParseError {
        ParseError { at: self.pos, msg }
    }

    fn rest_token(&self) -> String {
        self.src[self.pos..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    }

    fn skip_ws(&mut self) {
        while self.src[self.pos..].starts_with(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.src[self.pos..].starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &str) -> Result<(), ParseError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.err(format!("expected {tok:?}")))
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Bin(Op::Or, Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.not()?;
        while self.eat("&&") {
            e = Expr::Bin(Op::And, Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        if self.src[self.pos..].starts_with('!') && !self.src[self.pos..].starts_with("!=") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let left = self.sum()?;
        for (tok, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(tok) {
                return Ok(Expr::Bin(op, Box::new(left), Box::new(self.sum()?)));
            }
        }
        Ok(left)
    }

    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.product()?;
        loop {
            let op = if self.eat("+") {
                Op::Add
            } else if self.eat("-") {
                Op::Sub
            } else {
                return Ok(e);
            };
            e = Expr::Bin(op, Box::new(e), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.atom()?;
        loop {
            let op = if self.eat("*") {
                Op::Mul
            } else if self.eat("/") {
                Op::Div
            } else {
                return Ok(e);
            };
            e = Expr::Bin(op, Box::new(e), Box::new(self.atom()?));
        }
    }

    fn ident(&mut self) -> Option<&str> {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let n = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
            .map_or(rest.len(), |(i, _)| i);
        if n == 0 {
            return None;
        }
        self.pos += n;
        Some(&rest[..n])
    }

    fn string(&mut self) -> Result<Option<String>, ParseError> {
        self.skip_ws();
        let Some(q) = self.src[self.pos..]
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
        else {
            return Ok(None);
        };
        let start = self.pos;
        let body = &self.src[self.pos + 1..];
        let Some(end) = body.find(q) else {
            return Err(self.err("a text without its closing quote".into()));
        };
        self.pos = start + 1 + end + 1;
        Ok(Some(body[..end].to_string()))
    }

    fn scenario(&self, name: &str, at: usize) -> Result<String, ParseError> {
        if self.scenarios.contains(&name) {
            Ok(name.to_string())
        } else {
            Err(ParseError {
                at,
                msg: format!(
                    "no scenario {name:?} (the bug has: {})",
                    self.scenarios.join(", ")
                ),
            })
        }
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        if self.eat("(") {
            let e = self.or()?;
            self.expect(")")?;
            return Ok(e);
        }
        if let Some(s) = self.string()? {
            return Ok(Expr::Str(s));
        }
        let rest = &self.src[self.pos..];
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(rest.len());
        if num_len > 0 {
            let text = rest[..num_len].replace('_', "");
            let n = text
                .parse::<f64>()
                .map_err(|_| self.err(format!("not a number: {text:?}")))?;
            self.pos += num_len;
            return Ok(Expr::Num(n));
        }
        let at = self.pos;
        let Some(name) = self.ident().map(str::to_string) else {
            return Err(self.err(format!("expected a value, found {:?}", self.rest_token())));
        };
        match name.as_str() {
            "true" => return Ok(Expr::Bool(true)),
            "false" => return Ok(Expr::Bool(false)),
            _ => {}
        }
        if self.eat("(") {
            if name == "stat" {
                let at = self.pos;
                let scn = self
                    .ident()
                    .map(str::to_string)
                    .ok_or_else(|| self.err("stat() takes a scenario first".into()))?;
                let scn = self.scenario(&scn, at)?;
                self.expect(",")?;
                let Some(stat) = self.string()? else {
                    return Err(self.err("stat() takes a figure's name in quotes".into()));
                };
                self.expect(")")?;
                return Ok(Expr::Stat(scn, stat));
            }
            let Some((f, arity)) = Func::named(&name) else {
                return Err(ParseError {
                    at,
                    msg: format!("no function {name:?}"),
                });
            };
            let mut args = vec![self.or()?];
            while self.eat(",") {
                args.push(self.or()?);
            }
            self.expect(")")?;
            if args.len() != arity {
                return Err(ParseError {
                    at,
                    msg: format!("{name}() takes {arity} argument(s), not {}", args.len()),
                });
            }
            return Ok(Expr::Call(f, args));
        }
        let scn = self.scenario(&name, at)?;
        self.skip_ws();
        if !self.eat(".") {
            return Err(self.err(format!("expected .FIELD after scenario {name:?}")));
        }
        let field = self
            .ident()
            .map(str::to_string)
            .ok_or_else(|| self.err("expected a field after '.'".into()))?;
        Ok(Expr::Field(scn, field))
    }
}

/// One run, as the rules see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    /// The exit status; -1 when the kill timer ended it.
    pub status: i32,
    /// The watchdog (preempt) or the kill timer (Go) ended it.
    pub hung: bool,
    pub stdout: String,
    pub stderr: String,
    pub wall_ms: f64,
    /// `measure KEY VALUE` lines of stdout.
    pub measures: BTreeMap<String, f64>,
    /// `--stats` figures (preempt only): name -> first number.
    pub stats: BTreeMap<String, f64>,
    /// A disassembly, not a run of the program.
    pub disasm: bool,
}

impl Run {
    /// Fills `measures` from stdout's `measure KEY VALUE` lines.
    pub fn read_measures(&mut self) {
        for line in self.stdout.lines() {
            let mut w = line.split_whitespace();
            if let (Some("measure"), Some(k), Some(v), None) =
                (w.next(), w.next(), w.next(), w.next())
            {
                if let Ok(v) = v.parse::<f64>() {
                    self.measures.insert(k.to_string(), v);
                }
            }
        }
    }

    /// stdout without its `measure` lines, joined by single spaces.
    pub fn out(&self) -> String {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with("measure "))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The runs of each scenario of one side.
pub type Runs = BTreeMap<String, Vec<Run>>;

/// Evaluates `e` over `runs`.
pub fn eval(e: &Expr, runs: &Runs) -> Result<Value, String> {
    Ok(match e {
        Expr::Num(n) => Value::Num(*n),
        Expr::Str(s) => Value::Str(s.clone()),
        Expr::Bool(b) => Value::Bool(*b),
        Expr::Field(scn, field) => {
            let rs = runs
                .get(scn)
                .ok_or_else(|| format!("scenario {scn} did not run on this side"))?;
            Value::List(rs.iter().filter_map(|r| field_of(r, field)).collect())
        }
        Expr::Stat(scn, name) => {
            let rs = runs
                .get(scn)
                .ok_or_else(|| format!("scenario {scn} did not run on this side"))?;
            Value::List(
                rs.iter()
                    .filter_map(|r| r.stats.get(name).map(|v| Value::Num(*v)))
                    .collect(),
            )
        }
        Expr::Not(x) => Value::Bool(!truth(&eval(x, runs)?)?),
        Expr::Bin(Op::And, a, b) => Value::Bool(truth(&eval(a, runs)?)? && truth(&eval(b, runs)?)?),
        Expr::Bin(Op::Or, a, b) => Value::Bool(truth(&eval(a, runs)?)? || truth(&eval(b, runs)?)?),
        Expr::Bin(op, a, b) => zip(*op, &eval(a, runs)?, &eval(b, runs)?)?,
        Expr::Call(f, args) => {
            let vals = args
                .iter()
                .map(|a| eval(a, runs))
                .collect::<Result<Vec<_>, _>>()?;
            call(*f, &vals)?
        }
    })
}

fn field_of(r: &Run, field: &str) -> Option<Value> {
    Some(match field {
        "status" => Value::Num(f64::from(r.status)),
        "hung" => Value::Bool(r.hung),
        "out" => Value::Str(r.out()),
        "stdout" => Value::Str(r.stdout.clone()),
        "stderr" => Value::Str(r.stderr.clone()),
        "wall_ms" => Value::Num(r.wall_ms),
        key => Value::Num(*r.measures.get(key)?),
    })
}

/// A single truth value.
pub fn truth(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::List(_) => Err(format!(
            "{v} is one value per run: reduce it with all(), any() or count()"
        )),
        _ => Err(format!("{v} is not true or false")),
    }
}

fn zip(op: Op, a: &Value, b: &Value) -> Result<Value, String> {
    match (a, b) {
        (Value::List(xs), Value::List(ys)) => {
            if xs.len() != ys.len() {
                return Err(format!(
                    "lists of {} and {} values cannot be compared element by element",
                    xs.len(),
                    ys.len()
                ));
            }
            Ok(Value::List(
                xs.iter()
                    .zip(ys)
                    .map(|(x, y)| scalar(op, x, y))
                    .collect::<Result<_, _>>()?,
            ))
        }
        (Value::List(xs), y) => Ok(Value::List(
            xs.iter()
                .map(|x| scalar(op, x, y))
                .collect::<Result<_, _>>()?,
        )),
        (x, Value::List(ys)) => Ok(Value::List(
            ys.iter()
                .map(|y| scalar(op, x, y))
                .collect::<Result<_, _>>()?,
        )),
        (x, y) => scalar(op, x, y),
    }
}

fn scalar(op: Op, a: &Value, b: &Value) -> Result<Value, String> {
    use Value::{Bool, Num, Str};
    Ok(match (op, a, b) {
        (Op::Eq, x, y) => Bool(x == y),
        (Op::Ne, x, y) => Bool(x != y),
        (Op::Lt, Num(x), Num(y)) => Bool(x < y),
        (Op::Le, Num(x), Num(y)) => Bool(x <= y),
        (Op::Gt, Num(x), Num(y)) => Bool(x > y),
        (Op::Ge, Num(x), Num(y)) => Bool(x >= y),
        (Op::Add, Num(x), Num(y)) => Num(x + y),
        (Op::Sub, Num(x), Num(y)) => Num(x - y),
        (Op::Mul, Num(x), Num(y)) => Num(x * y),
        (Op::Div, Num(x), Num(y)) => {
            if *y == 0.0 {
                return Err(format!("{} / 0", number(*x)));
            }
            Num(x / y)
        }
        (Op::Lt | Op::Le | Op::Gt | Op::Ge, Str(x), Str(y)) => {
            let o = x.cmp(y);
            Bool(match op {
                Op::Lt => o.is_lt(),
                Op::Le => o.is_le(),
                Op::Gt => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        (op, x, y) => return Err(format!("{x} {op:?} {y}: not numbers")),
    })
}

fn call(f: Func, args: &[Value]) -> Result<Value, String> {
    let list = |v: &Value| -> Vec<Value> {
        match v {
            Value::List(xs) => xs.clone(),
            x => vec![x.clone()],
        }
    };
    let nums = |v: &Value| -> Result<Vec<f64>, String> {
        list(v)
            .into_iter()
            .map(|x| match x {
                Value::Num(n) => Ok(n),
                other => Err(format!("{other} is not a number")),
            })
            .collect()
    };
    let bools = |v: &Value| -> Result<Vec<bool>, String> {
        list(v)
            .into_iter()
            .map(|x| match x {
                Value::Bool(b) => Ok(b),
                other => Err(format!("{other} is not true or false")),
            })
            .collect()
    };
    let empty = |what: &str| format!("{what}() of no values (no run printed the figure)");
    Ok(match f {
        Func::All => Value::Bool(bools(&args[0])?.iter().all(|b| *b)),
        Func::Any => Value::Bool(bools(&args[0])?.iter().any(|b| *b)),
        Func::None => Value::Bool(!bools(&args[0])?.iter().any(|b| *b)),
        Func::Count => Value::Num(bools(&args[0])?.iter().filter(|b| **b).count() as f64),
        Func::Len => Value::Num(list(&args[0]).len() as f64),
        Func::Sum => Value::Num(nums(&args[0])?.iter().sum()),
        Func::Min => Value::Num(
            nums(&args[0])?
                .into_iter()
                .reduce(f64::min)
                .ok_or_else(|| empty("min"))?,
        ),
        Func::Max => Value::Num(
            nums(&args[0])?
                .into_iter()
                .reduce(f64::max)
                .ok_or_else(|| empty("max"))?,
        ),
        Func::Mean => {
            let v = nums(&args[0])?;
            if v.is_empty() {
                return Err(empty("mean"));
            }
            Value::Num(v.iter().sum::<f64>() / v.len() as f64)
        }
        Func::Median => {
            let mut v = nums(&args[0])?;
            if v.is_empty() {
                return Err(empty("median"));
            }
            v.sort_by(f64::total_cmp);
            let n = v.len();
            Value::Num(if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            })
        }
        Func::Contains | Func::Lines => {
            let Value::Str(needle) = &args[1] else {
                return Err(format!("{}: the second argument must be a text", args[1]));
            };
            let one = |x: &Value| -> Result<Value, String> {
                let Value::Str(hay) = x else {
                    return Err(format!("{x} is not a text"));
                };
                Ok(if f == Func::Contains {
                    Value::Bool(hay.contains(needle.as_str()))
                } else {
                    Value::Num(hay.lines().filter(|l| l.contains(needle.as_str())).count() as f64)
                })
            };
            match &args[0] {
                Value::List(xs) => Value::List(xs.iter().map(one).collect::<Result<_, _>>()?),
                x => one(x)?,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs() -> Runs {
        let mut r = Runs::new();
        let mk = |status, out: &str, late: Option<f64>| {
            let mut run = Run {
                status,
                hung: status == 3,
                stdout: out.to_string(),
                ..Run::default()
            };
            if let Some(l) = late {
                run.stdout.push_str(&format!("\nmeasure late_us {l}\n"));
            }
            run.read_measures();
            run.stats.insert("signals sent".into(), 4.0);
            run
        };
        r.insert(
            "one_p".into(),
            vec![
                mk(0, "B1\nA1\nB2\nA2", Some(10.0)),
                mk(0, "B1\nA1\nB2\nA2", Some(30.0)),
                mk(3, "B1", None),
            ],
        );
        r
    }

    fn ev(src: &str) -> Result<Value, String> {
        let e = parse(src, &["one_p", "two"]).map_err(|e| format!("{} at {}", e.msg, e.at))?;
        eval(&e, &runs())
    }

    #[test]
    fn fields_are_one_value_per_run_and_reductions_decide() {
        assert_eq!(ev("count(one_p.status == 0)"), Ok(Value::Num(2.0)));
        assert_eq!(ev("any(one_p.hung)"), Ok(Value::Bool(true)));
        assert_eq!(ev("all(one_p.out != 'A1 B1 A2 B2')"), Ok(Value::Bool(true)));
        assert_eq!(ev("count(one_p.out == 'B1 A1 B2 A2')"), Ok(Value::Num(2.0)));
        // Measures: only the runs that printed them.
        assert_eq!(ev("median(one_p.late_us)"), Ok(Value::Num(20.0)));
        assert_eq!(ev("max(one_p.late_us) / 1000"), Ok(Value::Num(0.03)));
        assert_eq!(ev("len(one_p.late_us)"), Ok(Value::Num(2.0)));
        assert_eq!(ev("sum(stat(one_p, 'signals sent'))"), Ok(Value::Num(12.0)));
        assert_eq!(
            ev("any(contains(one_p.stdout, 'A2')) && !all(one_p.hung)"),
            Ok(Value::Bool(true))
        );
        assert_eq!(ev("2 + 3 * 4 >= 14 || false"), Ok(Value::Bool(true)));
        assert_eq!(ev("1_000_000 == 1000000"), Ok(Value::Bool(true)));
    }

    #[test]
    fn mistakes_are_reported_with_where_they_are() {
        let at = |src: &str| parse(src, &["one_p"]).unwrap_err();
        assert_eq!(at("count(tow.status == 0)").at, 6);
        assert!(at("count(tow.status == 0)")
            .msg
            .contains("no scenario \"tow\""));
        assert!(at("frob(one_p.status)").msg.contains("no function"));
        assert!(at("count(one_p.status, 1)").msg.contains("takes 1"));
        assert!(at("one_p.status ==").msg.contains("expected a value"));
        assert!(at("'open").msg.contains("closing quote"));
        assert!(at("one_p").msg.contains(".FIELD"));
        assert!(at("1 2").msg.contains("unexpected"));
        // Evaluation errors say what is wrong, not panic.
        assert!(ev("one_p.hung && true").unwrap_err().contains("reduce it"));
        assert!(ev("median(one_p.nothing)")
            .unwrap_err()
            .contains("no run printed"));
        assert!(ev("count(two.status == 0)")
            .unwrap_err()
            .contains("did not run"));
        assert!(ev("1 / 0").unwrap_err().contains("/ 0"));
    }

    #[test]
    fn numbers_print_as_a_reader_wants_them() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.0425), "0.043");
        assert_eq!(number(9.126), "9.13");
        assert_eq!(number(57.44), "57.4");
        assert_eq!(number(1234.4), "1234");
    }
}
