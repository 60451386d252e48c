//! The result files of the command line, all in one format
//! (`preempt_bench::results`, docs/results-format.md): `run
//! --stats-json`, and `bench --json`, `--out-dir` and `--go-bench`.

use std::path::{Path, PathBuf};

use preempt_bench::results::{self, figures, Document, Provenance, Section};
use preempt_runtime::{Observers, RunConfig};
use serde_json::{json, Value};

use crate::EngineArg;

/// What `preempt run` ran, for its `--stats-json`.
pub struct RunSettings<'a> {
    pub cfg: &'a RunConfig,
    pub engine: EngineArg,
    pub opt: u8,
}

fn ns(d: std::time::Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl RunSettings<'_> {
    pub fn to_json(&self) -> Value {
        let c = self.cfg;
        json!({
            "file": c.file,
            "engine": match self.engine { EngineArg::Jit => "jit", EngineArg::Interp => "interp" },
            "opt": self.opt,
            "procs": c.procs,
            "procs_from": c.procs_from.key(),
            "cpus": c.cpus.as_ref().map(|l| l.to_string()),
            "mode": c.mode.name(),
            "quantum_ns": ns(c.quantum),
            "sched": match c.sched {
                preempt_runtime::sched::sysmon::Model::Precise => "precise",
                preempt_runtime::sched::sysmon::Model::Go => "go",
            },
            "sysmon_min_tick_ns": ns(c.sysmon_min_tick),
            "sysmon_max_tick_ns": ns(c.sysmon_max_tick),
            "hang_threshold_ns": ns(c.hang_threshold),
            "timeout_ns": c.timeout.map(ns),
            "preempt_signal": c.preempt_signal,
            "unsafe_points": match c.unsafe_points {
                preempt_runtime::preempt::decide::UnsafePoints::Honour => "honour",
                preempt_runtime::preempt::decide::UnsafePoints::Ignore => "ignore",
            },
            "trap_arm": c.trap_arm.name(),
            "async_stop": c.async_stop.name(),
            "quantum_timer": c.quantum_timer.name(),
            "stack_size": c.stack_size,
            "gc_percent": c.gc_percent,
            "gc_verify": c.gc_verify,
            "gc_interleave": c.gc_interleave,
        })
    }
}

/// `--stats-json`: suite `run`, the run's settings, every histogram and
/// counter as a figure, and the statistics as `--stats` prints them in
/// `details`.
pub fn run_document(settings: &RunSettings<'_>, obs: &Observers) -> Document {
    let stats = &obs.stats.sched;
    let mut doc = Document::one(
        &Provenance::here(false),
        Section {
            suite: "run".into(),
            figures: figures::run_stats(stats),
            details: stats.to_json(),
        },
    );
    doc.settings = settings.to_json();
    doc
}

/// `preempt bench`'s result files: `--json FILE` (one document: the
/// suite's, or for `all` every suite's), `--out-dir DIR` (`DIR/SUITE.json`
/// per suite), `--go-bench FILE` (Go's benchmark format).
#[derive(Clone, Debug, Default)]
pub struct BenchFiles {
    pub json: Option<PathBuf>,
    pub out_dir: Option<PathBuf>,
    pub go_bench: Option<PathBuf>,
}

impl BenchFiles {
    /// Checks every file that `preempt bench SUITE` (or `all`) will write
    /// can be written, before the suites run (the directory is made if
    /// need be).
    pub fn check(&self, suite: &str) -> Result<(), String> {
        let suites = ["compile", "kernels", "runtime", "preempt", "mechanisms"]
            .into_iter()
            .filter(|s| suite == "all" || suite == *s);
        let fail = |e: String| format!("preempt bench: {e}");
        for p in [&self.json, &self.go_bench].into_iter().flatten() {
            results::check_writable(p).map_err(fail)?;
        }
        if let Some(dir) = &self.out_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
            for s in suites {
                results::check_writable(&results::out_path(dir, s)).map_err(fail)?;
            }
        }
        Ok(())
    }

    /// Writes the files for `sections`, run as `suite` (`all` or one).
    pub fn write(&self, suite: &str, quick: bool, sections: Vec<Section>) -> Result<(), String> {
        let prov = Provenance::here(quick);
        let fail = |e: String| format!("preempt bench: {e}");
        let doc = Document {
            suite: suite.to_string(),
            provenance: prov.to_json(),
            settings: Value::Null,
            sections,
        };
        if let Some(p) = &self.json {
            doc.write(p).map_err(fail)?;
        }
        if let Some(dir) = &self.out_dir {
            for s in &doc.sections {
                Document::one(&prov, s.clone())
                    .write(&results::out_path(dir, &s.suite))
                    .map_err(fail)?;
            }
        }
        if let Some(p) = &self.go_bench {
            write_text(p, &results::gobench::write(&doc)).map_err(fail)?;
        }
        Ok(())
    }
}

fn write_text(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A suite's section: its figures, made from its details.
pub fn section(suite: &str, details: Value) -> Section {
    Section {
        suite: suite.to_string(),
        figures: figures::of_suite(suite, &details),
        details,
    }
}
