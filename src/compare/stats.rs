//! The tests `preempt compare` makes: the Mann-Whitney U test on two sets
//! of samples (benchstat's default), and distribution-free confidence
//! intervals of a percentile for the tails.

/// Up to this many samples on each side, with no ties, the U test's
/// p-value is exact (as benchstat's); past it, or with ties, normal.
pub const EXACT_LIMIT: usize = 50;

/// How a p-value was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The exact distribution of U (no ties, small samples).
    Exact,
    /// The normal approximation with tie and continuity corrections.
    Normal,
}

/// A Mann-Whitney U test of two samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UTest {
    /// U of the first sample: pairs (x, y) with x > y, ties counting half.
    pub u: f64,
    /// Two-sided.
    pub p: f64,
    pub method: Method,
}

extern "C" {
    /// The C library's complementary error function (libm, which the Rust
    /// standard library links on Linux).
    fn erfc(x: f64) -> f64;
}

/// P(Z > z) for a standard normal Z.
pub fn normal_sf(z: f64) -> f64 {
    // SAFETY: erfc is a pure function of a double; it reads and writes no
    // memory and is thread-safe.
    0.5 * unsafe { erfc(z / std::f64::consts::SQRT_2) }
}

/// Mid-ranks (1-based) of `all`, and the sizes of its groups of ties.
fn ranks(all: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| all[a].total_cmp(&all[b]));
    let mut r = vec![0.0; all.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && all[order[j + 1]] == all[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = mid;
        }
        if j > i {
            ties.push(j - i + 1);
        }
        i = j + 1;
    }
    (r, ties)
}

/// How many arrangements of `n1` x's and `n2` y's give each value of U
/// (0..=n1*n2), as floats (they outgrow integers past about 60 values).
fn u_counts(n1: usize, n2: usize) -> Vec<f64> {
    // f[i][j] is the distribution for i x's and j y's; the last value is
    // an x (it beats all j y's: U grows by j) or a y (U unchanged).
    let mut prev: Vec<Vec<f64>> = (0..=n2).map(|_| vec![1.0]).collect();
    for i in 1..=n1 {
        let mut cur: Vec<Vec<f64>> = Vec::with_capacity(n2 + 1);
        cur.push(vec![1.0]);
        for j in 1..=n2 {
            let mut d = vec![0.0; i * j + 1];
            for (u, c) in prev[j].iter().enumerate() {
                d[u + j] += c;
            }
            for (u, c) in cur[j - 1].iter().enumerate() {
                d[u] += c;
            }
            cur.push(d);
        }
        prev = cur;
    }
    prev.pop().unwrap_or_else(|| vec![1.0])
}

/// The two-sided Mann-Whitney U test of `x` against `y`; None when either
/// is empty.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Option<UTest> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let (r, ties) = ranks(&all);
    let r1: f64 = r[..n1].iter().sum();
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let (nf1, nf2) = (n1 as f64, n2 as f64);
    let big = u1.max(nf1 * nf2 - u1);
    if ties.is_empty() && n1 <= EXACT_LIMIT && n2 <= EXACT_LIMIT {
        let counts = u_counts(n1, n2);
        let total: f64 = counts.iter().sum();
        // P(U >= big), twice, by symmetry.
        let tail: f64 = counts[big.round() as usize..].iter().sum();
        return Some(UTest {
            u: u1,
            p: (2.0 * tail / total).min(1.0),
            method: Method::Exact,
        });
    }
    let n = nf1 + nf2;
    let tie_term: f64 = ties
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum();
    let var = nf1 * nf2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let p = if var > 0.0 {
        let z = (big - nf1 * nf2 / 2.0 - 0.5) / var.sqrt();
        (2.0 * normal_sf(z)).min(1.0)
    } else {
        // Every value is the same.
        1.0
    };
    Some(UTest {
        u: u1,
        p,
        method: Method::Normal,
    })
}

/// The smallest two-sided p-value the U test can give with `n1` and `n2`
/// samples (exact, no ties): 2 / C(n1 + n2, n1). At alpha 0.05 it takes
/// at least 4 samples on each side (5 against 3), as benchstat says.
pub fn min_p(n1: usize, n2: usize) -> f64 {
    let (k, n) = (n1.min(n2), n1 + n2);
    let mut c = 1.0f64;
    for i in 0..k {
        c = c * (n - i) as f64 / (i + 1) as f64;
    }
    (2.0 / c).min(1.0)
}

