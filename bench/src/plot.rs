//! SVG plots of benchmark figures, drawn with `plotters`' SVG backend and
//! no font backend: the SVG carries its text as `<text>` elements that the
//! viewer lays out, so nothing here needs fontconfig or a font file (the
//! layout's text widths are plotters' estimate, close enough for labels).
//!
//! - [`percentiles`]: latency against percentile (0%, 50%, 90%, 99%,
//!   99.9%, max equally spaced), log-scaled latency, one line per series:
//!   the shape HdrHistogram's percentile plots have, where the tail is as
//!   wide as the body.
//! - [`grouped_bars`]: one or more panels of bars grouped by category
//!   (one bar per series in each group), values may be negative, with a
//!   grey band per group where the panel has one (the baseline's noise).
//!
//! Every plot carries a footer (`subtitle`): the run's provenance (preempt's
//! version, the date, the machine), its sample counts, and the `--quick`
//! mark when the run was one.

use std::path::Path;

use plotters::prelude::*;

/// The labelled percentiles of the latency axis, equally spaced: 0%,
/// 50%, 90%, 99%, 99.9% and the maximum at 0, 1, ..., 5.
const PERCENTILE_TICKS: [(f64, &str); 6] = [
    (0.0, "0%"),
    (50.0, "50%"),
    (90.0, "90%"),
    (99.0, "99%"),
    (99.9, "99.9%"),
    (100.0, "max"),
];

/// Where the maximum sits on the percentile axis.
pub const MAX_X: f64 = 5.0;

/// Position of percentile `p` (0..=100) on the percentile axis: the
/// labelled percentiles at 0, 1, ..., 5, and between two of them linear
/// in "nines" (`-log10(1 - p/100)`), so the tail gets as much room as the
/// body, as in HdrHistogram's percentile plots.
pub fn percentile_x(p: f64) -> f64 {
    let nines = |p: f64| -(1.0 - p / 100.0).log10();
    let p = p.clamp(0.0, 100.0);
    for (i, w) in PERCENTILE_TICKS.windows(2).enumerate() {
        let ((lo, _), (hi, _)) = (w[0], w[1]);
        if p <= hi {
            if hi >= 100.0 {
                // Between 99.9% and the maximum: no scale, a straight run.
                return if p >= 100.0 {
                    MAX_X
                } else {
                    i as f64 + (p - lo) / (hi - lo)
                };
            }
            return i as f64 + (nines(p) - nines(lo)) / (nines(hi) - nines(lo));
        }
    }
    MAX_X
}

/// The label of a tick at `x` on the percentile axis, or "" between the
/// labelled positions.
fn percentile_label(x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    PERCENTILE_TICKS
        .get(i as usize)
        .map(|(_, l)| l.to_string())
        .unwrap_or_default()
}

/// A series' colour, by name, so every plot of the suite draws a mode
/// in the same colour.
pub fn colour(name: &str) -> RGBColor {
    let name = name.split_whitespace().next().unwrap_or(name);
    match name {
        "trap/mprotect" => RGBColor(214, 39, 40),
        "coop" => RGBColor(127, 127, 127),
        "async" => RGBColor(31, 119, 180),
        "poll" => RGBColor(44, 160, 44),
        "trap" => RGBColor(255, 127, 14),
        "patch" => RGBColor(148, 103, 189),
        "floor" | "signal" => RGBColor(0, 0, 0),
        _ => RGBColor(140, 86, 75),
    }
}

/// One line of a percentile plot: (percentile 0..=100, latency in us).
#[derive(Clone, Debug)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed-looking (thinner, lighter): references such as the
    /// signal floor.
    pub reference: bool,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The height of the footer under each plot.
const FOOTER: u32 = 44;

/// Splits `root` into the plot's area and its footer, and writes
/// `subtitle` there (at most two lines, split at " | " when long).
fn footer<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    subtitle: &str,
) -> Result<DrawingArea<DB, plotters::coord::Shift>, String>
where
    DB::ErrorType: 'static,
{
    let (_, h) = root.dim_in_pixel();
    let (main, foot) = root.split_vertically(h.saturating_sub(FOOTER));
    let style = ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90));
    let lines: Vec<String> = match subtitle.split_once(" | ") {
        Some((a, b)) if subtitle.len() > 130 => vec![a.to_string(), b.to_string()],
        _ => vec![subtitle.to_string()],
    };
    for (i, l) in lines.iter().enumerate() {
        foot.draw(&Text::new(
            l.clone(),
            (12, 6 + 17 * i as i32),
            style.clone(),
        ))
        .map_err(err)?;
    }
    Ok(main)
}

