//! Histograms in result files: HdrHistogram's own V2 encoding, compressed
//! (V2 + DEFLATE, as HdrHistogram's interval logs and
//! `Histogram.decodeFromCompressedByteBuffer` read it), in standard
//! base64; and the values recorded, read back from one.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// What the `encoding` key of a histogram says.
pub const ENCODING: &str = "hdrhistogram-v2-deflate-base64";

/// Significant digits of the histograms made here from samples (the
/// runtime's own keep 3 too).
const SIGFIG: u8 = 3;

/// `h` as base64 of its compressed V2 encoding.
pub fn encode(h: &Histogram<u64>) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| format!("cannot encode a histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The histogram `text` encodes.
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("histogram: not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram: not an HdrHistogram V2 encoding: {e:?}"))
}

/// A histogram of `samples` (values clamped at 0 below).
pub fn of_samples(samples: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::new(SIGFIG).expect("3 significant digits is a valid HDR configuration");
    for &s in samples {
        // The histogram grows to fit (`saturating_record` alone would
        // clamp to its current top, 2 when new).
        if h.record(s).is_err() {
            h.saturating_record(s);
        }
    }
    h
}

/// Every recorded value, as many times as it was recorded, in increasing
/// order: each at the highest value its bucket stands for (HDR's own
/// reading of a percentile), so within the histogram's precision.
pub fn values(h: &Histogram<u64>) -> Vec<u64> {
    let mut out = Vec::with_capacity(h.len() as usize);
    for v in h.iter_recorded() {
        let n = v.count_at_value() as usize;
        out.extend(std::iter::repeat_n(v.value_iterated_to(), n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip_through_base64() {
        let samples: Vec<u64> = (0..10_000u64).map(|i| 1000 + i * i % 977_000).collect();
        assert_eq!(of_samples(&[1000, 5000]).max(), 5003);
        let h = of_samples(&samples);
        let text = encode(&h).unwrap();
        assert!(text.is_ascii() && !text.contains(char::is_whitespace));
        let back = decode(&text).unwrap();
        assert_eq!(back, h);
        for p in [0.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            assert_eq!(
                back.value_at_percentile(p),
                h.value_at_percentile(p),
                "p{p}"
            );
        }
        // The values read back are the samples to 3 significant digits.
        let mut sorted = samples.clone();
        sorted.sort_unstable();
        let vals = values(&back);
        assert_eq!(vals.len(), samples.len());
        for (v, s) in vals.iter().zip(&sorted) {
            assert!(
                v >= s && (*v - *s) as f64 <= *s as f64 * 1e-3 + 1.0,
                "{v} {s}"
            );
        }
        assert!(decode("not base64!").unwrap_err().contains("base64"));
        assert!(decode("aGVsbG8=").unwrap_err().contains("HdrHistogram"));
    }
}
