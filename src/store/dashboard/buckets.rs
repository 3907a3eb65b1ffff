//! A cache of hosts' chart buckets, so that a chart refreshed every 30 seconds reads only its
//! newest buckets instead of a day or a month of rollups.
//!
//! Buckets start at whole multiples of their width, so they stay the same from one request to the
//! next; a bucket that ends at or before its table's watermark is complete and never changes. The
//! cache keeps complete buckets per (host, table, width), encoded as rollup rows are (a few hundred
//! bytes each); a request reads the buckets after the last complete one it holds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{Agg, Bucket};
use crate::store::rollup::Table;
use crate::store::{Store, StoreError};

/// A bucket as a rollup row stores it: count, failures, classes as JSON, histograms as bytes.
type Encoded = (i64, i64, Option<String>, Vec<u8>);

/// One chart's complete buckets.
#[derive(Debug, Default, Clone)]
struct Chart {
    /// Every complete bucket in `[from, to)` is in `buckets` (an empty one is simply absent).
    from: i64,
    to: i64,
    buckets: BTreeMap<i64, Encoded>,
}

/// (host, hourly, bucket width).
type Key = (String, bool, i64);

/// Complete chart buckets per (host, table, bucket width); share one per process.
#[derive(Debug, Default)]
pub struct BucketCache {
    charts: Mutex<HashMap<Key, Chart>>,
}

fn encode(agg: &Agg) -> Encoded {
    (
        agg.count as i64,
        agg.failures as i64,
        agg.by_class_json(),
        agg.hist_blob(),
    )
}

impl BucketCache {
    /// `host`'s buckets of `bucket_ms` (a whole multiple of the table's period) in
    /// `[from_ms, to_ms)`, `from_ms` a whole multiple of `bucket_ms`; buckets ending at or before
    /// `done_ms` (the table's watermark) are complete and kept.
    pub async fn buckets(
        &self,
        store: &Store,
        host: &str,
        table: Table,
        (from_ms, to_ms): (i64, i64),
        bucket_ms: i64,
        done_ms: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let key: Key = (host.to_string(), table == Table::Hour, bucket_ms);
        let (held, read_from) = self.held(&key, from_ms, to_ms);
        let fresh = store
            .host_buckets(host, table, read_from, to_ms, bucket_ms)
            .await?;
        let whole = (done_ms.min(to_ms) - read_from)
            .max(0)
            .div_euclid(bucket_ms);
        self.keep(
            key,
            &fresh,
            (read_from, read_from + whole * bucket_ms),
            from_ms,
            bucket_ms,
        );
        let mut out = Vec::with_capacity(held.len() + fresh.len());
        for (start_ms, (count, failures, by_class, blob)) in held {
            let agg =
                Agg::from_row(count, failures, by_class.as_deref(), &blob).ok_or_else(|| {
                    StoreError::Corrupt {
                        what: "chart cache",
                        detail: format!("{host} at {start_ms}"),
                    }
                })?;
            out.push(Bucket { start_ms, agg });
        }
        out.extend(fresh);
        Ok(out)
    }

    /// The complete buckets held for `[from_ms, to_ms)`, copied out (no lock is held while
    /// reading the store), and where the buckets still to read start.
    fn held(&self, key: &Key, from_ms: i64, to_ms: i64) -> (Vec<(i64, Encoded)>, i64) {
        let charts = self.charts.lock().expect("bucket cache");
        match charts.get(key) {
            Some(c) if c.from <= from_ms && c.to > from_ms => {
                let to = c.to.min(to_ms);
                let held = c
                    .buckets
                    .range(from_ms..to)
                    .map(|(k, v)| (*k, v.clone()))
                    .collect();
                (held, to)
            }
            _ => (Vec::new(), from_ms),
        }
    }

    /// Keeps the complete buckets among those just read (`read` = where they started, where the
    /// complete ones end), after the chart's held ones when they join up, else instead of them.
    fn keep(&self, key: Key, fresh: &[Bucket], read: (i64, i64), from_ms: i64, bucket_ms: i64) {
        let (read_from, complete_to) = read;
        let mut charts = self.charts.lock().expect("bucket cache");
        let chart = charts.entry(key).or_default();
        let joins = chart.from <= from_ms && chart.to >= read_from && chart.to > chart.from;
        if !joins {
            *chart = Chart {
                from: read_from,
                to: read_from,
                buckets: BTreeMap::new(),
            };
        }
        for b in fresh
            .iter()
            .filter(|b| b.start_ms + bucket_ms <= complete_to)
        {
            chart.buckets.insert(b.start_ms, encode(&b.agg));
        }
        chart.to = chart.to.max(complete_to);
        // A later request starts later: what is before this one's start is not asked again.
        chart.buckets = chart.buckets.split_off(&from_ms);
        chart.from = chart.from.max(from_ms).min(chart.to);
    }
}