/// Draws latency percentiles of each line to an SVG at `path`, with
/// `subtitle` (provenance, counts) under it.
pub fn percentiles(path: &Path, title: &str, subtitle: &str, lines: &[Line]) -> Result<(), String> {
    let ys: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite() && *y > 0.0)
        .collect();
    let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ys.iter().copied().fold(0.0f64, f64::max);
    let (lo, hi) = if ys.is_empty() {
        (1.0, 10.0)
    } else {
        (lo / 1.5, hi * 1.5)
    };
    let svg = SVGBackend::new(path, (1000, 560 + FOOTER)).into_drawing_area();
    svg.fill(&WHITE).map_err(err)?;
    let root = footer(&svg, subtitle)?;
    let entries: Vec<(String, RGBColor, Swatch)> = lines
        .iter()
        .filter(|l| !l.points.is_empty())
        .map(|l| (l.name.clone(), colour(&l.name), Swatch::Line))
        .collect();
    let area = with_legend(&root, &entries)?;
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.05..MAX_X + 0.05, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(242, 242, 242))
        .x_labels(PERCENTILE_TICKS.len())
        .x_label_formatter(&|x| percentile_label(*x))
        .x_desc("percentile")
        .y_desc("latency (us, log scale)")
        .y_label_formatter(&|y| {
            if *y >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        })
        .draw()
        .map_err(err)?;
    if ys.is_empty() {
        root.draw(&Text::new(
            "nothing measured",
            (380, 280),
            ("sans-serif", 18).into_font(),
        ))
        .map_err(err)?;
    }
    for l in lines {
        let pts: Vec<(f64, f64)> = l
            .points
            .iter()
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .map(|&(p, y)| (percentile_x(p), y))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let c = colour(&l.name);
        let style = if l.reference {
            c.mix(0.6).stroke_width(1)
        } else {
            c.stroke_width(2)
        };
        chart
            .draw_series(LineSeries::new(pts.clone(), style))
            .map_err(err)?;
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(err)?;
    }
    svg.present().map_err(err)?;
    Ok(())
}

/// How a legend entry shows its series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Swatch {
    Line,
    Block,
    /// A light block: a band behind the data.
    Band,
}

