//! The two SVG plots: time-to-preempt percentiles per mechanism against
//! the signal floor, and overhead per kernel and mechanism (timed, and
//! counted when valgrind ran).

use std::path::Path;

use super::measure::{own_code, Measured};
use super::stats::pct_u64;
use crate::plot;

impl Measured {
    /// The two SVG plots.
    pub(super) fn plots(&self, latency: &Path, overhead: &Path) -> Result<(), String> {
        let mut lines: Vec<plot::Line> = self
            .ttp_hist()
            .into_iter()
            .filter_map(|(v, h)| {
                Some(plot::Line {
                    name: v.label.to_string(),
                    points: h.ok()?.points(),
                    reference: false,
                })
            })
            .collect();
        if let Ok(v) = &self.floor {
            let points = [
                0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0,
            ]
            .iter()
            .filter_map(|&p| pct_u64(v, p).map(|ns| (p, ns / 1e3)))
            .collect();
            lines.push(plot::Line {
                name: "floor (signal, 10 ms apart)".into(),
                points,
                reference: true,
            });
        }
        plot::percentiles(
            latency,
            "time-to-preempt by mechanism (procs 1, quantum 10 ms), and the signal floor",
            &lines,
        )?;
        let mut panels = vec![plot::Bars {
            title: "overhead against no preemption, timed (procs 1, quantum 10 ms)".into(),
            y_desc: "% slower".into(),
            groups: self.kernel_names().iter().map(|s| s.to_string()).collect(),
            series: self
                .available()
                .map(|v| {
                    let vals = self.timed.iter().map(|o| o.pct(v.label).ok()).collect();
                    (v.label.to_string(), vals)
                })
                .collect(),
        }];
        if self.valgrind.is_ok() {
            let names = self.counted_names();
            panels.push(plot::Bars {
                title: "overhead against no preemption, instructions (callgrind, no stop)".into(),
                y_desc: "% more instructions".into(),
                groups: names.iter().map(|s| s.to_string()).collect(),
                series: own_code()
                    .filter(|v| v.label != "coop" && self.reason(v.label).is_none())
                    .map(|v| {
                        let vals = names
                            .iter()
                            .map(|k| self.count_pct(k, v.label).ok())
                            .collect();
                        (v.label.to_string(), vals)
                    })
                    .collect(),
            });
        }
        plot::grouped_bars(overhead, &panels)
    }
}
