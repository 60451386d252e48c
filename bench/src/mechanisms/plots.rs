//! The two SVG plots: time-to-preempt percentiles per mechanism against
//! the signal floor (the floor at the mechanisms' percentiles: min, p50,
//! p90, p99, p99.9, max), and overhead per kernel and mechanism (timed,
//! with the baseline's noise band, and counted when valgrind ran). Each
//! has a footer with the run's provenance and sample counts.

use std::path::Path;

use super::measure::{own_code, Measured};
use crate::doc::marked;
use crate::plot;

/// Quartiles (25%, 50%, 75%) of `v`, linearly interpolated between the
/// nearest ranks.
pub(super) fn quartiles(v: &[f64]) -> Option<(f64, f64, f64)> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let pos = q * (s.len() - 1) as f64;
        let (i, f) = (pos.floor() as usize, pos.fract());
        s[i] + (s[(i + 1).min(s.len() - 1)] - s[i]) * f
    };
    Some((at(0.25), at(0.5), at(0.75)))
}

/// The noise band of a baseline's runs (ns), in percent around their
/// median: its interquartile range. None under four runs (no quartiles
/// worth the name).
pub(super) fn noise_band(runs: &[f64]) -> Option<(f64, f64)> {
    if runs.len() < 4 {
        return None;
    }
    let (q1, med, q3) = quartiles(runs)?;
    (med > 0.0).then(|| ((q1 / med - 1.0) * 100.0, (q3 / med - 1.0) * 100.0))
}

impl Measured {
    /// The footer of the plots: provenance, then `counts`.
    fn subtitle(&self, counts: &str) -> String {
        marked(format!("{} | {counts}", crate::run_line()), self.plan.quick)
    }

    /// The latency plot's lines (each mechanism's, then the floor's, all
    /// at the same percentiles) and their sample counts.
    pub(super) fn latency_lines(&self) -> (Vec<plot::Line>, Vec<String>) {
        let mut counts = Vec::new();
        let mut lines: Vec<plot::Line> = self
            .ttp_hist()
            .into_iter()
            .filter_map(|(v, h)| {
                let h = h.ok()?;
                counts.push(format!("{} {}", v.label, h.count));
                Some(plot::Line {
                    name: v.label.to_string(),
                    points: h.points(),
                    reference: false,
                })
            })
            .collect();
        if let Ok(h) = self.floor_hist() {
            counts.push(format!("floor {}", h.count));
            lines.push(plot::Line {
                name: "floor (signal, 10 ms apart)".into(),
                points: h.points(),
                reference: true,
            });
        }
        (lines, counts)
    }

    /// The two SVG plots.
    pub(super) fn plots(&self, latency: &Path, overhead: &Path) -> Result<(), String> {
        let (lines, counts) = self.latency_lines();
        plot::percentiles(
            latency,
            "time-to-preempt by mechanism (procs 1, quantum 10 ms), and the signal floor",
            &self.subtitle(&format!("samples: {}", counts.join(", "))),
            &lines,
        )?;
        let runs = self.plan.rounds;
        let bands: Vec<Option<plot::Span>> = self
            .timed
            .iter()
            .map(|o| noise_band(&o.none.as_ref().ok()?.ns))
            .collect();
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
            band: Some(bands)
                .filter(|b| b.iter().any(Option::is_some))
                .map(|b| ("baseline noise (IQR)".to_string(), b)),
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
                band: None,
            });
        }
        let band = if runs >= 4 {
            format!(
                "grey band: the baseline's noise, the interquartile range of its {runs} runs \
                 around their median"
            )
        } else {
            format!("no noise band: {} of the baseline", crate::runs(runs))
        };
        plot::grouped_bars(
            overhead,
            &self.subtitle(&format!(
                "each bar: fastest of {} against the baseline's fastest; {band}",
                crate::runs(runs)
            )),
            &panels,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_and_the_noise_band() {
        assert_eq!(quartiles(&[]), None);
        assert_eq!(quartiles(&[4.0, 1.0, 3.0, 2.0, 5.0]), Some((2.0, 3.0, 4.0)));
        assert_eq!(quartiles(&[1.0, 2.0]), Some((1.25, 1.5, 1.75)));
        assert_eq!(noise_band(&[100.0, 100.0, 100.0]), None);
        let (lo, hi) = noise_band(&[90.0, 95.0, 100.0, 105.0, 110.0]).unwrap();
        assert!(
            (lo + 5.0).abs() < 1e-9 && (hi - 5.0).abs() < 1e-9,
            "{lo} {hi}"
        );
    }
}
