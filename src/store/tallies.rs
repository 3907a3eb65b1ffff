//! Probes and failures counted over a window: per (host, path) from the raw rows not rolled up
//! yet, per (series, edge) for one host, and the edges each resolver served.

use sqlx::Row as _;

use super::{Store, StoreError, query_err};
use crate::series::SeriesKey;

/// Probes and failed probes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Probes counted.
    pub count: u64,
    /// Failed probes among them.
    pub failures: u64,
}

impl Tally {
    /// Adds `other`'s counts.
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

impl Store {
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
}
