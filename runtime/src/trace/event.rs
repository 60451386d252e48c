//! What the tracer records, and how each record is named and described in
//! the file: a fixed name per kind of event, the values in `args`.

use preempt_jit::ir::{ForeignFn, PreemptMode};
use serde_json::{json, Map, Value};

use super::{Arg, Decision, EffectChange, Handled, Names, RequestEnd, RunEnd, Stop, Track};
use crate::stats::PreemptKind;

/// What happened; formatted into a name and args only when writing.
#[derive(Clone, Debug)]
pub(super) enum What {
    Run {
        g: u64,
        func: u32,
        end: RunEnd,
    },
    Foreign {
        g: u64,
        f: ForeignFn,
    },
    Span {
        name: &'static str,
        args: Box<[(&'static str, Arg)]>,
    },
    Instant {
        name: &'static str,
        args: Box<[(&'static str, Arg)]>,
    },
    Request {
        g: u64,
        p: Option<u32>,
        kind: PreemptKind,
        mech: PreemptMode,
    },
    Rerequest {
        g: u64,
        requested_at: u64,
        why: &'static str,
    },
    RequestEnded {
        g: u64,
        requested_at: u64,
        kind: PreemptKind,
        end: RequestEnd,
    },
    Signal {
        g: u64,
        m: u32,
        p: u32,
        signo: i32,
    },
    Handler(Decision),
    Effect(EffectChange),
    Stopped(Stop),
    World {
        name: &'static str,
        why: &'static str,
    },
    GcCycle {
        n: u64,
    },
    GcPhase {
        n: u64,
        name: &'static str,
    },
    Handoff {
        p: u32,
        from_m: u32,
        to_m: u32,
    },
    ThreadCreated {
        m: u32,
        tid: i32,
    },
}

/// One recorded event: `dur` is `Some` for complete events.
#[derive(Clone, Debug)]
pub(super) struct Event {
    pub ts: u64,
    pub dur: Option<u64>,
    pub track: Track,
    pub what: What,
}

/// Where an event stands in the life of a request `(g, requested_at)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Link {
    /// Made (the requester's copy of the event).
    Begin,
    /// Applied again.
    Step,
    /// Its goroutine stopped for it (the M's copy).
    Stopped,
    /// Ended otherwise.
    Ended,
}

impl Event {
    /// The request this event belongs to and its part in it, counting
    /// each event once (on the track its link is drawn from).
    pub(super) fn link(&self) -> Option<((u64, u64), Link)> {
        match (&self.what, self.track) {
            (What::Request { g, .. }, Track::Runtime) => Some(((*g, self.ts), Link::Begin)),
            (
                What::Rerequest {
                    g, requested_at, ..
                },
                Track::Runtime,
            ) => Some(((*g, *requested_at), Link::Step)),
            (What::Stopped(s), Track::M(_)) => Some(((s.g, s.requested_at), Link::Stopped)),
            (
                What::RequestEnded {
                    g, requested_at, ..
                },
                Track::G(_),
            ) => Some(((*g, *requested_at), Link::Ended)),
            _ => None,
        }
    }

    /// The name, category and args written for this event.
    pub(super) fn describe(&self, names: &Names) -> (String, &'static str, Value) {
        let pc_args = |args: &mut Value, key: &str, pc: usize| {
            args[key] = json!(format!("{pc:#x}"));
            if let Some((f, off)) = names.locate(pc) {
                args["function"] = json!(f);
                args["offset"] = json!(format!("{off:#x}"));
            }
        };
        match &self.what {
            What::Run { g, func, end } => {
                let function = names.function(*func);
                let mut args = json!({ "g": g, "function": function, "end": end.name() });
                match end {
                    RunEnd::Preempted(m) => args["mechanism"] = json!(m.name()),
                    RunEnd::Blocked(b) => args["blocked_on"] = json!(b.name()),
                    _ => {}
                }
                (function, "goroutine", args)
            }
            What::Foreign { g, f } => (
                format!("ccall {}", f.name()),
                "foreign",
                json!({ "g": g, "function": f.name() }),
            ),
            What::Span { name, args } | What::Instant { name, args } => {
                let map: Map<String, Value> = args
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Arg::Int(i) => json!(i),
                            Arg::Str(s) => json!(s),
                        };
                        (k.to_string(), v)
                    })
                    .collect();
                (name.to_string(), "runtime", Value::Object(map))
            }
            What::Request { g, p, kind, mech } => (
                "preempt request".into(),
                "preempt",
                json!({ "g": g, "p": p, "reason": kind.name(), "mechanism": mech.name() }),
            ),
            What::Rerequest { g, why, .. } => (
                "re-request".into(),
                "preempt",
                json!({ "g": g, "why": why }),
            ),
            What::RequestEnded {
                g,
                requested_at,
                kind,
                end,
            } => {
                let mut args = json!({
                    "g": g,
                    "reason": kind.name(),
                    "outcome": end.name(),
                    "after_ns": self.ts.saturating_sub(*requested_at),
                });
                if let RequestEnd::SliceEnded(at) = end {
                    args["slice_end"] = json!(at);
                }
                ("request ended".into(), "preempt", args)
            }
            What::Signal { g, m, p, signo } => (
                "signal sent".into(),
                "preempt",
                json!({ "g": g, "m": m, "p": p, "signal": signo }),
            ),
            What::Handler(d) => {
                let (name, mut args) = match d.handled {
                    Handled::Redirect { resume_pc } => (
                        "handler redirect",
                        json!({ "resume_pc": format!("{resume_pc:#x}") }),
                    ),
                    Handled::Decline(reason) => ("handler decline", json!({ "reason": reason })),
                    Handled::Stale => ("handler stale", json!({ "reason": "no request pending" })),
                };
                args["g"] = json!(d.g);
                args["m"] = json!(d.m);
                args["trigger"] = json!(d.trigger.name());
                pc_args(&mut args, "pc", d.pc);
                (name.into(), "preempt", args)
            }
            What::Effect(e) => {
                let mut args = json!({
                    "g": e.g,
                    "mechanism": e.mech.name(),
                    "effect": e.effect,
                    "again": e.again,
                    "cost_ns": e.cost_ns,
                });
                if let Some(f) = e.function {
                    args["function"] = json!(names.function(f));
                }
                let name = if e.arm { "arm" } else { "disarm" };
                (name.into(), "preempt", args)
            }
            What::Stopped(s) => {
                let mut args = json!({
                    "g": s.g,
                    "m": s.m,
                    "p": s.p,
                    "mechanism": s.mech.name(),
                    "reason": s.kind.name(),
                    "latency_ns": s.at.saturating_sub(s.requested_at),
                });
                if let Some(pc) = s.pc {
                    pc_args(&mut args, "pc", pc);
                }
                ("preempted".into(), "preempt", args)
            }
            What::World { name, why } => (name.to_string(), "gc", json!({ "why": why })),
            What::GcCycle { n } => ("GC cycle".into(), "gc", json!({ "cycle": n })),
            What::GcPhase { n, name } => (name.to_string(), "gc", json!({ "cycle": n })),
            What::Handoff { p, from_m, to_m } => (
                "hand-off".into(),
                "handoff",
                json!({ "p": p, "from_m": from_m, "to_m": to_m, "reason": "M in foreign code" }),
            ),
            What::ThreadCreated { m, tid } => (
                "thread created".into(),
                "thread",
                json!({ "m": m, "tid": tid }),
            ),
        }
    }
}
