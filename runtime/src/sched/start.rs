//! A run, from start to end: the runtime's set-up (the mechanism, the
//! handlers), its threads (the first worker, the timers, the monitor, the
//! collector, a harness's), the wait for the program's outcome under the
//! watchdog, and the end of the run.

use super::*;
use crate::affinity::CpuList;

/// Runs a program to completion, a fault, or the timeout.
pub fn run(module: Arc<Module>, cfg: &RunConfig, obs: &Observers, out: Output) -> Outcome {
    start(Engine::jit(module, obs.harness.clone()), cfg, obs, out)
}

/// Runs a program on the reference interpreter, on the same scheduler.
pub fn run_interp(prog: &Program, cfg: &RunConfig, obs: &Observers, out: Output) -> Outcome {
    let position = Arc::new(AtomicU64::new(u64::MAX));
    let icfg = preempt_jit::interp::InterpConfig {
        stack_size: cfg.stack_size as u64,
        procs: cfg.procs as i64,
        file: cfg.file.clone(),
        watchdog: Some(position.clone()),
        ..preempt_jit::interp::InterpConfig::for_program(prog)
    };
    match Interp::new(prog, &icfg) {
        Ok(i) => start(
            Engine::Interp {
                interp: Box::new(Mutex::new(i)),
                position,
                names: Box::new(preempt_jit::module::Names::new(prog)),
                turns: Box::default(),
                stop_at: match cfg.mode {
                    PreemptMode::Coop => preempt_jit::interp::StopAt::FunctionEntry,
                    _ => preempt_jit::interp::StopAt::Anywhere,
                },
            },
            cfg,
            obs,
            out,
        ),
        Err(e) => Outcome {
            status: 2,
            stderr: format!("{}:{}: {}\n", cfg.file, e.span, e.message),
        },
    }
}

