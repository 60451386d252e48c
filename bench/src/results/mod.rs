//! One result format for every suite (`docs/results-format.md`): a JSON
//! document with the format's version, the suite, the provenance of the
//! run ([`provenance`]), every figure with a stable key, its unit and its
//! samples or full histogram ([`hist`]), and the suite's own details.
//!
//! Each suite's figures are made from its details by [`figures`]; the
//! documents are written here and read back by `preempt compare`; Go's
//! benchmark format is written by [`gobench`].

pub mod figures;
pub mod gobench;
pub mod hist;
pub mod provenance;

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

pub use provenance::Provenance;

/// The format and its version: a reader refuses any other.
pub const FORMAT: &str = "preempt-results/1";

/// Up to this many samples a figure keeps them all; past it, their
/// histogram.
pub const SAMPLES_MAX: usize = 4096;

/// What a figure's value is, made from its samples.
pub mod stat {
    /// The one value measured.
    pub const VALUE: &str = "value";
    /// The smallest of the samples (the fastest repetition).
    pub const MIN: &str = "min";
    /// The largest (the best throughput).
    pub const MAX: &str = "max";
    /// The median of a distribution (nearest rank, or HDR's p50).
    pub const P50: &str = "p50";
}

/// One figure: a stable key, a value in a unit, and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Words of `[a-z0-9._]` joined by `/`: no spaces.
    pub key: String,
    /// `ns`, `ns/iteration`, `bytes`, `count`, `%`, `x` (a ratio), ...
    pub unit: String,
    pub value: f64,
    /// How `value` is made from the samples ([`stat`]).
    pub stat: String,
    /// How many observations: repetitions, or a distribution's samples.
    pub n: u64,
    /// Every observation, when there are at most [`SAMPLES_MAX`].
    pub samples: Vec<f64>,
    /// Else the full histogram, HdrHistogram's V2 base64 ([`hist`]), in
    /// `unit`.
    pub histogram: Option<String>,
    /// A distribution's percentiles (`p50`, `p90`, `p99`, `p99.9`, `max`).
    pub percentiles: Vec<(String, f64)>,
}

/// `name` as a key ([`preempt_runtime::stats::json_key`]): lower case,
/// every run of characters other than `a-z0-9./` one `_`
/// (`time-to-preempt (async)` is `time_to_preempt_async`).
pub fn key(name: &str) -> String {
    preempt_runtime::stats::json_key(name)
}

/// Nearest-rank percentile `p` of sorted values.
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The percentiles a distribution figure lists.
pub const PERCENTILES: &[(&str, f64)] = &[
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("max", 100.0),
];

/// The percentile a name stands for: `p99.9` is 99.9, `max` 100.
pub fn percentile_of(name: &str) -> f64 {
    match name {
        "max" => 100.0,
        "min" => 0.0,
        _ => name
            .strip_prefix('p')
            .and_then(|p| p.parse().ok())
            .unwrap_or(f64::NAN),
    }
}

impl Figure {
    /// A figure measured once.
    pub fn single(key_: &str, unit: &str, value: f64) -> Figure {
        Figure {
            key: key(key_),
            unit: unit.to_string(),
            value,
            stat: stat::VALUE.to_string(),
            n: 1,
            samples: vec![value],
            histogram: None,
            percentiles: Vec::new(),
        }
    }

