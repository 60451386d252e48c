//! The operations a goroutine asks of the runtime, served by the M that
//! runs it: the runtime-call table (channels, select, timers, spawn,
//! print, the collector, thread locking, foreign calls) and the
//! preemption points every operation passes through.
//!
//! A JIT goroutine asks by a runtime call (the `rt_call` stub returns the
//! request word to `switch_to`'s caller, which [`super::engine`] decodes
//! into an [`Op`]); an interpreted one by returning the same [`Op`].
//! [`Runtime::serve`] answers with what the scheduler does next
//! ([`Next`]): resume the goroutine with a result, or park, queue or end
//! it.

use super::*;

impl Runtime {
    pub(super) fn fault(&self, g: &G, f: Fault) -> Next {
        // SAFETY: the serving M owns g.
        let frames = unsafe { self.engine.traceback(g) };
        self.finish(Outcome {
            status: 1,
            stderr: report(&f, g.id, &frames, &self.cfg.file),
        });
        Next::Gone
    }

    /// A cooperative preemption point: honour a pending request.
    /// A preemption point reached by `mech` (the stack check and runtime
    /// calls are cooperative points in every mode; the signal stub is the
    /// asynchronous one): honour a pending request.
    pub(super) fn preemption_point(
        &self,
        m: usize,
        p: Option<usize>,
        g: &G,
        mech: PreemptMode,
    ) -> Option<Next> {
        if self.shutdown.load(Ordering::Acquire) {
            return Some(Next::Gone);
        }
        // The goroutine has stopped: time-to-preempt ends here, before the
        // undo (a cost of its own, recorded as such).
        let now = monotonic_nanos();
        let Some(req) = g
            .stop
            .stop(&self.arming.fx(g, &self.obs.stats.sched, &self.obs.tracer))
        else {
            return self.stopped_by_timer(g, now);
        };
        g.timer_stop_at.store(0, Ordering::Release);
        let (kind, at) = (req.kind, req.at);
        let ttp = now.saturating_sub(at);
        self.obs.stats.sched.preempted(kind, mech, ttp);
        if mech == PreemptMode::Async {
            // The two halves: the signal's delivery (request to the
            // handler's redirect) and the way back (handler to here).
            let h = g.redirected_at.load(Ordering::Acquire);
            if h >= at && h <= now {
                let s = &self.obs.stats.sched;
                s.record(crate::stats::TTP_DELIVERY, h - at);
                s.record(crate::stats::TTP_STUB, now - h);
                let left = g.left_handler_at.load(Ordering::Acquire);
                if left >= h && left <= now {
                    s.record(crate::stats::TTP_HANDLER, left - h);
                    s.record(crate::stats::TTP_LEAVE, now - left);
                }
            }
        }
        if self.obs.tracer.is_on() {
            self.observe_stop(m, p, g, mech, req, now);
        }
        Some(Next::Preempted)
    }

    /// `g` reached the scheduler with no request: its worker's quantum
    /// timer stopped it (see [`crate::preempt::qtimer`]), or nothing did.
    fn stopped_by_timer(&self, g: &G, now: u64) -> Option<Next> {
        let deadline = g.timer_stop_at.swap(0, Ordering::AcqRel);
        if deadline == 0 {
            return None;
        }
        let s = &self.obs.stats.sched;
        s.preempted(
            PreemptKind::Quantum,
            PreemptMode::Async,
            now.saturating_sub(deadline),
        );
        s.record(qtimer::DEADLINE_TO_STOP, now.saturating_sub(deadline));
        let h = g.redirected_at.load(Ordering::Acquire);
        if h >= deadline && h <= now {
            s.record(qtimer::DEADLINE_TO_HANDLER, h - deadline);
            s.record(crate::stats::TTP_STUB, now - h);
        }
        Some(Next::Preempted)
    }

    pub(super) fn continue_or_preempt(&self, g: &G, r: Resume) -> Next {
        if g.stop.pending().is_some() {
            let (m, p) = SERVING.with(|s| s.get());
            if let Some(n) = self.preemption_point(m, p, g, PreemptMode::Coop) {
                // The result is delivered when the goroutine resumes.
                g.deliver(r);
                return n;
            }
        }
        Next::Continue(r)
    }

    pub(super) fn value(&self, g: &G, v: u64) -> Next {
        self.continue_or_preempt(
            g,
            Resume {
                value: Some(v),
                ..Resume::default()
            },
        )
    }