/// A 95% distribution-free confidence interval of percentile `q` (0-100)
/// of sorted samples: the order statistics around rank n*q/100 that a
/// binomial count (normal approximation) puts it between. None when the
/// samples are too few for such an interval inside them.
pub fn percentile_interval(sorted: &[f64], q: f64) -> Option<(f64, f64)> {
    let n = sorted.len() as f64;
    let p = q / 100.0;
    if sorted.is_empty() || !(0.0..1.0).contains(&p) {
        return None;
    }
    let half = 1.959_963_984_540_054 * (n * p * (1.0 - p)).sqrt();
    let lo = (n * p - half).floor();
    let hi = (n * p + half).ceil() + 1.0;
    (lo >= 1.0 && hi <= n).then(|| (sorted[lo as usize - 1], sorted[hi as usize - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 + 1e-6 * b.abs()
    }

    /// The reference values are scipy.stats.mannwhitneyu's (scipy 1.17,
    /// two-sided; `method="exact"` or `"asymptotic"` with its default
    /// continuity correction), the first from its documentation's example.
    #[test]
    fn u_test_matches_scipy() {
        let males = [19.0, 22.0, 16.0, 29.0, 24.0];
        let females = [20.0, 11.0, 17.0, 12.0];
        let t = mann_whitney(&males, &females).unwrap();
        assert_eq!((t.u, t.method), (17.0, Method::Exact));
        assert!(close(t.p, 0.1111111111111111), "{}", t.p);

        let t = mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert_eq!(t.u, 0.0);
        assert!(close(t.p, 0.007936507936507936), "{}", t.p);
        let t = mann_whitney(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]).unwrap();
        assert!(close(t.p, 0.02857142857142857), "{}", t.p);

        // Ties: the normal approximation with the tie correction.
        let x = [1.1, 2.2, 2.2, 3.5, 4.0, 4.0, 5.1];
        let y = [2.2, 3.0, 4.0, 6.0, 6.5, 7.1, 8.0, 9.9];
        let t = mann_whitney(&x, &y).unwrap();
        assert_eq!((t.u, t.method), (11.0, Method::Normal));
        assert!(close(t.p, 0.05444349327939871), "{}", t.p);

        // Past the exact limit: 60 against 60, no ties.
        let a: Vec<f64> = (1..=60).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 7.5).collect();
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!((t.u, t.method), (1378.0, Method::Normal));
        assert!(close(t.p, 0.02694585619564296), "{}", t.p);

        // The same samples: U in the middle, p = 1; one side empty: none.
        let t = mann_whitney(&[3.0, 1.0, 2.0], &[2.0, 3.0, 1.0]).unwrap();
        assert!(close(t.p, 1.0), "{}", t.p);
        assert!(mann_whitney(&[], &[1.0]).is_none());
        assert_eq!(mann_whitney(&[5.0, 5.0], &[5.0]).unwrap().p, 1.0);
    }

    #[test]
    fn exact_counts_are_the_binomial_total() {
        // Every arrangement is counted once: C(n1+n2, n1) in all.
        for (n1, n2, total) in [
            (1, 1, 2.0),
            (3, 2, 10.0),
            (5, 4, 126.0),
            (10, 10, 184_756.0),
        ] {
            let c = u_counts(n1, n2);
            assert_eq!(c.len(), n1 * n2 + 1);
            assert_eq!(c.iter().sum::<f64>(), total);
            // Symmetric about n1*n2/2.
            assert!(c.iter().zip(c.iter().rev()).all(|(a, b)| a == b));
        }
        assert!(close(min_p(5, 5), 0.007936507936507936));
        assert!(close(min_p(3, 3), 0.1));
        assert!(min_p(4, 4) < 0.05 && min_p(3, 4) > 0.05);
        assert_eq!(min_p(1, 50), 2.0 / 51.0);
    }

    #[test]
    fn normal_tail() {
        // scipy.stats.norm.sf.
        assert!(close(normal_sf(0.0), 0.5));
        assert!(close(normal_sf(1.959963984540054), 0.025));
        assert!(close(normal_sf(-1.0), 0.8413447460685429));
    }

    #[test]
    fn percentile_intervals_hold_the_percentile() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        let (lo, hi) = percentile_interval(&v, 50.0).unwrap();
        assert!(lo < 500.0 && hi > 500.0 && hi - lo < 80.0, "{lo} {hi}");
        let (lo, hi) = percentile_interval(&v, 99.0).unwrap();
        assert!(lo < 990.0 && hi > 990.0 && hi <= 1000.0, "{lo} {hi}");
        // 200 samples cannot bound their p99 from above.
        assert!(percentile_interval(&v[..200], 99.0).is_none());
        assert!(percentile_interval(&[], 50.0).is_none());
    }
}
