//! The scheduler without threads or JIT code: a runtime over the
//! interpreter whose Ps the test holds (none idle, so nothing starts a
//! worker thread), driven by calling what its Ms would call.

use super::*;
use crate::preempt::request::Phase;

/// A runtime for `procs` Ps running an empty program on the interpreter,
/// with every P held (running) by no thread at all.
fn runtime(procs: usize) -> Arc<Runtime> {
    let mut prog = preempt_jit::ir::parse("func @main() {\n    ret\n}\n").expect("parses");
    preempt_jit::ir::verify(&mut prog).expect("verifies");
    let icfg = preempt_jit::interp::InterpConfig::for_program(&prog);
    let engine = Engine::Interp {
        interp: Box::new(Mutex::new(
            Interp::new(&prog, &icfg).expect("an interpreter"),
        )),
        position: Arc::new(AtomicU64::new(u64::MAX)),
        names: Box::new(preempt_jit::module::Names::new(&prog)),
        turns: Box::default(),
        stop_at: preempt_jit::interp::StopAt::FunctionEntry,
    };
    let cfg = RunConfig {
        procs,
        mode: PreemptMode::Coop,
        ..RunConfig::default()
    };
    let arming = crate::preempt::effect::Arming::new(cfg.mode, cfg.trap_arm, None)
        .expect("coop arms the guard alone");
    let (out, _) = Output::capture();
    let rt = Arc::new(Runtime::new(cfg, Observers::default(), engine, out, arming));
    let held = rt.idle.take_all(&mut lock(&rt.sched).pidle);
    assert_eq!(held.len(), procs);
    for p in held {
        rt.ps[p].set_status(PStatus::Running);
    }
    rt
}

/// A runtime whose Ps are all idle (as after every M parked), with one
/// goroutine runnable but not queued, so that no check finds the program
/// dead.
fn idle_runtime(procs: usize) -> Arc<Runtime> {
    let rt = runtime(procs);
    {
        let mut s = lock(&rt.sched);
        for p in 0..procs {
            rt.ps[p].set_status(PStatus::Idle);
            rt.idle.idled(&mut s.pidle, p);
        }
    }
    goroutine(&rt, 99).set_status(Status::Runnable);
    rt
}

/// An M with no P and no thread, parked on the idle list.
fn idle_m(rt: &Runtime) -> Arc<M> {
    let m = {
        let mut ms = lock(&rt.ms);
        let m = Arc::new(M::new(ms.len()));
        ms.push(m.clone());
        m
    };
    rt.idle_m(&m);
    m
}

/// An M holding P `p`, known to the runtime but with no thread.
fn m_on(rt: &Runtime, p: usize) -> Arc<M> {
    let mut ms = lock(&rt.ms);
    let m = Arc::new(M::new(ms.len()));
    m.set_p(Some(p));
    rt.ps[p].m.store(m.id, Ordering::Release);
    ms.push(m.clone());
    m
}

/// A goroutine the runtime knows (in `allgs`), not yet queued.
fn goroutine(rt: &Runtime, id: u64) -> Arc<G> {
    let g = rt.allgs.register(G::detached_record(id));
    g.set_status(Status::Waiting);
    g
}

fn ids(gs: impl IntoIterator<Item = Arc<G>>) -> Vec<u64> {
    gs.into_iter().map(|g| g.id).collect()
}

/// What P `p`'s M finds, look after look, until it finds nothing.
fn drain(rt: &Runtime, m: &Arc<M>, p: usize) -> Vec<u64> {
    ids(std::iter::from_fn(|| rt.find_runnable(m, p)))
}

fn outcome(rt: &Runtime) -> Option<Outcome> {
    lock(&rt.outcome).clone()
}

#[test]
fn a_goroutine_readied_on_a_p_runs_next_and_displaces_the_one_before() {
    let rt = runtime(1);
    let m = m_on(&rt, 0);
    let (a, b, c) = (goroutine(&rt, 1), goroutine(&rt, 2), goroutine(&rt, 3));
    rt.ready(a, Some(0));
    rt.ready(b, Some(0));
    rt.ready(c.clone(), None);
    assert_eq!(c.status(), Status::Runnable);
    assert_eq!(rt.ps[0].queued(), 2, "b in runnext, a in the ring");
    assert_eq!(lock(&rt.sched).runq.len(), 1, "c in the global queue");
    // runnext, then the ring, then the global queue.
    assert_eq!(drain(&rt, &m, 0), [2, 1, 3]);
}