    /// Counts, one figure each (unit `count`), keyed `PREFIX` + name.
    pub fn counts<'a>(
        prefix: &'a str,
        items: impl IntoIterator<Item = (&'a str, u64)> + 'a,
    ) -> impl Iterator<Item = Figure> + 'a {
        items
            .into_iter()
            .map(move |(name, n)| Figure::single(&format!("{prefix}{name}"), "count", n as f64))
    }

    /// A figure measured once per repetition: `samples` are every
    /// repetition's value, `value` their `stat` ([`stat::MIN`] or
    /// [`stat::MAX`]). None without samples.
    pub fn repeated(key_: &str, unit: &str, which: &str, samples: Vec<f64>) -> Option<Figure> {
        let finite = samples.iter().copied().filter(|v| v.is_finite());
        let value = if which == stat::MAX {
            finite.fold(f64::NEG_INFINITY, f64::max)
        } else {
            finite.fold(f64::INFINITY, f64::min)
        };
        value.is_finite().then(|| Figure {
            key: key(key_),
            unit: unit.to_string(),
            value,
            stat: which.to_string(),
            n: samples.len() as u64,
            samples,
            histogram: None,
            percentiles: Vec::new(),
        })
    }

    /// A distribution of integer observations (ns, bytes): its median as
    /// the value, its percentiles (nearest rank), and the samples, or
    /// their histogram past [`SAMPLES_MAX`]. None without samples.
    pub fn distribution(key_: &str, unit: &str, samples: &[u64]) -> Option<Figure> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = samples.iter().map(|&v| v as f64).collect();
        sorted.sort_by(f64::total_cmp);
        let percentiles: Vec<(String, f64)> = PERCENTILES
            .iter()
            .map(|(name, p)| (name.to_string(), nearest_rank(&sorted, *p)))
            .collect();
        let (kept, histogram) = if samples.len() <= SAMPLES_MAX {
            (samples.iter().map(|&v| v as f64).collect(), None)
        } else {
            (Vec::new(), hist::encode(&hist::of_samples(samples)).ok())
        };
        Some(Figure {
            key: key(key_),
            unit: unit.to_string(),
            value: percentiles[0].1,
            stat: stat::P50.to_string(),
            n: samples.len() as u64,
            samples: kept,
            histogram,
            percentiles,
        })
    }

    /// A distribution from its HDR histogram (the runtime keeps no raw
    /// samples): HDR's percentiles, and the histogram itself. None when it
    /// is empty.
    pub fn from_histogram(
        key_: &str,
        unit: &str,
        h: &hdrhistogram::Histogram<u64>,
    ) -> Option<Figure> {
        if h.is_empty() {
            return None;
        }
        let percentiles: Vec<(String, f64)> = PERCENTILES
            .iter()
            .map(|(name, p)| (name.to_string(), h.value_at_percentile(*p) as f64))
            .collect();
        Some(Figure {
            key: key(key_),
            unit: unit.to_string(),
            value: percentiles[0].1,
            stat: stat::P50.to_string(),
            n: h.len(),
            samples: Vec::new(),
            histogram: Some(hist::encode(h).ok()?),
            percentiles,
        })
    }

    /// Every observation: the samples, or the values read back from the
    /// histogram (within its 3 significant digits).
    pub fn observations(&self) -> Result<Vec<f64>, String> {
        match &self.histogram {
            Some(h) => Ok(hist::values(&hist::decode(h)?)
                .into_iter()
                .map(|v| v as f64)
                .collect()),
            None => Ok(self.samples.clone()),
        }
    }

    /// This figure and `other` (the same key, from another run) as one:
    /// their samples together, or their histograms added; the value made
    /// again (`min` and `max` of all; a distribution's or several single
    /// values' median, `p50`).
    pub fn merge(&self, other: &Figure) -> Result<Figure, String> {
        if self.unit != other.unit {
            return Err(format!(
                "{}: units {} and {}",
                self.key, self.unit, other.unit
            ));
        }
        if self.histogram.is_some() || other.histogram.is_some() {
            let mut h = hist::of_samples(&[]);
            for f in [self, other] {
                match &f.histogram {
                    Some(t) => h
                        .add(hist::decode(t)?)
                        .map_err(|e| format!("{}: {e:?}", f.key))?,
                    None => f.samples.iter().for_each(|&v| {
                        let _ = h.record(v.max(0.0) as u64);
                    }),
                }
            }
            let mut m = Figure::from_histogram(&self.key, &self.unit, &h)
                .ok_or_else(|| format!("{}: empty", self.key))?;
            m.key = self.key.clone();
            return Ok(m);
        }
        let samples: Vec<f64> = self.samples.iter().chain(&other.samples).copied().collect();
        if self.stat == stat::MIN || self.stat == stat::MAX {
            let mut m = Figure::repeated(&self.key, &self.unit, &self.stat, samples)
                .ok_or_else(|| format!("{}: no samples", self.key))?;
            m.key = self.key.clone();
            return Ok(m);
        }
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return Err(format!("{}: no samples", self.key));
        }
        let percentiles: Vec<(String, f64)> = PERCENTILES
            .iter()
            .map(|(name, p)| (name.to_string(), nearest_rank(&sorted, *p)))
            .collect();
        Ok(Figure {
            key: self.key.clone(),
            unit: self.unit.clone(),
            value: percentiles[0].1,
            stat: stat::P50.to_string(),
            n: samples.len() as u64,
            samples,
            histogram: None,
            percentiles,
        })
    }

    pub fn to_json(&self) -> Value {
        let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        let mut o = Map::new();
        o.insert("key".into(), json!(self.key));
        o.insert("unit".into(), json!(self.unit));
        o.insert("value".into(), num(self.value));
        o.insert("stat".into(), json!(self.stat));
        o.insert("n".into(), json!(self.n));
        if !self.percentiles.is_empty() {
            let p: Map<String, Value> = self
                .percentiles
                .iter()
                .map(|(k, v)| (k.clone(), num(*v)))
                .collect();
            o.insert("percentiles".into(), Value::Object(p));
        }
        if let Some(h) = &self.histogram {
            o.insert(
                "histogram".into(),
                json!({"encoding": hist::ENCODING, "data": h}),
            );
        } else {
            o.insert(
                "samples".into(),
                Value::Array(self.samples.iter().map(|&v| num(v)).collect()),
            );
        }
        Value::Object(o)
    }

    pub fn from_json(v: &Value) -> Result<Figure, String> {
        let key = v["key"].as_str().ok_or("a figure without a key")?;
        let text = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("figure {key}: no {k}"))
        };
        let histogram = match &v["histogram"] {
            Value::Null => None,
            h => {
                if h["encoding"] != json!(hist::ENCODING) {
                    return Err(format!(
                        "figure {key}: histogram encoding {} (this preempt reads {})",
                        h["encoding"],
                        hist::ENCODING
                    ));
                }
                Some(
                    h["data"]
                        .as_str()
                        .ok_or_else(|| format!("figure {key}: histogram without data"))?
                        .to_string(),
                )
            }
        };
        // In increasing order (a JSON object's keys come back sorted).
        let mut percentiles: Vec<(String, f64)> = v["percentiles"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, x)| Some((k.clone(), x.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        percentiles.sort_by(|a, b| percentile_of(&a.0).total_cmp(&percentile_of(&b.0)));
        Ok(Figure {
            key: key.to_string(),
            unit: text("unit")?,
            value: v["value"].as_f64().unwrap_or(f64::NAN),
            stat: text("stat")?,
            n: v["n"].as_u64().unwrap_or(0),
            samples: v["samples"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default(),
            histogram,
            percentiles,
        })
    }
}

/// One suite's figures and details.
#[derive(Clone, Debug)]
pub struct Section {
    pub suite: String,
    pub figures: Vec<Figure>,
    /// The suite's own JSON: its tables, notes and raw runs.
    pub details: Value,
}

/// A result file: one suite (`sections` has one) or `all`.
#[derive(Clone, Debug)]
pub struct Document {
    pub suite: String,
    pub provenance: Value,
    /// What the run was asked to do (`preempt run`'s settings; null for
    /// the suites, whose details say it).
    pub settings: Value,
    pub sections: Vec<Section>,
}

/// What `not_a_measurement` says of a `--quick` run.
pub const QUICK_NOTE: &str =
    "run with --quick: short runs that check the harness; NOT A MEASUREMENT";

impl Document {
    /// One suite's document.
    pub fn one(prov: &Provenance, section: Section) -> Document {
        Document {
            suite: section.suite.clone(),
            provenance: prov.to_json(),
            settings: Value::Null,
            sections: vec![section],
        }
    }

    /// Whether the provenance says `--quick`.
    pub fn quick(&self) -> bool {
        self.provenance["quick"] == json!(true)
    }

    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("format".into(), json!(FORMAT));
        o.insert("suite".into(), json!(self.suite));
        o.insert("provenance".into(), self.provenance.clone());
        if self.quick() {
            o.insert("not_a_measurement".into(), json!(QUICK_NOTE));
        }
        if !self.settings.is_null() {
            o.insert("settings".into(), self.settings.clone());
        }
        let section = |s: &Section, with_name: bool| {
            let mut m = Map::new();
            if with_name {
                m.insert("suite".into(), json!(s.suite));
            }
            m.insert(
                "figures".into(),
                Value::Array(s.figures.iter().map(Figure::to_json).collect()),
            );
            m.insert("details".into(), s.details.clone());
            m
        };
        match self.sections.as_slice() {
            [s] if s.suite == self.suite => o.extend(section(s, false)),
            all => {
                o.insert(
                    "suites".into(),
                    Value::Array(
                        all.iter()
                            .map(|s| Value::Object(section(s, true)))
                            .collect(),
                    ),
                );
            }
        }
        Value::Object(o)
    }

    /// Reads a document, refusing another format or version.
    pub fn from_json(v: &Value) -> Result<Document, String> {
        match v["format"].as_str() {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(format!(
                    "format {other}: this preempt reads {FORMAT} (a file from another version)"
                ))
            }
            None => return Err(format!("no \"format\" key: not a {FORMAT} file")),
        }
        let suite = v["suite"].as_str().ok_or("no \"suite\" key")?.to_string();
        let section = |s: &Value, name: &str| -> Result<Section, String> {
            let figures = s["figures"]
                .as_array()
                .ok_or_else(|| format!("suite {name}: no \"figures\" list"))?
                .iter()
                .map(Figure::from_json)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Section {
                suite: name.to_string(),
                figures,
                details: s["details"].clone(),
            })
        };
        let sections = match v["suites"].as_array() {
            Some(all) => all
                .iter()
                .map(|s| section(s, s["suite"].as_str().unwrap_or("?")))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![section(v, &suite)?],
        };
        Ok(Document {
            suite,
            provenance: v["provenance"].clone(),
            settings: v["settings"].clone(),
            sections,
        })
    }

    /// Several runs of the same suite as one (`preempt compare` takes a
    /// side's files together): every figure's samples merged
    /// ([`Figure::merge`]), the first file's provenance. A figure missing
    /// from a run is kept from the others.
    pub fn merge(docs: &[Document]) -> Result<Document, String> {
        let (first, rest) = docs.split_first().ok_or("no document")?;
        let mut out = first.clone();
        for d in rest {
            if d.suite != out.suite {
                return Err(format!(
                    "runs of different suites ({} and {}) cannot be merged",
                    out.suite, d.suite
                ));
            }
            for s in &d.sections {
                let Some(mine) = out.sections.iter_mut().find(|m| m.suite == s.suite) else {
                    out.sections.push(s.clone());
                    continue;
                };
                for f in &s.figures {
                    match mine.figures.iter_mut().find(|m| m.key == f.key) {
                        Some(m) => *m = m.merge(f)?,
                        None => mine.figures.push(f.clone()),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Reads the document in `path`.
    pub fn read(path: &Path) -> Result<Document, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        Document::from_json(&v).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the document to `path`.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, format!("{:#}\n", self.to_json()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// Checks that `path` can be written, before a run: it is opened for
/// appending (and so created if need be), as `run --stats-json` does.
pub fn check_writable(path: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Where `--out-dir DIR` puts suite `suite`'s document: `DIR/SUITE.json`.
pub fn out_path(dir: &Path, suite: &str) -> PathBuf {
    dir.join(format!("{suite}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(d: &Document) -> Document {
        let text = format!("{:#}", d.to_json());
        Document::from_json(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    #[test]
    fn documents_round_trip() {
        let prov = Provenance::here(true);
        let figures = vec![
            Figure::single("instructions", "count", 1e6),
            Figure::repeated("sum/jit", "ns/iteration", stat::MIN, vec![0.5, 0.4, 0.6]).unwrap(),
            Figure::repeated("rate", "M/s", stat::MAX, vec![3.0, 5.0]).unwrap(),
            Figure::distribution("late", "ns", &[5, 1, 3, 2, 4]).unwrap(),
            Figure::distribution("many", "ns", &(0..10_000).collect::<Vec<u64>>()).unwrap(),
        ];
        assert_eq!(figures[1].value, 0.4);
        assert_eq!(figures[2].value, 5.0);
        assert_eq!((figures[3].value, figures[3].n), (3.0, 5));
        assert_eq!(figures[3].percentiles[4], ("max".to_string(), 5.0));
        assert!(figures[4].samples.is_empty() && figures[4].histogram.is_some());
        assert_eq!(figures[4].observations().unwrap().len(), 10_000);
        let d = Document::one(
            &prov,
            Section {
                suite: "kernels".into(),
                figures: figures.clone(),
                details: json!({"rows": [1, 2]}),
            },
        );
        let j = d.to_json();
        assert_eq!(j["format"], json!(FORMAT));
        assert_eq!(j["suite"], json!("kernels"));
        assert_eq!(j["not_a_measurement"], json!(QUICK_NOTE));
        assert_eq!(j["figures"][1]["samples"], json!([0.5, 0.4, 0.6]));
        assert_eq!(
            j["figures"][4]["histogram"]["encoding"],
            json!(hist::ENCODING)
        );
        let back = round_trip(&d);
        assert_eq!(back.suite, "kernels");
        assert_eq!(back.sections[0].figures, figures);
        assert_eq!(back.sections[0].details, json!({"rows": [1, 2]}));
        assert!(back.quick());

        let all = Document {
            suite: "all".into(),
            provenance: Provenance::here(false).to_json(),
            settings: Value::Null,
            sections: vec![
                back.sections[0].clone(),
                Section {
                    suite: "compile".into(),
                    figures: vec![Figure::single("total", "ns", 3.0)],
                    details: Value::Null,
                },
            ],
        };
        let j = all.to_json();
        assert!(j.get("not_a_measurement").is_none() && j.get("figures").is_none());
        let back = round_trip(&all);
        assert_eq!(back.sections.len(), 2);
        assert_eq!(back.sections[1].suite, "compile");
        assert!(!back.quick());
    }

    #[test]
    fn runs_merge_their_samples() {
        let prov = Provenance::here(false);
        let doc = |jit: Vec<f64>, ratio: f64, late: &[u64]| {
            Document::one(
                &prov,
                Section {
                    suite: "kernels".into(),
                    figures: vec![
                        Figure::repeated("sum/jit", "ns", stat::MIN, jit).unwrap(),
                        Figure::single("ratio", "x", ratio),
                        Figure::distribution("late", "ns", late).unwrap(),
                    ],
                    details: Value::Null,
                },
            )
        };
        let big: Vec<u64> = (1..=5000).collect();
        let m = Document::merge(&[
            doc(vec![3.0, 2.0], 1.0, &[1, 2, 3]),
            doc(vec![1.5], 3.0, &[4]),
            doc(vec![4.0], 2.0, &big),
        ])
        .unwrap();
        let f = &m.sections[0].figures;
        assert_eq!((f[0].value, f[0].n), (1.5, 4));
        assert_eq!(f[0].samples, [3.0, 2.0, 1.5, 4.0]);
        assert_eq!(
            (f[1].value, f[1].n, f[1].stat.as_str()),
            (2.0, 3, stat::P50)
        );
        assert_eq!(f[2].n, 5004);
        assert!(f[2].histogram.is_some());
        assert!(Document::merge(&[]).is_err());
    }

    #[test]
    fn other_formats_are_refused() {
        let v = json!({"format": "preempt-results/2", "suite": "kernels", "figures": []});
        assert!(Document::from_json(&v)
            .unwrap_err()
            .contains("preempt-results/2"));
        let v = json!({"suite": "kernels", "figures": []});
        assert!(Document::from_json(&v)
            .unwrap_err()
            .contains("no \"format\""));
        let v = json!({"format": FORMAT, "suite": "kernels"});
        assert!(Document::from_json(&v).unwrap_err().contains("figures"));
    }
}
