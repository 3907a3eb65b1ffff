//! Each series' latest probe, and the raw results counted: per series since a time, in all.
//!
//! The reads behind `/api/v1/status` go from the (small) series table into the results through the
//! (series, time) index, never over the whole results table: their cost follows the number of
//! series and the rows of the window, not the table's size (a test below checks the plans).

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

/// Every edge row of each series' newest probe; the CROSS JOIN keeps series the outer loop.
const LATEST_SQL: &str =
    "SELECT s.host, s.path, s.region, s.resolver, r.at_ms, r.edge, r.failure, r.status, r.total_us
     FROM series s CROSS JOIN results r
       ON r.series_id = s.id
      AND r.at_ms = (SELECT MAX(at_ms) FROM results WHERE series_id = s.id)
     ORDER BY s.host, s.path, s.region, s.resolver, r.edge";

/// Results and failures per series since `?1`, each series' window read from the index.
const COUNTS_SINCE_SQL: &str =
    "SELECT s.host, s.path, s.region, s.resolver, COUNT(*), COUNT(r.failure)
     FROM series s CROSS JOIN results r ON r.series_id = s.id AND r.at_ms >= ?1
     GROUP BY s.id";

impl Store {
    /// Whether the database answers, at a constant cost (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .fetch_one(&self.reader)
            .await
            .map_err(query_err("asking the database"))?;
        Ok(())
    }

    /// Every edge row of each series' most recent probe.
    pub async fn latest(&self) -> Result<Vec<SeriesLatest>, StoreError> {
        let rows = sqlx::query(LATEST_SQL)
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
        let rows = sqlx::query(COUNTS_SINCE_SQL)
            .bind(since_ms)
            .fetch_all(&self.reader)
            .await
            .map_err(query_err("counting recent results"))?;
        Ok(rows
            .iter()
            .map(|row| {
                let count = |i| u64::try_from(row.get::<i64, _>(i)).unwrap_or(0);
                (SeriesKey::from_row(row), count(4), count(5))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan's steps, as SQLite words them.
    async fn plan(store: &Store, sql: &str) -> Vec<String> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
            .bind(0_i64)
            .fetch_all(&store.reader)
            .await
            .unwrap();
        rows.iter().map(|r| r.get::<String, _>(3)).collect()
    }

    #[tokio::test]
    async fn the_status_reads_search_the_series_index_and_never_scan_the_results() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cdnwatch.db")).await.unwrap();
        for sql in [LATEST_SQL, COUNTS_SINCE_SQL, "SELECT 1"] {
            let steps = plan(&store, sql).await;
            for step in &steps {
                assert!(
                    !step.starts_with("SCAN r") && !step.starts_with("SCAN results"),
                    "{sql}\n{steps:#?}"
                );
                if step.contains(" r ") || step.contains("results") {
                    assert!(step.contains("INDEX results_series_at"), "{steps:#?}");
                }
            }
        }
    }
}