#[test]
fn the_global_queue_is_not_starved_by_a_busy_p() {
    let rt = runtime(1);
    let m = m_on(&rt, 0);
    rt.ready(goroutine(&rt, 1000), None);
    let mut order = Vec::new();
    for look in 0..queues::FAIRNESS_TICK {
        // The P always has local work: its running goroutine keeps
        // readying another, as a ping-pong does.
        rt.ready(goroutine(&rt, look + 1), Some(0));
        order.push(rt.find_runnable(&m, 0).expect("work").id);
    }
    let at = order.iter().position(|&id| id == 1000);
    assert_eq!(at, Some(queues::FAIRNESS_TICK as usize - 1), "{order:?}");
}

#[test]
fn an_m_with_nothing_local_takes_a_share_of_the_global_queue() {
    let rt = runtime(2);
    let m = m_on(&rt, 0);
    let _other = m_on(&rt, 1);
    for id in 1..=9 {
        rt.ready(goroutine(&rt, id), None);
    }
    assert_eq!(rt.find_runnable(&m, 0).map(|g| g.id), Some(1));
    // 8 left, 2 Ps: a share of 4 came along into P0's ring.
    assert_eq!(rt.ps[0].queued(), 4);
    assert_eq!(lock(&rt.sched).runq.len(), 4);
}

#[test]
fn an_m_with_nothing_anywhere_else_steals_half_of_another_ps_ring() {
    let rt = runtime(2);
    let m = m_on(&rt, 0);
    let _other = m_on(&rt, 1);
    for id in 1..=4 {
        let g = goroutine(&rt, id);
        g.set_status(Status::Runnable);
        rt.ps[1].q.push(g, |_| panic!("room"));
    }
    assert_eq!(rt.find_runnable(&m, 0).map(|g| g.id), Some(1));
    assert_eq!(rt.ps[0].queued(), 1, "2 stolen: one runs, one kept");
    assert_eq!(rt.ps[1].queued(), 2);
}

