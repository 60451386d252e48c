//! `preempt stress`: the command line of the preemption harness
//! (crate `preempt-stress`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use preempt_bench::results::{self, Document, Figure, Provenance, Section};
use preempt_jit::module::Module;
use preempt_runtime::RunConfig;
use preempt_stress::{self as stress, Fault, Mode, Options};
use serde_json::json;

use crate::{fail, load, opt_level, parse_duration, RunLimits, UnsafePointsArg};

pub const HELP: &str = "\
Examples:
  preempt stress examples/stress/calls.pir                 every boundary up to 2000, -O1
  preempt stress examples/stress/heap.pir -O0 --limit 500  the first 500 boundaries at -O0
  preempt stress examples/stress/live-values.pir --storm --global rounds=200000
                                                           the storm, on runs long enough for it
  preempt stress examples/stress/live-values.pir --inject-fault flags
                                                           a stub that loses the flags: mismatches
  preempt stress examples/stress/calls.pir --preempt patch every boundary armed through patch's
                                                           own mechanism (also coop, poll, trap)

On x86-64, --every-instruction (the default) single-steps the program's JIT
code with the trap flag and, in one run per boundary k, preempts the program
at the k-th instruction it executes. aarch64 has no user-mode single-step:
there it runs the signal storm (under qemu-user, set QEMU_SINGLESTEP=1 so a
signal can land between any two instructions).

Exit status: 0 no mismatch, 1 a mismatch, 2 bad usage, a file that does not
parse or verify, or a program whose reference run does not end.";

#[derive(clap::Args, Debug, Clone)]
pub struct StressArgs {
    /// The .pir file. Its output must not depend on timing: one P, no
    /// `now`, `sleep`, `after` or `ccall` whose result changes the path.
    pub file: PathBuf,
    /// Preempt at every instruction boundary in turn (the default).
    #[arg(long, conflicts_with = "storm")]
    pub every_instruction: bool,
    /// Send the preemption signal back to back while the program runs,
    /// many times, instead of stepping.
    #[arg(long)]
    pub storm: bool,
    /// How many boundaries to try (stepping).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
    /// The first boundary to try (stepping).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub first: u64,
    /// Make the stop request this many boundaries before the handler's
    /// decision, as the monitor's request precedes its signal (stepping).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub request_lead: u64,
    /// Runs under the storm.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub runs: u64,
    /// The storm's pause between two signals (e.g. 5us; 0: as fast as
    /// delivery allows).
    #[arg(long, default_value = "5us", value_parser = parse_duration)]
    pub interval: Duration,
    /// Fault injection: `flags` makes every redirect lose the condition
    /// flags, to show that the harness finds it.
    #[arg(long, value_enum, default_value = "none")]
    pub inject_fault: FaultArg,
    /// Start an i64 global at VALUE instead of its initialiser (e.g.
    /// `--global rounds=20000` to make a run long enough for the storm).
    #[arg(long = "global", value_name = "NAME=VALUE", value_parser = parse_global)]
    pub globals: Vec<(String, i64)>,
    /// Stop after this many mismatches.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_mismatches: u64,
    /// The preemption mode, compiled for and stopped with: `async` (the
    /// default) redirects as the signal's handler does; `poll`, `trap` and
    /// `patch` arm the goroutine at the boundary through their own
    /// mechanism, and it stops at its next back-edge; `coop` makes the
    /// request alone.
    #[arg(long, value_enum, value_name = "MODE", default_value = "async")]
    pub preempt: crate::ModeArg,
    /// Optimisation level: 0 none, 1 LICM (default, or the file's `set opt`).
    #[arg(short = 'O', value_parser = clap::value_parser!(u8).range(0..=1))]
    pub opt: Option<u8>,
    /// Ps (GOMAXPROCS). More than one makes the instruction stream depend
    /// on timing.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub procs: u64,
    /// Per run (a run the watchdog ends is a mismatch).
    #[command(flatten)]
    pub limits: RunLimits,
    /// Also write the findings to FILE as JSON (docs/results-format.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum FaultArg {
    None,
    Flags,
}

/// `NAME=VALUE` or `@NAME=VALUE`.
fn parse_global(s: &str) -> Result<(String, i64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not NAME=VALUE"))?;
    let name = name.trim().trim_start_matches('@');
    let value: i64 = value
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("'{value}' is not an i64"))?;
    Ok((name.to_string(), value))
}

