//! Minute and hour rollups, derived from the raw results behind a watermark.
//!
//! A minute is rolled up once it ended [`GRACE_MS`] ago (late results of a slow probe still land in
//! it); an hour once all its minutes are. The rollup rows and the advanced watermark are written in one
//! transaction, so after a crash the same period is simply rolled up again from the raw rows.
//! Results that arrive for a minute already rolled up (an agent's backlog after an outage) mark
//! it late (`late_minutes`); each call first rolls those again, and their hours, without moving
//! a watermark.

use std::collections::HashMap;

use futures_util::TryStreamExt as _;
use sqlx::{QueryBuilder, Row as _, Sqlite};

use super::agg::{Agg, RawTimes};
use super::{Store, StoreError, query_err};
use crate::model::Outcome;
use crate::period::{HOUR_MS, MINUTE_MS};
use crate::series::SeriesKey;

/// How long after a minute ends before it is rolled up.
pub const GRACE_MS: i64 = 60_000;
/// Rows per multi-row rollup INSERT (6 columns each).
const ROLLUP_ROWS_PER_INSERT: usize = 1_000;
/// Most periods rolled up per call, so one call holds the writer for a short while only.
const PERIODS_PER_CALL: usize = 30;

/// The two rollup tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// One row per series and minute.
    Minute,
    /// One row per series and hour.
    Hour,
}

impl Table {
    fn watermark(self) -> &'static str {
        match self {
            Table::Minute => "minute_done_ms",
            Table::Hour => "hour_done_ms",
        }
    }
}

/// What one rollup call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RollupReport {
    /// Minutes rolled up.
    pub minutes: usize,
    /// Hours rolled up.
    pub hours: usize,
}

fn floor(ms: i64, unit: i64) -> i64 {
    ms.div_euclid(unit) * unit
}

impl Store {
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