#[test]
fn an_m_that_finds_nothing_gives_its_p_up_and_the_last_idle_p_finds_the_deadlock() {
    let rt = runtime(2);
    let (m0, m1) = (m_on(&rt, 0), m_on(&rt, 1));
    let parked = goroutine(&rt, 1);
    parked.set_reason(WaitReason::ChanReceive);
    assert!(rt.find_runnable(&m0, 0).is_none());
    assert_eq!(rt.ps[0].status(), PStatus::Idle);
    assert_eq!(m0.p(), None);
    assert!(outcome(&rt).is_none(), "P1 is still running: not dead");
    assert!(rt.find_runnable(&m1, 1).is_none());
    let o = outcome(&rt).expect("every P idle, one goroutine parked: a deadlock");
    assert_eq!(o.status, 1);
    assert!(
        o.stderr
            .contains("fatal error: all goroutines are asleep - deadlock!"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("goroutine 1 [chan receive]"),
        "{}",
        o.stderr
    );
}

#[test]
fn no_deadlock_while_a_timer_is_pending_or_a_goroutine_is_runnable() {
    let rt = runtime(1);
    let m = m_on(&rt, 0);
    let g = goroutine(&rt, 1);
    rt.timers
        .add(u64::MAX, crate::timer::Action::Wake(g.clone()));
    assert!(rt.find_runnable(&m, 0).is_none());
    assert_eq!(rt.idle.npidle(), 1);
    assert!(outcome(&rt).is_none(), "a timer will wake the goroutine");

    let rt = runtime(1);
    let m = m_on(&rt, 0);
    // Runnable but in no queue of this P: readied by someone who has not
    // queued it yet (a timer firing, a foreign call returning).
    goroutine(&rt, 1).set_status(Status::Runnable);
    assert!(rt.find_runnable(&m, 0).is_none());
    assert_eq!(rt.idle.npidle(), 1);
    assert!(outcome(&rt).is_none(), "a runnable goroutine is not asleep");
}

#[test]
fn a_slice_numbers_itself_and_its_end_withdraws_its_request() {
    let rt = runtime(1);
    let g = goroutine(&rt, 1);
    let p = &rt.ps[0];
    let before = p.slice_seq.load(Ordering::Acquire);
    assert_eq!(before % 2, 0, "even between slices");
    rt.begin_slice(0, &g);
    let seq = p.slice_seq.load(Ordering::Acquire);
    assert_eq!(seq, before + 1, "odd while a slice runs");
    assert_eq!(p.current.load(Ordering::Acquire), 1);
    let asked = rt.preempt(p, &g, seq, PreemptKind::Quantum, 0);
    assert!(matches!(asked, Asked::Armed(_)), "{asked:?}");
    assert_eq!(g.stop.load().0, Phase::Armed);
    let withdrawn = rt.end_slice(0, &g, || "yield");
    assert!(withdrawn.is_some(), "the slice's request is withdrawn (E1)");
    assert_eq!(g.stop.load().0, Phase::Idle);
    assert_eq!(p.slice_seq.load(Ordering::Acquire), before + 2);
    assert_eq!(p.current.load(Ordering::Acquire), 0);
    // A request for the slice that ended is stale: nothing applied.
    let late = rt.preempt(p, &g, seq, PreemptKind::Quantum, 0);
    assert!(matches!(late, Asked::Stale), "{late:?}");
    assert_eq!(g.stop.load().0, Phase::Idle);
}

#[test]
fn a_p_retaken_from_foreign_code_goes_to_an_idle_m_if_there_is_work_else_idle() {
    let rt = runtime(1);
    let m = m_on(&rt, 0);
    // The M went into foreign code holding P0.
    rt.ps[0].set_status(PStatus::InForeign);
    assert!(rt.retake(0));
    assert_eq!(rt.ps[0].status(), PStatus::Idle, "no work: idle");
    assert!(!rt.retake(0), "only a P in foreign code is retaken");
    drop(m);

    let rt = runtime(1);
    let _m = m_on(&rt, 0);
    let spare = idle_m(&rt);
    rt.ps[0].set_status(PStatus::InForeign);
    rt.ps[0].q.push(goroutine(&rt, 7), |_| panic!("room"));
    assert!(rt.retake(0));
    assert_eq!(rt.ps[0].status(), PStatus::Running, "work: handed off");
    assert_eq!(rt.ps[0].m.load(Ordering::Acquire), spare.id);
    assert_eq!(lock(&spare.handoff).p, Some(0), "the idle M is given P0");
}

fn statuses(rt: &Runtime) -> Vec<PStatus> {
    rt.ps.iter().map(P::status).collect()
}

#[test]
fn stopping_the_world_stops_every_p_and_starting_it_idles_those_without_work() {
    let rt = idle_runtime(2);
    let seen = Arc::new(Mutex::new(None));
    let s2 = seen.clone();
    let work: stw::StopWork = Arc::new(move |rt: &Runtime| {
        *lock(&s2) = Some((statuses(rt), rt.world.is_stopping()));
        true
    });
    assert!(rt.with_world_stopped("test stop (mark start)", work));
    assert_eq!(
        lock(&seen).clone(),
        Some((vec![PStatus::Stopped; 2], true)),
        "the work runs with every P stopped"
    );
    assert_eq!(statuses(&rt), [PStatus::Idle; 2]);
    assert_eq!(rt.idle.npidle(), 2);
    assert!(!rt.world.is_stopping());
    assert!(rt.world.current().is_none());
    assert!(outcome(&rt).is_none());
}

#[test]
fn a_p_in_foreign_code_stops_at_once_and_restarts_on_an_idle_m_if_it_has_work() {
    let rt = idle_runtime(2);
    // One P is held by an M in foreign code, with a goroutine queued.
    let p = lock(&rt.sched).pidle.last().copied().expect("an idle P");
    assert_eq!(rt.idle.take(&mut lock(&rt.sched).pidle), Some(p));
    let other = 1 - p;
    let _caller = m_on(&rt, p);
    rt.ps[p].set_status(PStatus::InForeign);
    rt.ps[p].q.push(goroutine(&rt, 5), |_| panic!("room"));
    let spare = idle_m(&rt);
    let work: stw::StopWork =
        Arc::new(|rt: &Runtime| statuses(rt) == [PStatus::Stopped, PStatus::Stopped]);
    assert!(rt.with_world_stopped("test stop (mark termination)", work));
    assert_eq!(rt.ps[p].status(), PStatus::Running);
    assert_eq!(rt.ps[other].status(), PStatus::Idle);
    assert_eq!(rt.ps[p].m.load(Ordering::Acquire), spare.id);
    assert_eq!(
        lock(&spare.handoff).p,
        Some(p),
        "the P and its work go to the idle M"
    );
}
