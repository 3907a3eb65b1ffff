//! A compact latency histogram for rollups: log-scale buckets, mergeable, serialized sparsely.
//!
//! Written by hand because the rollup rows need a tiny, stable byte encoding that SQLite stores as a
//! BLOB and that merges by addition (minute rows add up to hour rows); HDR-style crates carry far
//! more state per histogram than a rollup row can afford.

/// Buckets per doubling: 4 gives bucket bounds 19 % apart, so a percentile read from the histogram is
/// within about ±9 % of the true value.
const PER_DOUBLING: f64 = 4.0;
/// The lower bound of bucket 1, in microseconds; bucket 0 holds everything below it.
const FLOOR_US: f64 = 10.0;
/// 10 µs × 2^(120/4) ≈ 3 hours: far above any probe timeout.
pub const BUCKETS: usize = 121;

/// Counts per bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u32>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
        }
    }
}

fn bucket_of(us: f64) -> usize {
    if us < FLOOR_US {
        return 0;
    }
    let idx = 1.0 + ((us / FLOOR_US).log2() * PER_DOUBLING).floor();
    (idx as usize).min(BUCKETS - 1)
}

/// The value a bucket stands for: the geometric middle of its bounds (the floor for bucket 0).
fn representative_us(bucket: usize) -> f64 {
    if bucket == 0 {
        return FLOOR_US / 2.0;
    }
    let lower = FLOOR_US * 2f64.powf((bucket as f64 - 1.0) / PER_DOUBLING);
    lower * 2f64.powf(0.5 / PER_DOUBLING)
}

impl Histogram {
    /// Counts one value, in milliseconds.
    pub fn record_ms(&mut self, ms: f64) {
        let b = bucket_of(ms * 1000.0);
        self.counts[b] = self.counts[b].saturating_add(1);
    }

    /// Adds `other`'s counts to this one's.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }

    /// Cumulative counts at every doubling of the floor, `(upper bound in seconds, values below it)`,
    /// from `10 µs × 2^first` to `10 µs × 2^last`: each bound is a bucket edge, so the counts are
    /// exact (a Prometheus histogram's `le` buckets, read from this one at scrape time).
    pub fn cumulative_at_doublings(&self, first: u32, last: u32) -> Vec<(f64, u64)> {
        (first..=last)
            .map(|k| {
                // Buckets 0..=4k end at or below 10 µs × 2^k.
                let end = (k as usize * PER_DOUBLING as usize + 1).min(BUCKETS);
                let below = self.counts[..end].iter().map(|c| u64::from(*c)).sum();
                (FLOOR_US * 2f64.powi(k as i32) / 1e6, below)
            })
            .collect()
    }

    /// The q-quantile (0..=1) in milliseconds, or `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (b, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(representative_us(b) / 1000.0);
            }
        }
        None
    }

    /// Sparse encoding: for each non-empty bucket, its index (1 byte) and its count (LEB128).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let used = self.counts.iter().filter(|c| **c > 0).count();
        out.push(used as u8);
        for (b, c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            out.push(b as u8);
            let mut v = *c;
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
        }
    }

    /// Adds one encoded histogram from the front of `bytes` to this one without allocating,
    /// returning the rest; `None` (and a partly merged histogram) if the bytes are malformed.
    pub fn merge_encoded<'a>(&mut self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let (&used, mut rest) = bytes.split_first()?;
        for _ in 0..used {
            let (&b, r) = rest.split_first()?;
            let (v, r) = read_leb128(r)?;
            rest = r;
            let slot = self.counts.get_mut(usize::from(b))?;
            *slot = slot.saturating_add(v);
        }
        Some(rest)
    }

    /// Reads one histogram from the front of `bytes`, returning it and the rest.
    pub fn decode(bytes: &[u8]) -> Option<(Histogram, &[u8])> {
        let mut h = Histogram::default();
        let rest = h.merge_encoded(bytes)?;
        Some((h, rest))
    }
}

/// One LEB128 count from the front of `bytes`, and the rest.
fn read_leb128(mut rest: &[u8]) -> Option<(u32, &[u8])> {
    let (mut v, mut shift) = (0u32, 0u32);
    loop {
        let (&byte, r) = rest.split_first()?;
        rest = r;
        v |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some((v, rest));
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_ten_percent_of_the_true_value() {
        let mut h = Histogram::default();
        let values: Vec<f64> = (1..=1000).map(|i| i as f64 * 0.37).collect();
        for v in &values {
            h.record_ms(*v);
        }
        for (q, truth) in [(0.5, values[499]), (0.95, values[949]), (0.99, values[989])] {
            let got = h.quantile_ms(q).unwrap();
            assert!((got - truth).abs() / truth < 0.10, "q{q}: {got} vs {truth}");
        }
    }

    #[test]
    fn encoding_round_trips_and_is_small() {
        let mut h = Histogram::default();
        for ms in [0.001, 0.4, 0.41, 2.5, 150.0, 150.0, 9_999_999.0] {
            h.record_ms(ms);
        }
        for _ in 0..300 {
            h.record_ms(1.0);
        }
        let mut buf = Vec::new();
        h.encode(&mut buf);
        assert!(buf.len() < 20, "{} bytes", buf.len());
        buf.extend_from_slice(b"tail");
        let (back, rest) = Histogram::decode(&buf).unwrap();
        assert_eq!(back, h);
        assert_eq!(rest, b"tail");
    }

    #[test]
    fn merged_histograms_add_up() {
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        a.record_ms(1.0);
        b.record_ms(1.0);
        b.record_ms(100.0);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!(a.quantile_ms(1.0).unwrap() > 90.0);
    }

    #[test]
    fn cumulative_counts_at_doublings_count_every_value_below_each_bound() {
        let mut h = Histogram::default();
        // 10 µs × 2^k bounds: 80 µs, 160 µs, 320 µs, 640 µs …
        for ms in [0.05, 0.1, 0.15, 0.3, 0.3, 5.0] {
            h.record_ms(ms);
        }
        let c = h.cumulative_at_doublings(3, 6);
        let bounds: Vec<f64> = c.iter().map(|(b, _)| *b).collect();
        assert_eq!(bounds, vec![0.00008, 0.00016, 0.00032, 0.00064]);
        let counts: Vec<u64> = c.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, vec![1, 3, 5, 5]);
        assert_eq!(h.cumulative_at_doublings(0, 30).last().unwrap().1, 6);
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(Histogram::decode(&[]).is_none());
        assert!(
            Histogram::decode(&[1, 200, 1]).is_none(),
            "bucket index out of range"
        );
        assert!(
            Histogram::decode(&[1, 3, 0x80]).is_none(),
            "truncated count"
        );
    }
}