    /// Marks `g` waiting for `reason`, and ends its slice. Channel
    /// operations call it with the channel locked, after enqueuing `g` and
    /// before any waker can see it; the serving M touches `g` no more
    /// after that (so the slice ends here, not when the M is back in
    /// `execute`, by which time `g` may run elsewhere).
    pub(super) fn parking(&self, g: &G, reason: WaitReason) {
        g.set_reason(reason);
        g.set_status(Status::Waiting);
        if let (_, Some(p)) = SERVING.with(|s| s.get()) {
            let req = self.end_slice(p, g, || "blocked");
            self.stopped_by_itself(req);
        }
    }

    pub(super) fn serve(&self, m: &Arc<M>, g: &Arc<G>, op: Op, wakes: &mut Vec<Wake>) -> Next {
        if self.shutdown.load(Ordering::Acquire) {
            return Next::Gone;
        }
        let p = m.p();
        match op {
            Op::Exit => {
                if g.id == 1 {
                    self.finish(Outcome::success());
                    return Next::Gone;
                }
                self.unlock_thread(m, g, true);
                Next::Dead
            }
            Op::Goexit => {
                if g.id == 1 {
                    self.main_goexit.store(true, Ordering::Release);
                }
                self.unlock_thread(m, g, true);
                Next::Dead
            }
            Op::StackCheck => {
                // SAFETY: this M owns g.
                let exhausted = || unsafe { self.engine.stack_exhausted(g) };
                match coop::stack_check(g.guard_poisoned(), exhausted) {
                    coop::StackCheck::Preempt => self
                        .preemption_point(m.id, p, g, PreemptMode::Coop)
                        // A request already cleared: just go on.
                        .unwrap_or(Next::Continue(Resume::default())),
                    coop::StackCheck::Grow => {
                        // SAFETY: this M owns g, in its StackCheck call.
                        let grown = unsafe { self.engine.grow_stack(g, &self.stacks) };
                        match grown {
                            // The prologue checks again, on the new stack.
                            Ok(()) => Next::Continue(Resume::default()),
                            Err(f) => self.fault(g, f),
                        }
                    }
                    coop::StackCheck::Spurious => Next::Continue(Resume::default()),
                }
            }
            Op::PreemptionPoint => self
                .preemption_point(m.id, p, g, PreemptMode::Coop)
                .unwrap_or(Next::Continue(Resume::default())),
            // The interpreter's stand-in for the mode's own mechanism.
            Op::Interrupted => self
                .preemption_point(m.id, p, g, self.cfg.mode)
                .unwrap_or(Next::Continue(Resume::default())),
            Op::PreemptStub => {
                // The stub: entered by a signal's redirect (async), a
                // back-edge poll's yield (poll), a poll-page fault's
                // redirect (trap) or a patched back-edge (patch).
                let mech = match self.cfg.mode {
                    PreemptMode::Poll | PreemptMode::Trap | PreemptMode::Patch => self.cfg.mode,
                    PreemptMode::Coop | PreemptMode::Async => PreemptMode::Async,
                };
                let next = self
                    .preemption_point(m.id, p, g, mech)
                    .unwrap_or(Next::Continue(Resume::default()));
                // Counted once the stop has read the clock: the counter's
                // line is written by every thread, and fetching it from
                // another core's cache is no part of stopping.
                self.obs
                    .stats
                    .preempt_stub_entries
                    .fetch_add(1, Ordering::Relaxed);
                next
            }
            Op::Budget => Next::Continue(Resume::default()),
            Op::Collect => {
                let all: Vec<Arc<G>> = self.allgs.all();
                // SAFETY: this M owns g, an interpreted goroutine.
                unsafe { self.engine.collect(&all) };
                Next::Continue(Resume::default())
            }
            Op::Fault(f) => self.fault(g, f),
            Op::Print(text) => {
                m.writing.store(true, Ordering::Relaxed);
                self.out.write_bytes(text.as_bytes());
                m.writing.store(false, Ordering::Relaxed);
                if self.out.closed() {
                    // Nobody reads the output any more: the run ends (the
                    // CLI then ends quietly, as a closed pipe would end a
                    // C or Go program).
                    self.finish(Outcome {
                        status: 1,
                        stderr: String::new(),
                    });
                    return Next::Gone;
                }
                self.continue_or_preempt(g, Resume::default())
            }
            Op::New(n) => self.serve_new(g, n),
            Op::Spawn { func, args } => {
                self.spawn(func, args, p);
                self.continue_or_preempt(g, Resume::default())
            }
            Op::Yield => Next::Yield,
            Op::Gc => self.serve_gc(g),
            Op::SetGcPercent(percent) => self.serve_set_gc_percent(g, percent),
            Op::Sleep(us) => {
                if us <= 0 {
                    return self.continue_or_preempt(g, Resume::default());
                }
                // Saturating: `sleep 9223372036854775807` sleeps for ever,
                // it does not wrap round to now.
                let when = deadline_after_us(us);
                // Park first: the timer may fire at once.
                self.parking(g, WaitReason::Sleep);
                self.timers.add(when, Action::Wake(g.clone()));
                Next::Park(WaitReason::Sleep)
            }
            Op::Now => self.value(g, monotonic_nanos()),
            Op::Procs => self.value(g, self.ps.len() as u64),
            Op::LockThread => {
                g.lock_depth.fetch_add(1, Ordering::AcqRel);
                g.locked_m.store(m.id as u64, Ordering::Release);
                m.locked.store(true, Ordering::Release);
                self.continue_or_preempt(g, Resume::default())
            }
            Op::UnlockThread => {
                self.unlock_thread(m, g, false);
                self.continue_or_preempt(g, Resume::default())
            }
            Op::MakeChan(cap) => {
                if cap < 0 {
                    return self.fault(g, Fault::NegativeChanSize(cap));
                }
                let Some((id, _)) = self.chans.make(cap as usize) else {
                    return self.too_many_chans(g);
                };
                // SAFETY: this M owns g.
                let r = unsafe { self.engine.complete_chan(g, id) };
                self.continue_or_preempt(g, r)
            }
            Op::After(us) => {
                let Some((id, c)) = self.chans.make(1) else {
                    return self.too_many_chans(g);
                };
                let c = c.clone();
                self.timers.add(deadline_after_us(us), Action::Send(c));
                // SAFETY: this M owns g.
                let r = unsafe { self.engine.complete_chan(g, id) };
                self.continue_or_preempt(g, r)
            }
            Op::Send(c, v) => {
                let Some(ch) = self.chans.get(c) else {
                    return self.no_chan(g, c);
                };
                let step = ch.send(g, v, wakes, || self.parking(g, WaitReason::ChanSend));
                self.after_chan_op(g, p, step, wakes, WaitReason::ChanSend)
            }
            Op::Recv(c) => {
                let Some(ch) = self.chans.get(c) else {
                    return self.no_chan(g, c);
                };
                let step = ch.recv(g, wakes, || self.parking(g, WaitReason::ChanReceive));
                self.after_chan_op(g, p, step, wakes, WaitReason::ChanReceive)
            }
            Op::Close(c) => {
                let Some(ch) = self.chans.get(c) else {
                    return self.no_chan(g, c);
                };
                let step = ch.close(wakes);
                self.after_chan_op(g, p, step, wakes, WaitReason::None)
            }
            Op::Notify(c) => {
                lock(&self.notify).push(c);
                self.continue_or_preempt(g, Resume::default())
            }
            Op::Select(arms) => self.select(m, g, p, &arms, wakes),
            Op::CCall(f, arg) => self.foreign_call(m, g, f, arg),
        }
    }

