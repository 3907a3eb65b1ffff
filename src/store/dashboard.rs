//! Read queries for the on-call pages: each series' newest probe, success tallies and latency over a
//! window, rollup buckets for charts, failure periods and phases for incident reports, the last
//! state change of each host.
//!
//! Two rules keep a page over thousands of series within milliseconds. SQLite aggregates, so few
//! rows cross into Rust (each row costs microseconds there, against tens of nanoseconds inside
//! SQLite); histograms of many rows travel as one concatenated blob (`group_concat(hist, '')`: the
//! encoding is self-delimiting). And queries walk each series' primary-key range (`series CROSS
//! JOIN rollup_… ON series_id`), reading its rows contiguously instead of looking each one up from
//! the time index. Windows over every series go through [`periods::PeriodCache`], and charts
//! through [`buckets::BucketCache`], which read each rolled-up period once.

/// SQL over one rollup table, `$before` + the table's name + `$after`, as a `&'static str`.
macro_rules! per_table {
    ($table:expr, $before:literal, $after:literal) => {
        match $table {
            Table::Minute => concat!($before, "rollup_minute", $after),
            Table::Hour => concat!($before, "rollup_hour", $after),
        }
    };
}

pub mod buckets;
mod failures;
pub mod periods;

pub use failures::{FailurePeriod, PhaseCount};

use std::collections::{BTreeMap, HashMap};

use sqlx::Row as _;

use super::hist::Histogram;
use super::rollup::Table;
use super::{Agg, SeriesKey, Store, StoreError, query_err};
use crate::engine::Event;
use crate::model::{FailureClass, Outcome, Phase};

/// One edge row of a series' newest probe, with every column the host page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRow {
    pub series: SeriesKey,
    pub at_ms: i64,
    /// The edge IP; `None` when DNS failed.
    pub edge: Option<String>,
    /// dns, connect, tls, first byte, transfer, total, in microseconds (`None`: not reached).
    pub phases_us: [Option<i64>; 6],
    pub status: Option<i64>,
    /// The leaf certificate's notAfter, Unix seconds.
    pub cert_not_after_s: Option<i64>,
    pub failure: Option<FailureClass>,
    pub phase: Option<Phase>,
    pub detail: Option<String>,
}

impl ProbeRow {
    /// The failure's outcome (with the status for `http_status`); `None` when the probe succeeded.
    pub fn outcome(&self) -> Option<Outcome> {
        let status = self.status.and_then(|s| u16::try_from(s).ok());
        self.failure.map(|c| Outcome::new(c, status))
    }
}

/// The newest probes of every (host, path, region) with one outcome (a failure class and status,
/// or success), counted: what the overview and path pages colour their cells by.
#[derive(Debug, Clone, PartialEq)]
pub struct NewestGroup {
    pub host: String,
    pub path: String,
    pub region: String,
    /// The failure, `None` for the successful probes.
    pub outcome: Option<Outcome>,
    /// Edge probes with this outcome.
    pub count: u64,
    /// The earliest certificate notAfter among them, Unix seconds.
    pub cert_not_after_s: Option<i64>,
    pub newest_at_ms: i64,
}

/// Probes and failed probes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub failures: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.count += other.count;
        self.failures += other.failures;
    }

    /// Successful / all; `None` when nothing was probed.
    pub fn success_ratio(&self) -> Option<f64> {
        (self.count > 0)
            .then(|| self.count.saturating_sub(self.failures) as f64 / self.count as f64)
    }
}

/// One (host, path)'s probes in one rollup period: counts and the total-time histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodSum {
    pub start_ms: i64,
    pub host: String,
    pub path: String,
    pub tally: Tally,
    /// Total time of the successful probes.
    pub total: Histogram,
}

/// One bucket of a chart: the merged aggregate of every rollup row that starts in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub start_ms: i64,
    pub agg: Agg,
}

/// Merges rows' histograms packed back to back (six per row) into `agg`.
fn merge_packed(agg: &mut Agg, mut packed: &[u8]) -> Option<()> {
    while !packed.is_empty() {
        packed = agg.merge_hists(packed)?;
    }
    Some(())
}

/// Adds `by_class` objects packed as a JSON array (`[{"dns_timeout":2},…]`) to `agg`.
pub(super) fn merge_classes(agg: &mut Agg, packed: Option<&str>) -> Option<()> {
    let Some(json) = packed else { return Some(()) };
    let maps: Vec<BTreeMap<Outcome, u64>> = serde_json::from_str(json).ok()?;
    for (class, n) in maps.into_iter().flatten() {
        *agg.by_class.entry(class).or_default() += n;
    }
    Some(())
}

/// A `failure` column read as its class.
fn failure_column(class: Option<&str>) -> Result<Option<FailureClass>, StoreError> {
    class
        .map(|c| FailureClass::parse(c).ok_or_else(|| corrupt("results failure", format!("`{c}`"))))
        .transpose()
}

pub(super) fn corrupt(what: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { what, detail }
}

