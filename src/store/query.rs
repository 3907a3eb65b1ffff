//! Read queries: the latest result per series, success ratios, rollup series for charts.

use sqlx::Row as _;

use super::agg::Agg;
use super::{Store, StoreError, query_err};
use crate::model::EdgeResult;

/// The four names that identify a probe series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct SeriesKey {
    pub host: String,
    pub path: String,
    pub region: String,
    pub resolver: String,
}

impl SeriesKey {
    /// The key of a row whose first four columns are host, path, region and resolver.
    pub(crate) fn from_row(row: &sqlx::sqlite::SqliteRow) -> SeriesKey {
        SeriesKey {
            host: row.get(0),
            path: row.get(1),
            region: row.get(2),
            resolver: row.get(3),
        }
    }

    pub fn of(r: &EdgeResult) -> SeriesKey {
        SeriesKey {
            host: r.host.clone(),
            path: r.path.clone(),
            region: r.region.clone(),
            resolver: r.resolver.clone(),
        }
    }
}

/// One edge row of a series' most recent probe.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeriesLatest {
    pub series: SeriesKey,
    pub at_ms: i64,
    pub edge: Option<String>,
    pub failure: Option<String>,
    pub status: Option<i64>,
    pub total_ms: Option<f64>,
}

/// One rollup period of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    pub start_ms: i64,
    pub agg: Agg,
}

impl Store {
    /// Every edge row of each series' most recent probe.
    pub async fn latest(&self) -> Result<Vec<SeriesLatest>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.host, s.path, s.region, s.resolver, r.at_ms, r.edge, r.failure, r.status, r.total_us
             FROM series s JOIN results r ON r.series_id = s.id
             WHERE r.at_ms = (SELECT MAX(at_ms) FROM results WHERE series_id = s.id)
             ORDER BY s.host, s.path, s.region, s.resolver, r.edge",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading the latest results"))?;
        Ok(rows
            .iter()
            .map(|row| SeriesLatest {
                series: SeriesKey::from_row(row),
                at_ms: row.get(4),
                edge: row.get(5),
                failure: row.get(6),
                status: row.get(7),
                total_ms: row.get::<Option<i64>, _>(8).map(|us| us as f64 / 1000.0),
            })
            .collect())
    }

    /// Results and failures per series since `since_ms`, from the raw rows.
    pub async fn counts_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(SeriesKey, u64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.host, s.path, s.region, s.resolver, c.n, c.failed FROM
               (SELECT series_id, COUNT(*) AS n, COUNT(failure) AS failed FROM results WHERE at_ms >= ? GROUP BY series_id) c
             JOIN series s ON s.id = c.series_id",
        )
        .bind(since_ms)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("counting recent results"))?;
        Ok(rows
            .iter()
            .map(|row| {
                let key = SeriesKey {
                    host: row.get(0),
                    path: row.get(1),
                    region: row.get(2),
                    resolver: row.get(3),
                };
                (
                    key,
                    row.get::<i64, _>(4) as u64,
                    row.get::<i64, _>(5) as u64,
                )
            })
            .collect())
    }

    /// The rollup rows of one series in `[from_ms, to_ms)`, from the minute or the hour table.
    pub async fn rollups(
        &self,
        key: &SeriesKey,
        hourly: bool,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let (table, sql) = if hourly {
            (
                "rollup_hour",
                concat!(
                    "SELECT r.start_ms, r.count, r.failures, r.by_class, r.hist FROM rollup_hour r JOIN series s ON s.id = r.series_id ",
                    "WHERE s.host = ? AND s.path = ? AND s.region = ? AND s.resolver = ? AND r.start_ms >= ? AND r.start_ms < ? ORDER BY r.start_ms"
                ),
            )
        } else {
            (
                "rollup_minute",
                concat!(
                    "SELECT r.start_ms, r.count, r.failures, r.by_class, r.hist FROM rollup_minute r JOIN series s ON s.id = r.series_id ",
                    "WHERE s.host = ? AND s.path = ? AND s.region = ? AND s.resolver = ? AND r.start_ms >= ? AND r.start_ms < ? ORDER BY r.start_ms"
                ),
            )
        };
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
                        what: table,
                        detail: format!("{key:?}"),
                    })?;
                Ok(RollupRow {
                    start_ms: row.get(0),
                    agg,
                })
            })
            .collect()
    }

    /// The number of raw results stored.
    pub async fn result_count(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM results")
            .fetch_one(&self.reader)
            .await
            .map_err(query_err("counting results"))?;
        Ok(n)
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let (verdict,): (String,) = sqlx::query_as("PRAGMA integrity_check")
            .fetch_one(&self.reader)
            .await
            .map_err(query_err("checking integrity"))?;
        Ok(verdict)
    }
}
