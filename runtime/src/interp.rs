//! Running a program on the reference interpreter with the runtime's
//! conventions: the same output sink, configuration, watchdog and exit
//! statuses as JIT runs, so `--engine interp` is a drop-in comparison.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use preempt_jit::interp::{run_program, InterpConfig};
use preempt_jit::ir::{BlockId, FuncId, Program};

use crate::{Outcome, Output, RunConfig};

/// Passes each write (one whole `print`) to the shared output at once.
struct Lines(Output);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_bytes(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush();
        Ok(())
    }
}

/// Runs `prog` (verified) at optimisation `level` on the interpreter.
pub fn run(prog: &Program, level: u8, cfg: &RunConfig, out: Output) -> Outcome {
    let mut prog = prog.clone();
    preempt_jit::opt::optimize(&mut prog, level);
    let hook = Arc::new(AtomicU64::new(u64::MAX));
    let icfg = InterpConfig {
        stack_size: cfg.stack_size as u64,
        procs: cfg.procs as i64,
        file: cfg.file.clone(),
        watchdog: Some(hook.clone()),
        ..InterpConfig::for_program(&prog)
    };
    let (tx, rx) = mpsc::channel();
    let worker = {
        let (prog, out) = (prog.clone(), out.clone());
        std::thread::Builder::new()
            .name("preempt-interp".into())
            .spawn(move || {
                let o = run_program(&prog, &icfg, &mut Lines(out));
                let _ = tx.send(o);
            })
    };
    if let Err(e) = worker {
        return Outcome {
            status: 1,
            stderr: format!("fatal error: cannot start the interpreter thread: {e}\n"),
        };
    }
    let received = match cfg.timeout {
        Some(t) => rx.recv_timeout(t).map_err(|_| Some(t)),
        None => rx.recv().map_err(|_| None),
    };
    out.flush();
    match received {
        Ok(o) => Outcome {
            status: o.status,
            stderr: o.report.unwrap_or_default(),
        },
        Err(Some(t)) => {
            let at = hook.load(Ordering::Relaxed);
            let (f, b) = (FuncId((at >> 32) as u32), BlockId(at as u32));
            let place = match prog.funcs.get(f.index()) {
                Some(func) if b.index() < func.blocks.len() => {
                    format!("@{} in block {}", func.name, func.block_name(b))
                }
                _ => "(not yet started)".to_string(),
            };
            Outcome {
                status: 3,
                stderr: format!(
                    "preempt: watchdog: the program did not finish within {:.3}s (--timeout)\n\ngoroutine 1 [running]:\n{place} (interpreter)\n",
                    t.as_secs_f64()
                ),
            }
        }
        Err(None) => Outcome {
            status: 1,
            stderr: "fatal error: the interpreter thread died\n".into(),
        },
    }
}