    pub(super) fn after_chan_op(
        &self,
        g: &G,
        p: Option<usize>,
        step: Step,
        wakes: &mut Vec<Wake>,
        reason: WaitReason,
    ) -> Next {
        self.wake_all(wakes, p);
        match step {
            Step::Done(v) => self.value(g, v as u64),
            Step::Panic(f) => self.fault(g, f),
            Step::Park => Next::Park(reason),
        }
    }

    pub(super) fn select(
        &self,
        m: &M,
        g: &Arc<G>,
        p: Option<usize>,
        arms: &[SelectCase],
        wakes: &mut Vec<Wake>,
    ) -> Next {
        let mut resolved = Vec::with_capacity(arms.len());
        for a in arms {
            let c = match *a {
                SelectCase::Recv(c) | SelectCase::Send(c, _) => c,
                SelectCase::Default => {
                    resolved.push(Case::Default);
                    continue;
                }
            };
            let Some(ch) = self.chans.get(c) else {
                return self.no_chan(g, c);
            };
            resolved.push(match *a {
                SelectCase::Send(_, v) => Case::Send(ch.clone(), v),
                _ => Case::Recv(ch.clone()),
            });
        }
        // Go polls the arms in a random order, so no ready arm starves.
        let mut order: Vec<usize> = (0..arms.len()).collect();
        for i in (1..order.len()).rev() {
            let j = (m.random() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let park = |token| {
            {
                let mut w = lock(&g.wait);
                w.select_token = Some(token);
                w.select_chans = resolved
                    .iter()
                    .filter_map(|a| match a {
                        Case::Recv(c) | Case::Send(c, _) => Some(c.clone()),
                        Case::Default => None,
                    })
                    .collect();
            }
            g.in_select.store(true, Ordering::Release);
            self.parking(g, WaitReason::Select);
        };
        let step = chan::select(g, &resolved, &order, wakes, park);
        self.wake_all(wakes, p);
        match step {
            SelectStep::Park => Next::Park(WaitReason::Select),
            SelectStep::Done { arm, value } => self.continue_or_preempt(
                g,
                Resume {
                    value: Some(value as u64),
                    arm: Some(arm),
                    fault: None,
                },
            ),
            SelectStep::Panic(f) => self.fault(g, f),
        }
    }

    pub(super) fn too_many_chans(&self, g: &G) -> Next {
        self.fault(g, Fault::OutOfMemory)
    }

    /// A runtime call named a channel that does not exist: only a
    /// corrupted register can do that, as chans are never nil.
    pub(super) fn no_chan(&self, g: &G, c: ChanRef) -> Next {
        self.fault(g, Fault::Panic(format!("internal error: no channel {c}")))
    }

    /// After a parked select resumes: drops its waiters from the channels
    /// of the arms that did not fire.
    pub(super) fn forget_select(&self, g: &G) {
        if !g.in_select.load(Ordering::Acquire) {
            return;
        }
        g.in_select.store(false, Ordering::Release);
        let (token, chans) = {
            let mut w = lock(&g.wait);
            (w.select_token.take(), std::mem::take(&mut w.select_chans))
        };
        if let Some(t) = token {
            for ch in chans {
                ch.forget(&t);
            }
        }
    }

    pub(super) fn unlock_thread(&self, m: &M, g: &G, all: bool) {
        let depth = if all {
            g.lock_depth.swap(0, Ordering::AcqRel)
        } else {
            g.lock_depth
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                    Some(d.saturating_sub(1))
                })
                .unwrap_or(0)
        };
        if depth <= 1 || all {
            g.locked_m.store(NO_M, Ordering::Release);
            m.locked.store(false, Ordering::Release);
        }
    }