fn start(engine: Engine, cfg: &RunConfig, obs: &Observers, out: Output) -> Outcome {
    if let Some(cpus) = &cfg.cpus {
        if let Err(e) = cpus.check_allowed() {
            return Outcome {
                status: 2,
                stderr: format!("preempt: --cpus {cpus}: {e}\n"),
            };
        }
    }
    let main = match &engine {
        Engine::Jit { module, .. } => module.names.functions.iter().position(|n| n == "main"),
        Engine::Interp { interp, .. } => lock(interp).main_func().map(|f| f.index()),
    };
    let Some(main) = main else {
        return Outcome {
            status: 2,
            stderr: "preempt: the program has no @main\n".into(),
        };
    };
    let module = engine.module().map(|m| &**m);
    let arming = match crate::preempt::effect::Arming::new(cfg.mode, cfg.trap_arm, module) {
        Ok(a) => a,
        Err(e) => {
            return Outcome {
                status: 1,
                stderr: format!("fatal error: cannot set up --preempt {}: {e}\n", cfg.mode),
            }
        }
    };
    if cfg.mode == PreemptMode::Trap && module.is_some() {
        if let Err(e) = crate::preempt::trap::install() {
            return Outcome {
                status: 1,
                stderr: format!("fatal error: cannot install the poll-page fault handler: {e}\n"),
            };
        }
    }
    let rt = Arc::new(Runtime::new(
        cfg.clone(),
        obs.clone(),
        engine,
        out.clone(),
        arming,
    ));
    if rt.signals_preempt() {
        if let Err(e) = asynchronous::install(cfg.preempt_signal) {
            return Outcome {
                status: 1,
                stderr: format!(
                    "fatal error: cannot install the handler for signal {}: {e}\n",
                    cfg.preempt_signal
                ),
            };
        }
    }
    let args = match rt.engine {
        Engine::Jit { .. } => SpawnArgs::Words(Vec::new()),
        Engine::Interp { .. } => SpawnArgs::Values(Vec::new()),
    };
    rt.spawn(preempt_jit::ir::FuncId::new(main), args, None);
    rt.new_m(None);
    // Timer and monitor threads.
    let (t_rt, s_rt) = (rt.clone(), rt.clone());
    let timer_thread = std::thread::Builder::new()
        .name("preempt-timers".into())
        .spawn(move || {
            if !t_rt.pin_thread("the timers' thread") {
                return;
            }
            t_rt.timers.serve(
                monotonic_nanos,
                |a| match a {
                    Action::Wake(g) => t_rt.ready(g, None),
                    Action::Send(c) => {
                        let mut wakes = Vec::new();
                        c.offer(monotonic_nanos() as i64, &mut wakes);
                        t_rt.wake_all(&mut wakes, None);
                    }
                },
                || t_rt.check_dead(),
            )
        });
    let sysmon_thread = std::thread::Builder::new()
        .name("preempt-sysmon".into())
        .spawn(move || {
            if s_rt.pin_thread("the monitor") {
                sysmon::run(&s_rt)
            }
        });
    rt.describe_code_to_tracer();
    let o_rt = rt.clone();
    let observer = (cfg.schedtrace.is_some() || rt.obs.tracer.logs_stops()).then(|| {
        std::thread::Builder::new()
            .name("preempt-observe".into())
            .spawn(move || {
                if o_rt.pin_thread("the observer") {
                    observe::run(&o_rt)
                }
            })
    });
    let harness_threads = match &rt.obs.harness {
        Some(h) => h.start(&rt),
        None => Ok(()),
    };
    let gc_thread = match rt.engine {
        Engine::Jit { .. } => Collector::start(&rt).map(Some),
        Engine::Interp { .. } => Ok(None),
    };
    if let (Some(cpus), Ok(Some(gc))) = (&cfg.cpus, &gc_thread) {
        if let Err(e) = cpus.pin_started(gc) {
            rt.pin_failed("the collector", cpus, &e);
        }
    }
    if timer_thread.is_err()
        || sysmon_thread.is_err()
        || observer.as_ref().is_some_and(|o| o.is_err())
        || harness_threads.is_err()
        || gc_thread.is_err()
    {
        return Outcome {
            status: 1,
            stderr: "fatal error: cannot start the runtime's threads\n".into(),
        };
    }
    // Wait for the outcome, or end the program at the timeout.
    let (tx, rx) = mpsc::channel();
    let w_rt = rt.clone();
    std::thread::spawn(move || {
        w_rt.pin_thread("the outcome's waiter");
        let mut o = lock(&w_rt.outcome);
        while o.is_none() {
            o = w_rt
                .outcome_ready
                .wait(o)
                .unwrap_or_else(|e| e.into_inner());
        }
        let _ = tx.send(o.clone().unwrap_or_else(Outcome::success));
    });
    let outcome = match cfg.timeout {
        Some(t) => rx
            .recv_timeout(t.saturating_sub(cfg.timeout_spent))
            .unwrap_or_else(|_| diagnose::watchdog(&rt, t)),
        None => rx.recv().unwrap_or_else(|_| Outcome {
            status: 1,
            stderr: "fatal error: the runtime stopped without an outcome\n".into(),
        }),
    };
    rt.finish(outcome.clone());
    // Whoever finished first may still be stopping everything: the run
    // does not return before every request is undone (the next run in
    // this process would find a function patched, or the global poll page
    // protected).
    rt.close_requests();
    // The observer ends within its period; then the rest of what the
    // handlers and the stops left goes out.
    if let Some(Ok(o)) = observer {
        let _ = o.join();
    }
    if rt.obs.tracer.is_on() {
        rt.drain_all_decisions();
        rt.obs.tracer.flush_stops(&mut std::io::stderr().lock());
    }
    let switches = lock(&rt.ms)
        .iter()
        .map(|m| m.switches.load(Ordering::Relaxed))
        .sum();
    rt.obs.stats.sched.context_switches_add(switches);
    rt.obs
        .stats
        .sched
        .goroutines_created_add(rt.goroutines_created());
    out.flush();
    // Let parked workers and the monitor see the shutdown; a worker still
    // in a goroutine's code stops at its next preemption point.
    std::thread::sleep(Duration::from_millis(0));
    outcome
}

impl Runtime {
    /// Pins the calling thread, one of the run's, to `--cpus` as it
    /// starts; false if that failed, and the run is ending.
    pub(super) fn pin_thread(&self, what: &str) -> bool {
        let Some(cpus) = &self.cfg.cpus else {
            return true;
        };
        match cpus.pin_thread() {
            Ok(()) => true,
            Err(e) => {
                self.pin_failed(what, cpus, &e);
                false
            }
        }
    }

    /// A thread could not be pinned (the list was checked at the start: a
    /// CPU went offline since): the run ends with a fatal error.
    fn pin_failed(&self, what: &str, cpus: &CpuList, e: &std::io::Error) {
        self.finish(Outcome {
            status: 1,
            stderr: format!("fatal error: cannot pin {what} to CPUs {cpus} (--cpus): {e}\n"),
        });
    }
}