/// The rows of each series' newest probe, as `series s` and `results r`. A freshness test on them
/// is written `+r.at_ms`, which keeps it off the index: the index must serve the equality.
macro_rules! newest_probe_rows {
    () => {
        " FROM series s CROSS JOIN results r
            ON r.series_id = s.id
           AND r.at_ms = (SELECT MAX(at_ms) FROM results WHERE series_id = s.id) "
    };
}

impl Store {
    /// Runs `sql`, whose `?1` is a host (NULL: every host) and `?2`, `?3` a window's bounds.
    pub(super) async fn in_window(
        &self,
        sql: &'static str,
        host: Option<&str>,
        (from_ms, to_ms): (i64, i64),
        what: &'static str,
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
        sqlx::query(sql)
            .bind(host)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.reader)
            .await
            .map_err(query_err(what))
    }

    /// The rollup watermarks: (minutes done before, hours done before), Unix ms.
    pub async fn watermarks(&self) -> Result<(Option<i64>, Option<i64>), StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT key, value FROM meta WHERE key IN ('minute_done_ms', 'hour_done_ms')",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading the rollup watermarks"))?;
        let get = |k: &str| rows.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        Ok((get("minute_done_ms"), get("hour_done_ms")))
    }

    /// Every edge row of one host's series' newest probes that started at or after
    /// `fresh_since_ms`.
    pub async fn newest_probes(
        &self,
        host: &str,
        fresh_since_ms: i64,
    ) -> Result<Vec<ProbeRow>, StoreError> {
        let rows = sqlx::query(
            concat!(
                "SELECT s.host, s.path, s.region, s.resolver, r.at_ms, r.edge, r.dns_us,
                        r.connect_us, r.tls_us, r.first_byte_us, r.transfer_us, r.total_us, r.status,
                        r.cert_not_after, r.failure, r.phase, r.detail",
                newest_probe_rows!(),
                "WHERE s.host = ?1 AND +r.at_ms >= ?2 ORDER BY s.region, s.resolver, s.path, r.edge"
            ),
        )
        .bind(host)
        .bind(fresh_since_ms)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading the newest probes"))?;
        rows.iter()
            .map(|row| {
                Ok(ProbeRow {
                    series: SeriesKey::from_row(row),
                    at_ms: row.get(4),
                    edge: row.get(5),
                    phases_us: [6, 7, 8, 9, 10, 11].map(|i| row.get(i)),
                    status: row.get(12),
                    cert_not_after_s: row.get(13),
                    failure: failure_column(row.get(14))?,
                    phase: row.get::<Option<&str>, _>(15).and_then(Phase::parse),
                    detail: row.get(16),
                })
            })
            .collect()
    }

    /// Every series' newest probe (when it started at or after `fresh_since_ms`), counted per
    /// (host, path, region) and outcome.
    pub async fn newest_groups(&self, fresh_since_ms: i64) -> Result<Vec<NewestGroup>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT s.host, s.path, s.region, r.failure, r.status, COUNT(*),
                        MIN(r.cert_not_after), MAX(r.at_ms)",
            newest_probe_rows!(),
            "WHERE +r.at_ms >= ?1 GROUP BY 1, 2, 3, 4, 5"
        ))
        .bind(fresh_since_ms)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading the newest probes"))?;
        rows.iter()
            .map(|row| {
                let status = row
                    .get::<Option<i64>, _>(4)
                    .and_then(|s| u16::try_from(s).ok());
                Ok(NewestGroup {
                    host: row.get(0),
                    path: row.get(1),
                    region: row.get(2),
                    outcome: failure_column(row.get(3))?.map(|c| Outcome::new(c, status)),
                    count: row.get::<i64, _>(5) as u64,
                    cert_not_after_s: row.get(6),
                    newest_at_ms: row.get(7),
                })
            })
            .collect()
    }

    /// Per (period, host, path): probes, failures and the total-time histogram of the rollup rows
    /// in `[from_ms, to_ms)` of `table`.
    pub async fn period_sums(
        &self,
        table: Table,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<PeriodSum>, StoreError> {
        let sql = per_table!(
            table,
            "SELECT r.start_ms, s.host, s.path, TOTAL(r.count), TOTAL(r.failures),
                    CAST(group_concat(r.hist, '') AS BLOB)
             FROM series s CROSS JOIN ",
            " r ON r.series_id = s.id AND r.start_ms >= ?2 AND r.start_ms < ?3
             GROUP BY 1, 2, 3"
        );
        let rows = self
            .in_window(sql, None, (from_ms, to_ms), "summing rollup periods")
            .await?;
        rows.iter()
            .map(|row| {
                let mut agg = Agg::default();
                let packed: Vec<u8> = row.get::<Option<Vec<u8>>, _>(5).unwrap_or_default();
                merge_packed(&mut agg, &packed).ok_or_else(|| {
                    corrupt("rollup hist", format!("period {}", row.get::<i64, _>(0)))
                })?;
                let [.., total] = agg.hists;
                Ok(PeriodSum {
                    start_ms: row.get(0),
                    host: row.get(1),
                    path: row.get(2),
                    tally: Tally {
                        count: row.get::<f64, _>(3) as u64,
                        failures: row.get::<f64, _>(4) as u64,
                    },
                    total,
                })
            })
            .collect()
    }

    /// Probes and failures per (host, path) in the raw rows of `[from_ms, to_ms)` (the last minutes,
    /// not rolled up yet), split at `split_ms`: those before it, and those from it on.
    pub async fn raw_tallies(
        &self,
        from_ms: i64,
        split_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, String, Tally, Tally)>, StoreError> {
        // Two index-only reads instead of one that looks up every row: the probes from the
        // (series, time) index, the failures from the partial index of failed results. One
        // statement, so both see the same rows.
        let rows = sqlx::query(
            "SELECT host, path, SUM(n1), SUM(f1), SUM(n2), SUM(f2) FROM (
               SELECT s.host, s.path, SUM(r.at_ms < ?2) AS n1, 0 AS f1, SUM(r.at_ms >= ?2) AS n2, 0 AS f2
               FROM series s CROSS JOIN results r
                 ON r.series_id = s.id AND r.at_ms >= ?1 AND r.at_ms < ?3
               GROUP BY 1, 2
               UNION ALL
               SELECT s.host, s.path, 0, SUM(r.at_ms < ?2), 0, SUM(r.at_ms >= ?2)
               FROM results r INDEXED BY results_failed_at JOIN series s ON s.id = r.series_id
               WHERE r.failure IS NOT NULL AND r.at_ms >= ?1 AND r.at_ms < ?3
               GROUP BY 1, 2)
             GROUP BY 1, 2",
        )
        .bind(from_ms)
        .bind(split_ms)
        .bind(to_ms)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("tallying recent results"))?;
        let tally = |row: &sqlx::sqlite::SqliteRow, i: usize| Tally {
            count: row.get::<i64, _>(i) as u64,
            failures: row.get::<i64, _>(i + 1) as u64,
        };
        Ok(rows
            .iter()
            .map(|row| (row.get(0), row.get(1), tally(row, 2), tally(row, 4)))
            .collect())
    }

    /// Probes and failures per (series, edge) of one host in `[from_ms, to_ms)`, from the raw rows
    /// (kept 48 h by default): the rolling success of each edge.
    pub async fn edge_tallies(
        &self,
        host: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(SeriesKey, Option<String>, Tally)>, StoreError> {
        let rows = self.in_window("SELECT s.host, s.path, s.region, s.resolver, r.edge, COUNT(*), COUNT(r.failure)
             FROM series s CROSS JOIN results r ON r.series_id = s.id AND r.at_ms >= ?2 AND r.at_ms < ?3
             WHERE s.host = ?1 GROUP BY s.id, r.edge", Some(host), (from_ms, to_ms), "tallying edges").await?;
        Ok(rows
            .iter()
            .map(|row| {
                let tally = Tally {
                    count: row.get::<i64, _>(5) as u64,
                    failures: row.get::<i64, _>(6) as u64,
                };
                (SeriesKey::from_row(row), row.get(4), tally)
            })
            .collect())
    }

    /// The edge IPs each (region, resolver) of one host answered in `[from_ms, to_ms)`, from the
    /// raw rows: what the resolvers served before, to tell a stale answer from a new one.
    pub async fn served_edges(
        &self,
        host: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let sql = "SELECT DISTINCT s.region, s.resolver, r.edge
             FROM series s CROSS JOIN results r ON r.series_id = s.id AND r.at_ms >= ?2 AND r.at_ms < ?3
             WHERE s.host = ?1 AND r.edge IS NOT NULL";
        let rows = self
            .in_window(
                sql,
                Some(host),
                (from_ms, to_ms),
                "reading the edges served",
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
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

    /// Each of `hosts`' newest event that changed its enabled flag, with the version it produced.
    pub async fn last_changes(
        &self,
        hosts: &[String],
    ) -> Result<HashMap<String, (Event, Option<i64>)>, StoreError> {
        let list = serde_json::to_string(hosts).expect("strings serialize");
        let rows = sqlx::query(
            "SELECT e.at_ms, e.host, e.old_enabled, e.new_enabled, e.reason, e.detail, e.evidence,
                    e.samples, e.version
             FROM json_each(?1) h CROSS JOIN events e ON e.id = (
               SELECT id FROM events WHERE host = h.value AND new_enabled IS NOT NULL
               ORDER BY at_ms DESC, id DESC LIMIT 1)",
        )
        .bind(list)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading the last state changes"))?;
        rows.iter()
            .map(|r| {
                let (event, version) = super::publish::event_row(r)?;
                Ok((event.host.clone().unwrap_or_default(), (event, version)))
            })
            .collect()
    }

    /// Whether any event names `host` (a host no longer configured can still be looked up).
    pub async fn host_has_events(&self, host: &str) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM events WHERE host = ? LIMIT 1")
            .bind(host)
            .fetch_optional(&self.reader)
            .await
            .map_err(query_err("looking up a host's events"))?;
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests;