    /// Foreign code runs on this thread, outside the scheduler's control:
    /// the P stays with the M but may be retaken by the monitor.
    pub(super) fn foreign_call(&self, m: &Arc<M>, g: &Arc<G>, f: ForeignFn, arg: i64) -> Next {
        self.obs.stats.sched.foreign_call();
        let blocking = matches!(f, ForeignFn::Sleep | ForeignFn::Spin);
        if !blocking {
            crate::ffi::signal_call(self.cfg.mode, self.cfg.preempt_signal, f);
            return self.continue_or_preempt(g, Resume::default());
        }
        let p = m.p().expect("a running M holds a P");
        *lock(&m.in_foreign) = Some(f);
        let start = monotonic_nanos();
        self.ps[p].foreign_since.store(start, Ordering::Release);
        self.ps[p].set_status(PStatus::InForeign);
        self.end_slice(p, g, || "foreign call");
        // The monitor must see the call in time to hand the P on (Go's
        // entersyscall wakes only a monitor in its deep sleep: `--sched go`).
        self.sysmon.foreign_entered(start + sysmon::RETAKE_AFTER);
        crate::ffi::run(f, arg);
        self.obs
            .tracer
            .foreign_call(m.id as u32, g.id, f, start, monotonic_nanos());
        *lock(&m.in_foreign) = None;
        if self.ps[p].cas_status(PStatus::InForeign, PStatus::Running) {
            // Back before the monitor took the P.
            self.begin_slice(p, g);
            return self.continue_or_preempt(g, Resume::default());
        }
        // The P went to another M: find an idle one, or queue the
        // goroutine and park this M.
        m.take_p();
        let idle = self.idle.take(&mut lock(&self.sched).pidle);
        match idle {
            Some(q) => {
                self.ps[q].set_status(PStatus::Running);
                self.ps[q].m.store(m.id, Ordering::Release);
                m.set_p(Some(q));
                self.sysmon.foreign_left();
                self.begin_slice(q, g);
                self.continue_or_preempt(g, Resume::default())
            }
            None => {
                // Queue it; whoever dequeues it hands it back here if it is
                // locked to this thread.
                g.set_status(Status::Runnable);
                lock(&self.sched).runq.push_back(g.clone());
                if !g.is_locked() {
                    self.idle_m(m);
                }
                self.wakep();
                Next::Gone
            }
        }
    }
}
