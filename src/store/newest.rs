//! Each series' newest probe as the on-call pages read it: every edge row of one host's, and every
//! host's counted per (host, path, region) and outcome.

use sqlx::Row as _;

use super::{Store, StoreError, corrupt, query_err};
use crate::model::{FailureClass, Outcome, Phase};
use crate::series::SeriesKey;

/// One edge row of a series' newest probe, with every column the host page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRow {
    /// The series.
    pub series: SeriesKey,
    /// When the probe started, Unix ms.
    pub at_ms: i64,
    /// The edge IP; `None` when DNS failed.
    pub edge: Option<String>,
    /// dns, connect, tls, first byte, transfer, total, in microseconds (`None`: not reached).
    pub phases_us: [Option<i64>; 6],
    /// The HTTP status, when there was one.
    pub status: Option<i64>,
    /// The leaf certificate's notAfter, Unix seconds.
    pub cert_not_after_s: Option<i64>,
    /// The failure class; `None` for a success.
    pub failure: Option<FailureClass>,
    /// The phase it failed in.
    pub phase: Option<Phase>,
    /// What happened, in words.
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
    /// The host's domain.
    pub host: String,
    /// The probe path.
    pub path: String,
    /// The region.
    pub region: String,
    /// The failure, `None` for the successful probes.
    pub outcome: Option<Outcome>,
    /// Edge probes with this outcome.
    pub count: u64,
    /// The earliest certificate notAfter among them, Unix seconds.
    pub cert_not_after_s: Option<i64>,
    /// The newest probe among them, Unix ms.
    pub newest_at_ms: i64,
}

/// A `failure` column read as its class.
fn failure_column(class: Option<&str>) -> Result<Option<FailureClass>, StoreError> {
    class
        .map(|c| FailureClass::parse(c).ok_or_else(|| corrupt("results failure", format!("`{c}`"))))
        .transpose()
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
}
