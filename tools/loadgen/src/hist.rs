//! A log-linear latency histogram (the HdrHistogram layout with 7 bits of sub-bucket precision).
//!
//! Values below 128 are counted exactly; above that every power of two is split into 128 equal
//! buckets, so a reported value is within 1/256 (0.4 %) of the true one: the "correct to ~1 %" the
//! benchmarks need, with a fixed 7 424 buckets covering the whole `u64` range. Histograms merge by
//! adding counts, and serialize sparsely, so shards in other processes can ship theirs as JSON.

use serde::{Deserialize, Serialize};

const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS + 1) as usize) * SUB as usize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Wire", from = "Wire")]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let high_bit = 63 - v.leading_zeros();
    let shift = high_bit - SUB_BITS;
    let mantissa = v >> shift; // in [SUB, 2 * SUB)
    ((u64::from(shift) + 1) * SUB + (mantissa - SUB)) as usize
}

/// The smallest and largest value that land in bucket `i`.
fn bounds_of(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, i);
    }
    let shift = i / SUB - 1;
    let mantissa = u128::from(SUB + i % SUB);
    let low = mantissa << shift;
    let high = ((mantissa + 1) << shift) - 1;
    (low as u64, high.min(u128::from(u64::MAX)) as u64)
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    pub fn record(&mut self, v: u64) {
        self.record_n(v, 1);
    }

    pub fn record_n(&mut self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.counts[index_of(v)] += n;
        self.total += n;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v) * u128::from(n);
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The exact largest value recorded (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The exact smallest value recorded (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 { 0 } else { self.min }
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value below or at which a fraction `q` (0..=1) of the recorded values lie: the
    /// nearest-rank definition (`ceil(q * n)`-th smallest), reported as the middle of its bucket
    /// and clamped to the exact min and max. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, high) = bounds_of(i);
                let mid = low + (high - low) / 2;
                return mid.clamp(self.min, self.max);
            }
        }
        self.max
    }
}

/// Sparse form: `[bucket, count]` pairs for the non-empty buckets.
#[derive(Serialize, Deserialize)]
struct Wire {
    buckets: Vec<(u32, u64)>,
    min: u64,
    max: u64,
    sum: u128,
}

impl From<Histogram> for Wire {
    fn from(h: Histogram) -> Self {
        let buckets = h
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i as u32, *c))
            .collect();
        Wire {
            buckets,
            min: h.min,
            max: h.max,
            sum: h.sum,
        }
    }
}

impl From<Wire> for Histogram {
    fn from(w: Wire) -> Self {
        let mut h = Histogram::new();
        for (i, c) in w.buckets {
            if let Some(slot) = h.counts.get_mut(i as usize) {
                *slot += c;
                h.total += c;
            }
        }
        if h.total > 0 {
            h.min = w.min;
            h.max = w.max;
            h.sum = w.sum;
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel_err(got: u64, want: u64) -> f64 {
        (got as f64 - want as f64).abs() / want as f64
    }

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        for i in 0..BUCKETS - 1 {
            let (low, high) = bounds_of(i);
            let (next_low, _) = bounds_of(i + 1);
            assert!(low <= high);
            assert_eq!(high + 1, next_low, "gap after bucket {i}");
            assert_eq!(index_of(low), i);
            assert_eq!(index_of(high), i);
        }
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bounds_of(BUCKETS - 1).1, u64::MAX);
    }

    #[test]
    fn bucket_width_keeps_values_within_one_percent() {
        for v in [
            128u64,
            1000,
            65_535,
            1_000_000,
            123_456_789,
            1 << 40,
            u64::MAX / 3,
        ] {
            let (low, high) = bounds_of(index_of(v));
            let mid = low + (high - low) / 2;
            assert!(rel_err(mid, v) < 0.01, "{v}: bucket {low}..={high}");
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 0..100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 49);
        assert_eq!(h.quantile(0.0), 0);
        assert_eq!(h.quantile(1.0), 99);
        assert_eq!(h.min(), 0);
        assert_eq!(h.max(), 99);
    }

    #[test]
    fn uniform_distribution_percentiles() {
        // 1 µs ..= 100 ms in 1 µs steps (values in ns): the q-quantile is q * 100 ms.
        let mut h = Histogram::new();
        for us in 1..=100_000u64 {
            h.record(us * 1000);
        }
        assert_eq!(h.len(), 100_000);
        for (q, want) in [
            (0.5, 50_000_000u64),
            (0.9, 90_000_000),
            (0.99, 99_000_000),
            (0.999, 99_900_000),
        ] {
            let got = h.quantile(q);
            assert!(rel_err(got, want) < 0.01, "q={q}: {got} vs {want}");
        }
        assert_eq!(h.max(), 100_000_000);
        assert!(rel_err(h.mean() as u64, 50_000_500) < 1e-9);
    }

    #[test]
    fn skewed_distribution_tail() {
        // 990 fast values and 10 slow ones: p99 is still fast, p99.1 is slow.
        let mut h = Histogram::new();
        h.record_n(2_000_000, 990);
        h.record_n(500_000_000, 10);
        assert!(rel_err(h.quantile(0.99), 2_000_000) < 0.01);
        assert!(rel_err(h.quantile(0.991), 500_000_000) < 0.01);
        assert!(rel_err(h.quantile(0.5), 2_000_000) < 0.01);
        assert_eq!(h.max(), 500_000_000);
    }

    #[test]
    fn exponential_distribution_matches_closed_form() {
        // Deterministic inverse-CDF samples of Exp(mean = 1 ms): the q-quantile is -ln(1-q) ms.
        let mut h = Histogram::new();
        let n = 200_000;
        for i in 0..n {
            let u = (i as f64 + 0.5) / n as f64;
            h.record((-(1.0 - u).ln() * 1e6) as u64);
        }
        for q in [0.5, 0.9, 0.99] {
            let want = (-(1.0f64 - q).ln() * 1e6) as u64;
            let got = h.quantile(q);
            assert!(rel_err(got, want) < 0.01, "q={q}: {got} vs {want}");
        }
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        let mut all = Histogram::new();
        for v in 0..10_000u64 {
            let x = v * v * 37 % 9_999_991;
            if v % 3 == 0 {
                a.record(x)
            } else {
                b.record(x)
            }
            all.record(x);
        }
        a.merge(&b);
        assert_eq!(a, all);
        a.merge(&Histogram::new());
        assert_eq!(a, all);
    }

    #[test]
    fn json_round_trip_is_lossless_and_sparse() {
        let mut h = Histogram::new();
        h.record_n(1_500_000, 7);
        h.record(42);
        h.record(u64::MAX);
        let json = serde_json::to_string(&h).expect("serialize");
        assert!(json.len() < 200, "{json}");
        let back: Histogram = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, h);
        let empty: Histogram =
            serde_json::from_str(&serde_json::to_string(&Histogram::new()).expect("ser"))
                .expect("de");
        assert_eq!(empty, Histogram::new());
        assert_eq!(empty.quantile(0.99), 0);
    }
}
