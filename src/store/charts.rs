//! The rollups the charts read: one series' rows, one host's rows merged into buckets, and a cache
//! of hosts' chart buckets, so that a chart refreshed every 30 seconds reads only its newest
//! buckets instead of a day or a month of rollups.
//!
//! Buckets start at whole multiples of their width, so they stay the same from one request to the
//! next; a bucket that ends at or before its table's watermark is complete and never changes. The
//! cache keeps complete buckets per (host, table, width), encoded as rollup rows are (a few hundred
//! bytes each); a request reads the buckets after the last complete one it holds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use sqlx::Row as _;

use super::rollup::Table;
use super::{Agg, Store, StoreError, corrupt, merge_classes, merge_packed, query_err};
use crate::series::SeriesKey;

/// One bucket of a chart: the merged aggregate of every rollup row that starts in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// The bucket's start, Unix ms.
    pub start_ms: i64,
    /// Every row in it, merged.
    pub agg: Agg,
}

/// One rollup period of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// The period's start, Unix ms.
    pub start_ms: i64,
    /// The period's aggregate.
    pub agg: Agg,
}

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

impl Store {
    /// The rollup rows of one series in `[from_ms, to_ms)`, from the minute or the hour table.
    pub async fn rollups(
        &self,
        key: &SeriesKey,
        hourly: bool,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let (table, what) = match hourly {
            true => (Table::Hour, "rollup_hour"),
            false => (Table::Minute, "rollup_minute"),
        };
        let sql = per_table!(
            table,
            "SELECT r.start_ms, r.count, r.failures, r.by_class, r.hist FROM ",
            " r JOIN series s ON s.id = r.series_id
             WHERE s.host = ? AND s.path = ? AND s.region = ? AND s.resolver = ?
               AND r.start_ms >= ? AND r.start_ms < ? ORDER BY r.start_ms"
        );
        let rows = sqlx::query(sql)
            .bind(&key.host)
            .bind(&key.path)
            .bind(&key.region)
            .bind(&key.resolver)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.reader)
            .await
            .map_err(query_err("reading rollups"))?;
        rows.iter()
            .map(|row| {
                let by_class: Option<String> = row.get(3);
                let blob: Vec<u8> = row.get(4);
                let agg = Agg::from_row(row.get(1), row.get(2), by_class.as_deref(), &blob)
                    .ok_or_else(|| StoreError::Corrupt {
                        what,
                        detail: format!("{key:?}"),
                    })?;
                Ok(RollupRow {
                    start_ms: row.get(0),
                    agg,
                })
            })
            .collect()
    }

    /// One host's rollups of `table` in `[from_ms, to_ms)`, merged across its series into buckets
    /// of `bucket_ms` counted from `from_ms`: the points of its charts.
    pub async fn host_buckets(
        &self,
        host: &str,
        table: Table,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let sql = per_table!(
            table,
            "SELECT (r.start_ms - ?2) / ?4, TOTAL(r.count), TOTAL(r.failures),
                    '[' || group_concat(r.by_class, ',') || ']', CAST(group_concat(r.hist, '') AS BLOB)
             FROM series s CROSS JOIN ",
            " r ON r.series_id = s.id AND r.start_ms >= ?2 AND r.start_ms < ?3
             WHERE s.host = ?1 GROUP BY 1 ORDER BY 1"
        );
        let rows = sqlx::query(sql)
            .bind(host)
            .bind(from_ms)
            .bind(to_ms)
            .bind(bucket_ms.max(1))
            .fetch_all(&self.reader)
            .await
            .map_err(query_err("reading chart rollups"))?;
        rows.iter()
            .map(|row| {
                let start_ms = from_ms + row.get::<i64, _>(0) * bucket_ms;
                let mut agg = Agg {
                    count: row.get::<f64, _>(1) as u64,
                    failures: row.get::<f64, _>(2) as u64,
                    ..Agg::default()
                };
                let packed: Vec<u8> = row.get::<Option<Vec<u8>>, _>(4).unwrap_or_default();
                merge_packed(&mut agg, &packed)
                    .and_then(|()| merge_classes(&mut agg, row.get(3)))
                    .ok_or_else(|| corrupt("rollup row", format!("{host} at {start_ms}")))?;
                Ok(Bucket { start_ms, agg })
            })
            .collect()
    }
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
        // `done_ms` is i64::MIN before the first rollup: nothing is whole yet, and no overflow.
        let whole = (done_ms.min(to_ms).saturating_sub(read_from))
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
