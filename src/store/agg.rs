//! The aggregate of a set of results: counts, failures by class and one latency histogram per phase.

use std::collections::BTreeMap;

use crate::hist::Histogram;
use crate::model::Outcome;

/// Counts and latency distributions of one series over one period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agg {
    /// Results counted.
    pub count: u64,
    /// Failed results among them.
    pub failures: u64,
    /// Failures by outcome: `http_status` is split by code because a 403 and a 502 mean different
    /// things to on-call (stored keyed by [`Outcome::key`], `http_status:502`).
    pub by_class: BTreeMap<Outcome, u64>,
    /// Latency per phase: dns, connect, tls, first byte, transfer, total (successful probes only).
    pub hists: [Histogram; 6],
}

/// The columns of one raw result that an aggregate needs.
#[derive(Debug, Clone, Copy)]
pub struct RawTimes {
    /// dns, connect, tls, first byte, transfer, total, in microseconds (`None`: not reached).
    pub phases_us: [Option<i64>; 6],
    /// The failure, `None` for a successful probe.
    pub outcome: Option<Outcome>,
}

impl Agg {
    /// Counts one result.
    pub fn add(&mut self, r: RawTimes) {
        self.count += 1;
        if let Some(outcome) = r.outcome {
            self.failures += 1;
            *self.by_class.entry(outcome).or_default() += 1;
        }
        for (i, us) in r.phases_us.iter().enumerate() {
            let is_total = i == 5;
            if let Some(us) = us
                && (!is_total || r.outcome.is_none())
            {
                self.hists[i].record_ms(*us as f64 / 1000.0);
            }
        }
    }

    /// Adds `other` to this aggregate.
    pub fn merge(&mut self, other: &Agg) {
        self.count += other.count;
        self.failures += other.failures;
        for (k, v) in &other.by_class {
            *self.by_class.entry(*k).or_default() += v;
        }
        for (a, b) in self.hists.iter_mut().zip(&other.hists) {
            a.merge(b);
        }
    }

    /// The six histograms, encoded back to back (a rollup row's `hist` column).
    pub fn hist_blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        for h in &self.hists {
            h.encode(&mut out);
        }
        out
    }

    /// `by_class` as the JSON a rollup row stores; `None` when there were no failures.
    pub fn by_class_json(&self) -> Option<String> {
        (!self.by_class.is_empty())
            .then(|| serde_json::to_string(&self.by_class).expect("map serializes"))
    }

    /// Rebuilds an aggregate from a rollup row's columns; `None` if the blob or JSON is malformed.
    pub fn from_row(count: i64, failures: i64, by_class: Option<&str>, blob: &[u8]) -> Option<Agg> {
        let by_class = match by_class {
            Some(j) => serde_json::from_str(j).ok()?,
            None => BTreeMap::new(),
        };
        let mut agg = Agg {
            count: count as u64,
            failures: failures as u64,
            by_class,
            hists: Default::default(),
        };
        agg.merge_hists(blob)?;
        Some(agg)
    }

    /// Adds one row's six histograms from the front of `blob`, returning the rest (rows' blobs can
    /// be read back to back, as `group_concat(hist, '')` returns them).
    pub fn merge_hists<'a>(&mut self, blob: &'a [u8]) -> Option<&'a [u8]> {
        let mut rest = blob;
        for h in self.hists.iter_mut() {
            rest = h.merge_encoded(rest)?;
        }
        Some(rest)
    }

    /// The share of results that did not fail; `None` for no results.
    pub fn success_ratio(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.count - self.failures) as f64 / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FailureClass;

    fn key(k: &str) -> Outcome {
        Outcome::parse_key(k).unwrap()
    }

    #[test]
    fn an_aggregate_survives_its_row_encoding() {
        let mut a = Agg::default();
        a.add(RawTimes {
            phases_us: [
                Some(400),
                Some(200),
                Some(900),
                Some(600),
                Some(50),
                Some(2150),
            ],
            outcome: None,
        });
        a.add(RawTimes {
            phases_us: [Some(450), Some(210), None, None, None, Some(5000)],
            outcome: Some(Outcome::new(FailureClass::TlsCertExpired, None)),
        });
        a.add(RawTimes {
            phases_us: [Some(450), Some(210), Some(800), Some(700), None, Some(2500)],
            outcome: Some(Outcome::new(FailureClass::HttpStatus, Some(502))),
        });
        assert_eq!((a.count, a.failures), (3, 2));
        assert_eq!(a.by_class.get(&key("http_status:502")), Some(&1));
        assert_eq!(a.hists[5].count(), 1, "total latency counts successes only");
        let back = Agg::from_row(3, 2, a.by_class_json().as_deref(), &a.hist_blob()).unwrap();
        assert_eq!(back, a);
    }
}
