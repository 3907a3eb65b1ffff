//! Each series' latest probe, and the raw results counted: per series since a time, in all.

use sqlx::Row as _;

use super::{Store, StoreError, query_err};
use crate::series::SeriesKey;

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
}

/// One edge row of a series' most recent probe.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeriesLatest {
    /// The series.
    pub series: SeriesKey,
    /// When the probe started, Unix ms.
    pub at_ms: i64,
    /// The edge IP; `None` when DNS failed.
    pub edge: Option<String>,
    /// The failure class as stored; `None` for a success.
    pub failure: Option<String>,
    /// The HTTP status, when there was one.
    pub status: Option<i64>,
    /// From connect to the end of the body, plus DNS.
    pub total_ms: Option<f64>,
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
