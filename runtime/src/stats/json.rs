//! `--stats-json`: the statistics for tools, every key without spaces
//! ([`json_key`]), durations in nanoseconds.

use std::collections::BTreeMap;

use preempt_jit::ir::PreemptMode;
use serde_json::{json, Map, Value};

use super::{Matrix, PreemptKind, Stats};

/// `name` as a JSON key: lower case, every run of characters other than
/// `a-z0-9./` one `_`, none at either end, apostrophes dropped:
/// `time-to-preempt (async)` is `time_to_preempt_async`, `gc cycles` is
/// `gc_cycles`.
pub fn json_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        if c == '\'' {
            continue;
        }
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '/') {
            if gap && !out.is_empty() && !out.ends_with('/') && c != '/' {
                out.push('_');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    out
}

fn keyed(m: BTreeMap<&'static str, u64>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in m {
        // Two names may meet in one key; their counts add up.
        let slot = out.entry(json_key(k)).or_insert(json!(0));
        *slot = json!(slot.as_u64().unwrap_or(0) + v);
    }
    out
}

impl Matrix {
    fn to_json(&self) -> Value {
        let by_kind: Map<String, Value> = PreemptKind::ALL
            .iter()
            .map(|&k| (json_key(k.name()), json!(self.by_kind(k))))
            .collect();
        let by_mech: Map<String, Value> = PreemptMode::ALL
            .iter()
            .map(|&m| (json_key(m.name()), json!(self.by_mech(m))))
            .collect();
        json!({
            "total": self.total(),
            "by_kind": by_kind,
            "by_mechanism": by_mech,
        })
    }
}

impl Stats {
    /// The same figures as `--stats` for tools: counters, and each
    /// histogram's count and percentiles (ns) under its [`json_key`].
    /// (`--stats-json` adds the run's settings, provenance and the full
    /// histograms around this.)
    pub fn to_json(&self) -> Value {
        let c = self.counters();
        let histograms: Map<String, Value> = self
            .lock()
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(name, h)| {
                (
                    json_key(name),
                    json!({
                        "count": h.len(),
                        "min_ns": h.min(),
                        "mean_ns": h.mean(),
                        "p50_ns": h.value_at_percentile(50.0),
                        "p90_ns": h.value_at_percentile(90.0),
                        "p99_ns": h.value_at_percentile(99.0),
                        "p99_9_ns": h.value_at_percentile(99.9),
                        "max_ns": h.max(),
                    }),
                )
            })
            .collect();
        json!({
            "context_switches": c.context_switches,
            "goroutines_created": c.goroutines_created,
            "threads_created": c.threads_created,
            "handoffs": c.handoffs,
            "foreign_calls": c.foreign_calls,
            "signals_sent": c.signals_sent,
            "re_requests": c.re_requests,
            "preempt_requests": self.requests.to_json(),
            "preemptions": self.preemptions.to_json(),
            "retries": keyed(self.retries()),
            "counts": keyed(self.counts()),
            "histograms": histograms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_no_spaces() {
        assert_eq!(json_key("time-to-preempt (async)"), "time_to_preempt_async");
        assert_eq!(
            json_key("time-to-preempt (async): request to handler"),
            "time_to_preempt_async_request_to_handler"
        );
        assert_eq!(
            json_key("stop-the-world: the stopper's own P"),
            "stop_the_world_the_stoppers_own_p"
        );
        assert_eq!(json_key("gc cycles"), "gc_cycles");
        assert_eq!(json_key("  unsafe: write barrier "), "unsafe_write_barrier");
        assert_eq!(json_key("sum / jit"), "sum/jit");
        assert_eq!(json_key("p99.9"), "p99.9");
    }
}