    async fn watermark(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.writer)
            .await
            .map_err(query_err("reading a rollup watermark"))?;
        Ok(row.map(|r| r.0))
    }

    /// Moves a watermark forward (never back): every period before it counts as rolled up.
    async fn set_watermark(&self, table: Table, to: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)")
            .bind(table.watermark())
            .bind(to)
            .execute(&self.writer)
            .await
            .map_err(query_err("advancing a rollup watermark"))?;
        Ok(())
    }

    /// Rolls up every minute (and then every hour) that is complete at `now_ms`, a bounded number
    /// per call. Call it periodically; it returns zeros once it has caught up.
    pub async fn roll_up(&self, now_ms: i64) -> Result<RollupReport, StoreError> {
        let mut report = RollupReport::default();
        self.roll_late(&mut report).await?;
        let ready = floor(now_ms - GRACE_MS, MINUTE_MS);
        while report.minutes < PERIODS_PER_CALL {
            let Some(start) = self.next_minute(ready).await? else {
                // Caught up: no result before `ready` is left, so every minute before it is done.
                self.set_watermark(Table::Minute, ready).await?;
                break;
            };
            self.roll_minute(start).await?;
            report.minutes += 1;
        }
        let minutes_done = self.watermark("minute_done_ms").await?.unwrap_or(i64::MIN);
        while report.hours < PERIODS_PER_CALL {
            let Some(start) = self.next_hour(minutes_done).await? else {
                break;
            };
            self.roll_hour(start).await?;
            report.hours += 1;
        }
        Ok(report)
    }

    /// Rolls again the minutes that received results after they were rolled up (an agent's
    /// backlog), and their hours when those were rolled up too; the watermarks stay where they are.
    async fn roll_late(&self, report: &mut RollupReport) -> Result<(), StoreError> {
        let late: Vec<(i64,)> =
            sqlx::query_as("SELECT start_ms FROM late_minutes ORDER BY start_ms LIMIT ?")
                .bind(PERIODS_PER_CALL as i64)
                .fetch_all(&self.writer)
                .await
                .map_err(query_err("reading the late minutes"))?;
        let hours_done = self.watermark("hour_done_ms").await?.unwrap_or(i64::MIN);
        let mut hours = Vec::new();
        for (start,) in late {
            self.roll_minute_with(start, false).await?;
            sqlx::query("DELETE FROM late_minutes WHERE start_ms = ?")
                .bind(start)
                .execute(&self.writer)
                .await
                .map_err(query_err("forgetting a late minute"))?;
            report.minutes += 1;
            let hour = floor(start, HOUR_MS);
            if hour < hours_done && !hours.contains(&hour) {
                hours.push(hour);
            }
        }
        for hour in hours {
            self.roll_hour_with(hour, false).await?;
            report.hours += 1;
        }
        Ok(())
    }

    /// The start of the next minute (before `ready`) with results not yet rolled up, skipping empty
    /// stretches; `None` when caught up.
    async fn next_minute(&self, ready: i64) -> Result<Option<i64>, StoreError> {
        let from = self.watermark("minute_done_ms").await?.unwrap_or(i64::MIN);
        let (next,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(at_ms) FROM results WHERE at_ms >= ? AND at_ms < ?")
                .bind(from)
                .bind(ready)
                .fetch_one(&self.writer)
                .await
                .map_err(query_err("finding the next minute to roll up"))?;
        Ok(next.map(|at| floor(at, MINUTE_MS)))
    }

    async fn roll_minute(&self, start: i64) -> Result<(), StoreError> {
        self.roll_minute_with(start, true).await
    }

    /// Rolls up the minute at `start` from its raw rows; `advance` moves the watermark past it.
    async fn roll_minute_with(&self, start: i64, advance: bool) -> Result<(), StoreError> {
        let mut rows = sqlx::query(
            "SELECT series_id, dns_us, connect_us, tls_us, first_byte_us, transfer_us, total_us, failure, status
             FROM results WHERE at_ms >= ? AND at_ms < ?",
        )
        .bind(start)
        .bind(start + MINUTE_MS)
        .fetch(&self.writer);
        let mut per_series: HashMap<i64, Agg> = HashMap::new();
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(query_err("reading a minute of results"))?
        {
            let outcome = match row.get::<Option<String>, _>(7) {
                None => None,
                Some(class) => {
                    Some(Outcome::from_columns(&class, row.get(8)).ok_or_else(|| {
                        StoreError::Corrupt {
                            what: "results failure",
                            detail: format!("series {}: `{class}`", row.get::<i64, _>(0)),
                        }
                    })?)
                }
            };
            let times = RawTimes {
                phases_us: [
                    row.get(1),
                    row.get(2),
                    row.get(3),
                    row.get(4),
                    row.get(5),
                    row.get(6),
                ],
                outcome,
            };
            per_series.entry(row.get(0)).or_default().add(times);
        }
        drop(rows);
        let end = advance.then_some(start + MINUTE_MS);
        self.write_rollups(Table::Minute, start, end, &per_series)
            .await
    }

    async fn next_hour(&self, minutes_done: i64) -> Result<Option<i64>, StoreError> {
        let from = self.watermark("hour_done_ms").await?.unwrap_or(i64::MIN);
        let (next,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(start_ms) FROM rollup_minute WHERE start_ms >= ?")
                .bind(from)
                .fetch_one(&self.writer)
                .await
                .map_err(query_err("finding the next hour to roll up"))?;
        let Some(first) = next else { return Ok(None) };
        let start = floor(first, HOUR_MS);
        Ok((start + HOUR_MS <= minutes_done).then_some(start))
    }

    async fn roll_hour(&self, start: i64) -> Result<(), StoreError> {
        self.roll_hour_with(start, true).await
    }

    /// Rolls up the hour at `start` from its minutes; `advance` moves the watermark past it.
    async fn roll_hour_with(&self, start: i64, advance: bool) -> Result<(), StoreError> {
        // Streamed, row by row into each series' sum: an hour of thousands of series is hundreds
        // of thousands of minute rows with their histograms, far too many to hold at once.
        let mut rows = sqlx::query(
            "SELECT series_id, count, failures, by_class, hist FROM rollup_minute WHERE start_ms >= ? AND start_ms < ?",
        )
        .bind(start)
        .bind(start + HOUR_MS)
        .fetch(&self.writer);
        let mut per_series: HashMap<i64, Agg> = HashMap::new();
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(query_err("reading an hour of minute rollups"))?
        {
            let by_class: Option<String> = row.get(3);
            let blob: &[u8] = row.get(4);
            let agg = Agg::from_row(row.get(1), row.get(2), by_class.as_deref(), blob).ok_or_else(
                || StoreError::Corrupt {
                    what: "rollup_minute",
                    detail: format!("series {} at {start}", row.get::<i64, _>(0)),
                },
            )?;
            per_series.entry(row.get(0)).or_default().merge(&agg);
        }
        drop(rows);
        let end = advance.then_some(start + HOUR_MS);
        self.write_rollups(Table::Hour, start, end, &per_series)
            .await
    }

    async fn write_rollups(
        &self,
        table: Table,
        start: i64,
        advance_to: Option<i64>,
        per_series: &HashMap<i64, Agg>,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(query_err("starting a rollup"))?;
        let rows: Vec<(i64, i64, &Agg)> = per_series
            .iter()
            .map(|(id, agg)| (*id, start, agg))
            .collect();
        insert_rollup_rows(&mut tx, table, &rows).await?;
        if let Some(end) = advance_to {
            sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
                .bind(table.watermark())
                .bind(end)
                .execute(&mut *tx)
                .await
                .map_err(query_err("advancing a rollup watermark"))?;
        }
        tx.commit().await.map_err(query_err("committing rollups"))
    }
}

async fn insert_rollup_rows(
    tx: &mut sqlx::SqliteConnection,
    table: Table,
    rows: &[(i64, i64, &Agg)],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROLLUP_ROWS_PER_INSERT) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(match table {
            Table::Minute => {
                "INSERT OR REPLACE INTO rollup_minute (series_id, start_ms, count, failures, by_class, hist) "
            }
            Table::Hour => {
                "INSERT OR REPLACE INTO rollup_hour (series_id, start_ms, count, failures, by_class, hist) "
            }
        });
        q.push_values(chunk, |mut b, (series, start, agg)| {
            b.push_bind(*series)
                .push_bind(*start)
                .push_bind(agg.count as i64)
                .push_bind(agg.failures as i64)
                .push_bind(agg.by_class_json())
                .push_bind(agg.hist_blob());
        });
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(query_err("writing rollups"))?;
    }
    Ok(())
}

impl Store {
    /// Writes ready-made rollup rows (for benchmarks that need months of history in seconds, and
    /// for imports); rows for an existing (series, start) replace it.
    pub async fn import_rollups(
        &self,
        table: Table,
        rows: &[(SeriesKey, i64, Agg)],
    ) -> Result<(), StoreError> {
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(query_err("starting an import"))?;
        let mut resolved = Vec::with_capacity(rows.len());
        for (key, start, agg) in rows {
            resolved.push((self.series_id(&mut tx, key.clone()).await?, *start, agg));
        }
        insert_rollup_rows(&mut tx, table, &resolved).await?;
        tx.commit().await.map_err(query_err("committing an import"))
    }
}
