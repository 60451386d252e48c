//! Go's benchmark format (golang.org/design/14313-benchmark-format), so
//! that `benchstat` reads preempt's figures: configuration lines
//! (`goos: linux`, `cpu: ...`) and one line per observation,
//! `BenchmarkSuite/key-CPUS  1  value unit`.
//!
//! A figure with samples gives one line per sample (each repetition is
//! one of benchstat's runs); a figure kept as a histogram gives one line,
//! its value. What changes from run to run (date, commit) is written as
//! `#` comments, which benchfmt ignores, so that benchstat puts two runs
//! in one table.

use std::fmt::Write as _;

use super::{Document, Figure};

/// Go's name for an architecture.
pub fn goarch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `text` on one line, as a configuration value.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `suite` as the first word of a benchmark name: `Kernels`.
fn title(suite: &str) -> String {
    let mut c = suite.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A number as Go's parser reads it (no `inf`, no `NaN`).
fn number(v: f64) -> Option<String> {
    v.is_finite().then(|| format!("{v}"))
}

/// The lines of one figure.
fn figure_lines(out: &mut String, name: &str, procs: usize, f: &Figure) {
    let unit: String = f.unit.split_whitespace().collect::<Vec<_>>().join("_");
    let values: Vec<f64> = if f.histogram.is_none() && !f.samples.is_empty() {
        f.samples.clone()
    } else {
        vec![f.value]
    };
    for v in values.into_iter().filter_map(number) {
        let _ = writeln!(out, "Benchmark{name}/{}-{procs} \t1\t{v} {unit}", f.key);
    }
}

/// The document in Go's benchmark format.
pub fn write(doc: &Document) -> String {
    let p = &doc.provenance;
    let text = |k: &str| p[k].as_str().map(one_line).unwrap_or_default();
    let procs = p["available_parallelism"].as_u64().unwrap_or(1) as usize;
    let mut out = String::new();
    let _ = writeln!(out, "goos: linux");
    let _ = writeln!(out, "goarch: {}", goarch(&text("arch")));
    let cpu = text("cpu_model");
    if !cpu.is_empty() {
        let _ = writeln!(out, "cpu: {cpu}");
    }
    // What differs from run to run goes in comments, which benchfmt
    // ignores: as configuration it would split benchstat's tables by
    // date and commit instead of comparing the runs.
    for (k, v) in [
        ("preempt", text("preempt_version")),
        ("commit", text("git_commit")),
        ("date", text("date")),
        ("kernel", text("kernel")),
    ] {
        if !v.is_empty() {
            let _ = writeln!(out, "# {k} {v}");
        }
    }
    if doc.quick() {
        let _ = writeln!(out, "# --quick: not a measurement");
    }
    for s in &doc.sections {
        let _ = writeln!(out, "pkg: preempt/bench/{}", s.suite);
        let name = title(&s.suite);
        for f in &s.figures {
            figure_lines(&mut out, &name, procs, f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{stat, Provenance, Section};

    /// A line as golang.org/x/perf/benchfmt reads it: a configuration
    /// line (a key that starts with a lower-case letter and has no space
    /// or upper-case letter, a colon, then a value after spaces), or a
    /// benchmark line ("Benchmark", a name, an integer iteration count,
    /// then pairs of a number and a unit), or a comment (`#`, which
    /// benchfmt ignores). This writer writes nothing else.
    fn check_line(line: &str) -> Result<(), String> {
        if line.starts_with("# ") {
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("Benchmark") {
            let mut f = rest.split_whitespace();
            let name = f.next().ok_or("no name")?;
            if name.is_empty() || rest.starts_with(char::is_whitespace) {
                return Err("empty name".into());
            }
            f.next()
                .ok_or("no iteration count")?
                .parse::<u64>()
                .map_err(|e| format!("iteration count: {e}"))?;
            let rest: Vec<&str> = f.collect();
            if rest.is_empty() || !rest.len().is_multiple_of(2) {
                return Err("values and units do not pair".into());
            }
            for pair in rest.chunks(2) {
                pair[0]
                    .parse::<f64>()
                    .map_err(|e| format!("value {}: {e}", pair[0]))?;
            }
            return Ok(());
        }
        let (k, v) = line.split_once(':').ok_or("neither kind of line")?;
        let first = k.chars().next().ok_or("empty key")?;
        if !first.is_lowercase() || k.chars().any(|c| c.is_whitespace() || c.is_uppercase()) {
            return Err(format!("key {k:?}"));
        }
        if !v.is_empty() && !v.starts_with([' ', '\t']) {
            return Err("no space after the key's colon".into());
        }
        Ok(())
    }

    #[test]
    fn lines_follow_the_benchmark_format() {
        let prov = Provenance::here(true);
        let doc = Document::one(
            &prov,
            Section {
                suite: "kernels".into(),
                figures: vec![
                    Figure::repeated("sum/jit", "ns/iteration", stat::MIN, vec![0.5, 0.25])
                        .unwrap(),
                    Figure::single("sum/jit_over_rust", "x", 1.5),
                    Figure::single("broken", "x", f64::NAN),
                    Figure::distribution("many", "ns", &(0..5000).collect::<Vec<u64>>()).unwrap(),
                ],
                details: serde_json::Value::Null,
            },
        );
        let text = write(&doc);
        for line in text.lines() {
            check_line(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        }
        let procs = prov.available_parallelism.unwrap_or(1);
        let benches: Vec<&str> = text.lines().filter(|l| l.starts_with("Bench")).collect();
        assert_eq!(
            benches,
            [
                format!("BenchmarkKernels/sum/jit-{procs} \t1\t0.5 ns/iteration"),
                format!("BenchmarkKernels/sum/jit-{procs} \t1\t0.25 ns/iteration"),
                format!("BenchmarkKernels/sum/jit_over_rust-{procs} \t1\t1.5 x"),
                format!("BenchmarkKernels/many-{procs} \t1\t2499 ns"),
            ]
        );
        assert!(text.starts_with("goos: linux\ngoarch: "));
        assert!(text.contains("\n# --quick: not a measurement\n"));
        assert!(text.contains("\npkg: preempt/bench/kernels\n"));
        // The checker itself refuses what benchfmt would not read.
        for bad in [
            "BenchmarkX 1.5 2 ns",
            "BenchmarkX 1 2",
            "BenchmarkX 1 fast ns",
            "Goos: linux",
            "go os: linux",
        ] {
            assert!(check_line(bad).is_err(), "{bad}");
        }
    }
}