pub fn main(a: &StressArgs) -> ExitCode {
    if let Some(p) = &a.json {
        if let Err(e) = results::check_writable(p) {
            return fail(format!("preempt stress: {e}"));
        }
    }
    let mut prog = match load(&a.file) {
        Ok(p) => p,
        Err(msg) => return fail(msg),
    };
    let level = opt_level(&prog, a.opt);
    preempt_jit::opt::optimize(&mut prog, level);
    let mode = preempt_jit::ir::PreemptMode::from(a.preempt);
    prog.settings.preempt = Some(mode);
    let module = match Module::compile(&prog) {
        Ok(m) => Arc::new(m),
        Err(e) => return fail(format!("preempt: cannot compile {}: {e}", a.file.display())),
    };
    let mut inits: Vec<i64> = prog.globals.iter().map(|g| g.init).collect();
    for (name, value) in &a.globals {
        let Some(i) = prog.globals.iter().position(|g| g.name == *name) else {
            return fail(format!(
                "preempt stress: {} has no global @{name}",
                a.file.display()
            ));
        };
        if prog.globals[i].ty != preempt_jit::ir::Type::I64 {
            return fail(format!("preempt stress: @{name} is not an i64 global"));
        }
        inits[i] = *value;
    }
    let cfg = a.limits.apply(
        &a.file,
        RunConfig {
            procs: a.procs as usize,
            mode,
            ..RunConfig::default()
        },
    );
    let points = match a.limits.unsafe_points {
        UnsafePointsArg::Honour => "unsafe points honoured",
        UnsafePointsArg::Ignore => "UNSAFE POINTS IGNORED",
    };
    let fault = match a.inject_fault {
        FaultArg::None => Fault::None,
        FaultArg::Flags => Fault::Flags,
    };
    let mut title = format!(
        "preempt stress {}: opt {level}, procs {}, {points}",
        a.file.display(),
        a.procs
    );
    for (name, value) in &a.globals {
        title.push_str(&format!(", @{name} = {value}"));
    }
    if mode != preempt_jit::ir::PreemptMode::Async {
        title.push_str(&format!(", --preempt {mode}"));
        if mode == preempt_jit::ir::PreemptMode::Trap {
            title.push_str(&format!(" (--trap-arm {})", cfg.trap_arm.name()));
        }
    }
    if fault != Fault::None {
        title.push_str(&format!(", FAULT INJECTED: {}", fault.name()));
    }
    let opts = Options {
        mode: if a.storm {
            Mode::Storm
        } else {
            Mode::EveryInstruction
        },
        first: a.first,
        limit: a.limit,
        request_lead: a.request_lead,
        runs: a.runs,
        interval: a.interval,
        fault,
        max_mismatches: a.max_mismatches as usize,
        title,
        progress: |what| preempt_bench::progress::step(what),
    };
    let name = a.file.file_name().unwrap_or(a.file.as_os_str());
    let label = format!("stress {}", name.to_string_lossy());
    match preempt_bench::progress::suite(&label, || stress::run(&module, &inits, &cfg, &opts)) {
        Ok(report) => {
            crate::console::stdout(&report.text());
            if let Some(p) = &a.json {
                if let Err(e) = document(a, &report).write(p) {
                    crate::console::errln!("preempt stress: {e}");
                    return crate::console::exit(1);
                }
            }
            crate::console::exit(u8::from(report.mismatch_count() > 0))
        }
        Err(msg) => fail(msg),
    }
}

/// `--json`: the findings as figures (counts, and the time taken), the
/// summary and every mismatch in `details`.
fn document(a: &StressArgs, r: &stress::Report) -> Document {
    let mut figures = vec![
        Figure::single("mismatches", "count", r.mismatch_count() as f64),
        Figure::single("static_boundaries", "count", r.static_boundaries as f64),
        Figure::single(
            "boundaries_redirected_at",
            "count",
            r.redirected_at.len() as f64,
        ),
        Figure::single(
            "boundaries_declined_at",
            "count",
            r.declined_at.len() as f64,
        ),
        Figure::single("elapsed", "ns", r.elapsed.as_nanos() as f64),
    ];
    let mut details = json!({
        "file": a.file.display().to_string(),
        "title": r.title,
        "mode": r.mode,
        "reference": {"status": r.reference.status, "stdout_lines": r.reference.stdout.lines().count()},
        "stopped_early": r.stopped_early,
        "mismatches": r.mismatches.iter().map(|m| json!({
            "label": m.label, "place": m.place, "status": m.got.status,
            "stdout": m.got.stdout, "stderr": m.got.stderr,
        })).collect::<Vec<_>>(),
    });
    if let Some(s) = &r.step {
        figures.extend(Figure::counts(
            "step/",
            [
                ("tried", s.tried),
                ("redirected", s.redirected),
                ("unsafe", s.unsafe_total()),
                ("later_redirect", s.later_redirect),
                ("later_cooperative", s.later_cooperative),
                ("never_stopped", s.never_stopped),
                ("armed", s.armed),
                ("armed_yield", s.armed_yield),
                ("armed_cooperative", s.armed_cooperative),
                ("armed_never", s.armed_never),
                ("arm_timeouts", s.arm_timeouts),
                ("diverged", s.diverged),
            ],
        ));
        figures.extend(Figure::counts("step/unsafe/", s.unsafe_by_reason.clone()));
        details["step"] = json!({
            "first": s.first, "last": s.last, "boundaries": s.boundaries, "more": s.more,
            "mechanism": s.mechanism.name(), "lead": s.lead,
        });
    }
    if let Some(s) = &r.storm {
        figures.extend(Figure::counts(
            "storm/",
            [
                ("runs", s.runs),
                ("signals_sent", s.signals_sent),
                ("arms", s.arms),
                ("redirected", s.redirected),
                ("cooperative", s.cooperative),
            ],
        ));
        figures.extend(Figure::counts("storm/declined/", s.declined.clone()));
        details["storm"] = json!({
            "interval_ns": s.interval.as_nanos() as u64, "mechanism": s.mechanism.name(),
            "qemu_singlestep": s.qemu_singlestep,
        });
    }
    Document::one(
        &Provenance::here(false),
        Section {
            suite: "stress".into(),
            figures,
            details,
        },
    )
}
