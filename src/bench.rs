//! `preempt bench`: the suites of `preempt_bench`, their text on stdout,
//! progress on stderr (a terminal only), the JSON files, and with
//! `--report DIR` one self-contained HTML page of the whole run.

use std::path::PathBuf;
use std::process::ExitCode;

use preempt_bench::doc::{Doc, QUICK_MARK};
use preempt_bench::progress;
use preempt_bench::runtime::Options;
use preempt_runtime::affinity::CpuList;

use crate::console::{self, errln, outln};
use crate::fail;

/// The suites, in the order `all` runs them.
const SUITES: [&str; 5] = ["compile", "kernels", "runtime", "preempt", "mechanisms"];

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Which suite: all, compile, kernels, runtime, preempt, mechanisms.
    #[arg(default_value = "all")]
    pub suite: String,
    /// Short runs, to check the harness rather than measure (every output
    /// says so).
    #[arg(long)]
    pub quick: bool,
    /// Write every figure, with its samples and the run's provenance,
    /// to FILE as JSON (docs/results-format.md): the suite's, or for
    /// `all` one file holding every suite.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write each suite's JSON to DIR/SUITE.json.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Write the figures in Go's benchmark format to FILE, for
    /// `benchstat`.
    #[arg(long, value_name = "FILE")]
    pub go_bench: Option<PathBuf>,
    /// Repetitions of each measurement of the compile and kernels
    /// suites (default 5, 1 with --quick): more samples let `preempt
    /// compare` tell smaller differences from noise.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub reps: Option<u64>,
    /// How long each timed run of the kernels suite lasts, as Go's
    /// -benchtime (default 300ms, 20ms with --quick); short runs are
    /// less often interrupted on a busy machine.
    #[arg(long, value_parser = crate::parse_duration)]
    pub benchtime: Option<std::time::Duration>,
    /// Leave out the Go side of the runtime suite.
    #[arg(long)]
    pub no_go: bool,
    /// Also write one self-contained HTML page of the run (tables, plots,
    /// provenance) to DIR/preempt-bench-<date>.html.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Pin the benchmarks to these CPUs (0, 0-1, 0,2-3), as `taskset
    /// -c LIST` would: this process, and every child it starts
    /// (`preempt run --cpus LIST`, Go's and the JVM's peers).
    #[arg(long, value_name = "LIST", value_parser = CpuList::parse)]
    pub cpus: Option<CpuList>,
}

/// Checks that `dir` exists (created if need be) and takes files.
fn check_report_dir(dir: &std::path::Path) -> Result<(), String> {
    let probe = dir.join(format!(".preempt-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            format!(
                "preempt bench: --report: cannot write to {}: {e}",
                dir.display()
            )
        })
}

pub fn main(args: &BenchArgs) -> ExitCode {
    let BenchArgs {
        suite,
        quick,
        json,
        out_dir,
        go_bench,
        reps,
        benchtime,
        no_go,
        report,
        cpus,
    } = args;
    let quick = *quick;
    if suite != "all" && !SUITES.contains(&suite.as_str()) {
        return fail(format!(
            "preempt bench: unknown suite '{suite}' (all, {})",
            SUITES.join(", ")
        ));
    }
    let files = crate::outputs::BenchFiles {
        json: json.clone(),
        out_dir: out_dir.clone(),
        go_bench: go_bench.clone(),
    };
    if let Err(msg) = files.check(suite) {
        return fail(msg);
    }
    if let Some(dir) = report {
        if let Err(msg) = check_report_dir(dir) {
            return fail(msg);
        }
    }
    if let Err(msg) = crate::pin(cpus.as_ref()) {
        return fail(msg.replacen("preempt:", "preempt bench:", 1));
    }
    // The load before any suite adds to it.
    let _ = preempt_bench::noise::load_at_start();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut provenance = vec![preempt_bench::run_line()];
    provenance.push(format!(
        "$ preempt {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    ));
    if let Some(c) = cpus {
        provenance[0].push_str(&format!(", pinned to CPUs {c} (--cpus)"));
    }
    outln!("preempt bench: {}", provenance[0]);
    if quick {
        outln!("{QUICK_MARK}: --quick runs tiny sizes to check the harness; no figure below is a measurement");
    }
    let mut budget = if quick {
        preempt_bench::Budget::quick()
    } else {
        preempt_bench::Budget::default()
    };
    if let Some(r) = reps {
        budget.repetitions = *r as usize;
    }
    budget.target = benchtime.unwrap_or(budget.target);
    let options = || {
        let mut opts = Options::new(quick, std::env::current_exe().ok());
        opts.go = !no_go;
        opts
    };
    let mut docs: Vec<Doc> = Vec::new();
    let mut sections = Vec::new();
    for name in SUITES {
        if suite != "all" && suite != name {
            continue;
        }
        let label = format!("bench {name}");
        let (doc, details) = match name {
            "compile" => {
                let r = progress::suite(&label, || preempt_bench::compile::run(budget));
                (r.doc, r.json)
            }
            "kernels" => {
                let r = progress::suite(&label, || preempt_bench::kernels::run(budget));
                (r.doc, r.json)
            }
            // The PIR side of these runs as `preempt run` child processes
            // of this very executable.
            "runtime" => {
                let r = progress::suite(&label, || preempt_bench::runtime::run(options()));
                (r.doc, r.json)
            }
            "preempt" => {
                let r = progress::suite(&label, || preempt_bench::preempt::run(options(), quick));
                (r.doc, r.json)
            }
            _ => {
                let r =
                    progress::suite(&label, || preempt_bench::mechanisms::run(options(), quick));
                (r.doc, r.json)
            }
        };
        outln!("\n$ preempt bench {name}\n{}", doc.text().trim_end());
        docs.push(doc);
        sections.push(crate::outputs::section(name, details));
    }
    if let Err(msg) = files.write(suite, quick, sections) {
        errln!("{msg}");
        return console::exit(1);
    }
    if let Some(dir) = report {
        let path = preempt_bench::html::page_path(dir, started);
        let page = preempt_bench::html::page(&provenance, quick, &docs);
        if let Err(e) = std::fs::write(&path, page) {
            return fail(format!(
                "preempt bench: cannot write {}: {e}",
                path.display()
            ));
        }
        outln!("\nwrote {}", path.display());
    }
    console::exit(0)
}