/// Draws a legend in a column at the right of `area`, where no data can
/// hide under it, and returns the rest of `area` for the chart.
fn with_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(String, RGBColor, Swatch)],
) -> Result<DrawingArea<DB, plotters::coord::Shift>, String>
where
    DB::ErrorType: 'static,
{
    let (w, _) = area.dim_in_pixel();
    let (chart, legend) = area.split_horizontally(w.saturating_sub(190));
    for (i, (name, c, swatch)) in entries.iter().enumerate() {
        let y = 60 + 24 * i as i32;
        match swatch {
            Swatch::Line => {
                legend.draw(&PathElement::new(vec![(8, y), (32, y)], c.stroke_width(2)))
            }
            Swatch::Block => legend.draw(&Rectangle::new([(14, y - 6), (26, y + 6)], c.filled())),
            Swatch::Band => legend.draw(&Rectangle::new([(8, y - 6), (32, y + 6)], c.filled())),
        }
        .map_err(err)?;
        legend
            .draw(&Text::new(
                name.clone(),
                (40, y - 7),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(err)?;
    }
    Ok(chart)
}

/// One panel of grouped bars.
#[derive(Clone, Debug)]
pub struct Bars {
    pub title: String,
    pub y_desc: String,
    /// The categories along x (e.g. kernels).
    pub groups: Vec<String>,
    /// (series name, one value per group; None: not measured).
    pub series: Vec<(String, Vec<Option<f64>>)>,
    /// A band per group drawn behind its bars, (low, high), and what it
    /// is for the legend (e.g. the baseline's run-to-run spread).
    pub band: Option<(String, Vec<Option<Span>>)>,
}

/// A band's low and high ends.
pub type Span = (f64, f64);

/// The colour of a [`Bars::band`].
const BAND: RGBColor = RGBColor(215, 215, 215);

/// Draws the panels one above the other to an SVG at `path`, with
/// `subtitle` (provenance, counts) under them.
pub fn grouped_bars(path: &Path, subtitle: &str, panels: &[Bars]) -> Result<(), String> {
    let height = 420 * panels.len().max(1) as u32 + FOOTER;
    let svg = SVGBackend::new(path, (1060, height)).into_drawing_area();
    svg.fill(&WHITE).map_err(err)?;
    let root = footer(&svg, subtitle)?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        bar_panel(area, panel)?;
    }
    svg.present().map_err(err)?;
    Ok(())
}

fn bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    p: &Bars,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let bands: Vec<Option<(f64, f64)>> =
        p.band.as_ref().map(|(_, b)| b.clone()).unwrap_or_default();
    let values: Vec<f64> = p
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .filter(|v| v.is_finite())
        .collect();
    let extent: Vec<f64> = values
        .iter()
        .copied()
        .chain(bands.iter().flatten().flat_map(|&(lo, hi)| [lo, hi]))
        .filter(|v| v.is_finite())
        .collect();
    let lo = extent.iter().copied().fold(0.0f64, f64::min);
    let hi = extent.iter().copied().fold(0.0f64, f64::max);
    let span = (hi - lo).max(1.0);
    let (lo, hi) = (lo - span * 0.08, hi + span * 0.12);
    let n = p.groups.len().max(1);
    let mut entries: Vec<(String, RGBColor, Swatch)> = p
        .series
        .iter()
        .map(|(name, _)| (name.clone(), colour(name), Swatch::Block))
        .collect();
    if let Some((what, _)) = &p.band {
        entries.push((what.clone(), BAND, Swatch::Band));
    }
    let area = with_legend(area, &entries)?;
    let mut chart = ChartBuilder::on(&area)
        .caption(&p.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(65)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), lo..hi)
        .map_err(err)?;
    let groups = p.groups.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(242, 242, 242))
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                groups.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(p.y_desc.as_str())
        .draw()
        .map_err(err)?;
    chart
        .draw_series(bands.iter().enumerate().filter_map(|(g, b)| {
            let (lo, hi) = (*b)?;
            (lo.is_finite() && hi.is_finite()).then(|| {
                Rectangle::new(
                    [(g as f64 - 0.45, hi), (g as f64 + 0.45, lo)],
                    BAND.filled(),
                )
            })
        }))
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
            BLACK.stroke_width(1),
        )))
        .map_err(err)?;
    let k = p.series.len().max(1) as f64;
    let width = 0.8 / k;
    for (s, (name, vals)) in p.series.iter().enumerate() {
        let c = colour(name);
        let rects: Vec<Rectangle<(f64, f64)>> = vals
            .iter()
            .enumerate()
            .filter_map(|(g, v)| {
                let v = (*v)?;
                if !v.is_finite() {
                    return None;
                }
                let x0 = g as f64 - 0.4 + s as f64 * width;
                Some(Rectangle::new(
                    [(x0, v.max(0.0)), (x0 + width * 0.9, v.min(0.0))],
                    c.filled(),
                ))
            })
            .collect();
        chart.draw_series(rects).map_err(err)?;
    }
    if values.is_empty() {
        chart
            .draw_series(std::iter::once(Text::new(
                "nothing measured",
                (n as f64 / 2.0 - 0.8, (lo + hi) / 2.0),
                ("sans-serif", 18).into_font(),
            )))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_axis() {
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(near(percentile_x(0.0), 0.0));
        assert!(near(percentile_x(50.0), 1.0));
        assert!(near(percentile_x(90.0), 2.0));
        assert!(near(percentile_x(99.0), 3.0));
        assert!(near(percentile_x(99.9), 4.0));
        assert!(near(percentile_x(100.0), MAX_X));
        // 75% in nines is log10(4), between 50% (log10(2)) and 90% (1).
        let l2 = 2f64.log10();
        assert!(near(
            percentile_x(75.0),
            1.0 + (4f64.log10() - l2) / (1.0 - l2)
        ));
        let xs: Vec<f64> = (0..=1000).map(|i| percentile_x(i as f64 / 10.0)).collect();
        assert!(xs.windows(2).all(|w| w[0] <= w[1]), "monotonic");
        assert_eq!(percentile_label(3.0), "99%");
        assert_eq!(percentile_label(MAX_X), "max");
        assert_eq!(percentile_label(0.5), "");
    }

    #[test]
    fn plots_are_written_with_their_text() {
        let dir = std::env::temp_dir().join(format!("preempt-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lat = dir.join("lat.svg");
        percentiles(
            &lat,
            "time-to-preempt",
            "preempt 0.1.0, 2026-01-01 00:00 UTC, a machine | async 201 stops",
            &[
                Line {
                    name: "async".into(),
                    points: vec![(0.0, 20.0), (50.0, 40.0), (99.0, 90.0), (100.0, 120.0)],
                    reference: false,
                },
                Line {
                    name: "floor".into(),
                    points: vec![(0.0, 10.0), (50.0, 30.0)],
                    reference: true,
                },
                Line {
                    name: "poll".into(),
                    points: vec![],
                    reference: false,
                },
            ],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&lat).unwrap();
        assert!(svg.contains("<text") && svg.contains("99.9%") && svg.contains("async"));
        assert!(svg.contains("2026-01-01 00:00 UTC"), "the footer is drawn");
        let bars = dir.join("bars.svg");
        grouped_bars(
            &bars,
            "footer text",
            &[Bars {
                title: "overhead".into(),
                y_desc: "%".into(),
                groups: vec!["sum".into(), "nested".into()],
                series: vec![
                    ("async".into(), vec![Some(1.0), Some(-0.5)]),
                    ("poll".into(), vec![None, Some(12.0)]),
                ],
                band: Some(("baseline noise".into(), vec![Some((-2.0, 3.0)), None])),
            }],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&bars).unwrap();
        assert!(svg.contains("nested") && svg.contains("<rect"));
        assert!(svg.contains("footer text") && svg.contains("baseline noise"));
        // The band: the grey of BAND, once (the legend's swatch too).
        assert_eq!(svg.matches("#D7D7D7").count(), 2, "{svg}");
        assert!(!svg.contains("width=\"-"), "no rectangle of negative width");
        assert!(
            !svg.contains("height=\"-"),
            "no rectangle of negative height"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
