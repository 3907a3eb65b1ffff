//! The failures of a window for the incident report: the periods with failures per (host, region)
//! and their classes, the probe totals, and the phase each class failed in.

use std::collections::BTreeMap;

use sqlx::Row as _;

use super::tallies::Tally;
use super::{Agg, corrupt, merge_classes};
use crate::model::{Outcome, Phase};
use crate::store::rollup::Table;
use crate::store::{Store, StoreError};

/// One rollup period (or raw minute) of one (host, region) with failures in it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailurePeriod {
    /// The period's start, Unix ms.
    pub start_ms: i64,
    /// The host's domain.
    pub host: String,
    /// The region.
    pub region: String,
    /// Failed results in the period.
    pub failures: u64,
    /// Failures by outcome (`http_status 502` …).
    pub by_class: BTreeMap<Outcome, u64>,
}

/// Failed raw results of one outcome in one phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseCount {
    /// How they failed.
    pub outcome: Outcome,
    /// `None` when the row names no phase it knows.
    pub phase: Option<Phase>,
    /// Results counted.
    pub count: u64,
}

impl Store {
    /// The periods of `table` in `[from_ms, to_ms)` with failures, per (host, region); one host's
    /// series only when `host` is given.
    pub async fn failure_periods(
        &self,
        host: Option<&str>,
        table: Table,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<FailurePeriod>, StoreError> {
        let sql = per_table!(
            table,
            "SELECT r.start_ms, s.host, s.region, TOTAL(r.failures),
                    '[' || group_concat(r.by_class, ',') || ']'
             FROM series s CROSS JOIN ",
            " r ON r.series_id = s.id AND r.start_ms >= ?2 AND r.start_ms < ?3
             WHERE (?1 IS NULL OR s.host = ?1) AND r.failures > 0
             GROUP BY 1, 2, 3 ORDER BY 1"
        );
        let rows = self
            .in_window(sql, host, (from_ms, to_ms), "reading failure periods")
            .await?;
        rows.iter()
            .map(|row| {
                let mut agg = Agg::default();
                merge_classes(&mut agg, row.get(4)).ok_or_else(|| {
                    corrupt(
                        "rollup by_class",
                        format!("period {}", row.get::<i64, _>(0)),
                    )
                })?;
                Ok(FailurePeriod {
                    start_ms: row.get(0),
                    host: row.get(1),
                    region: row.get(2),
                    failures: row.get::<f64, _>(3) as u64,
                    by_class: agg.by_class,
                })
            })
            .collect()
    }

    /// Probes and failures in the rollups of `table` in `[from_ms, to_ms)`; one host's only when
    /// `host` is given.
    pub async fn rollup_tally(
        &self,
        host: Option<&str>,
        table: Table,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Tally, StoreError> {
        let sql = per_table!(
            table,
            "SELECT TOTAL(r.count), TOTAL(r.failures) FROM series s CROSS JOIN ",
            " r ON r.series_id = s.id AND r.start_ms >= ?2 AND r.start_ms < ?3
             WHERE (?1 IS NULL OR s.host = ?1)"
        );
        let rows = self
            .in_window(sql, host, (from_ms, to_ms), "tallying rollups")
            .await?;
        let (count, failures): (f64, f64) =
            rows.first().map_or((0.0, 0.0), |r| (r.get(0), r.get(1)));
        Ok(Tally {
            count: count as u64,
            failures: failures as u64,
        })
    }

    /// Like [`Store::failure_periods`] for the raw rows not rolled up yet, a minute per period,
    /// by outcome as the rollups count them.
    pub async fn raw_failure_periods(
        &self,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<(Vec<FailurePeriod>, Tally), StoreError> {
        let rows = self.in_window("SELECT (r.at_ms / 60000) * 60000, s.host, s.region, r.failure,
                    COUNT(*), r.status
             FROM series s CROSS JOIN results r ON r.series_id = s.id AND r.at_ms >= ?2 AND r.at_ms < ?3
             WHERE (?1 IS NULL OR s.host = ?1) GROUP BY 1, 2, 3, 4, 6 ORDER BY 1", host, (from_ms, to_ms), "reading recent failures").await?;
        let mut total = Tally::default();
        let mut out: Vec<FailurePeriod> = Vec::new();
        for row in &rows {
            let n = row.get::<i64, _>(4) as u64;
            total.count += n;
            let Some(class) = row.get::<Option<String>, _>(3) else {
                continue;
            };
            let outcome = outcome(&class, row.get(5))?;
            total.failures += n;
            let (start_ms, host, region): (i64, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let same = out
                .last()
                .is_some_and(|p| (p.start_ms, &p.host, &p.region) == (start_ms, &host, &region));
            if !same {
                out.push(FailurePeriod {
                    start_ms,
                    host,
                    region,
                    failures: 0,
                    by_class: BTreeMap::new(),
                });
            }
            let p = out.last_mut().expect("pushed above");
            p.failures += n;
            *p.by_class.entry(outcome).or_default() += n;
        }
        Ok((out, total))
    }

    /// Failed raw results in `[from_ms, to_ms)` by class, phase and status, most first (the phase a
    /// class failed in is only in the raw rows, kept 48 h by default).
    pub async fn failure_phases(
        &self,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<PhaseCount>, StoreError> {
        // Through the partial index of failed results (migration 0003): only failures are read.
        let sql = "SELECT r.failure, r.phase, r.status, COUNT(*)
             FROM results r INDEXED BY results_failed_at JOIN series s ON s.id = r.series_id
             WHERE r.failure IS NOT NULL AND r.at_ms >= ?2 AND r.at_ms < ?3
               AND (?1 IS NULL OR s.host = ?1)
             GROUP BY 1, 2, 3 ORDER BY 4 DESC";
        let rows = self
            .in_window(sql, host, (from_ms, to_ms), "reading failure phases")
            .await?;
        let mut out: Vec<PhaseCount> = Vec::new();
        for row in &rows {
            let count = PhaseCount {
                outcome: outcome(&row.get::<String, _>(0), row.get(2))?,
                phase: row.get::<Option<&str>, _>(1).and_then(Phase::parse),
                count: row.get::<i64, _>(3) as u64,
            };
            // Rows of one class that differ only in a status the outcome does not keep are one.
            match out
                .iter_mut()
                .find(|c| (c.outcome, c.phase) == (count.outcome, count.phase))
            {
                Some(c) => c.count += count.count,
                None => out.push(count),
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.count));
        Ok(out)
    }
}

/// A failed result's outcome from its `failure` and `status` columns.
fn outcome(class: &str, status: Option<i64>) -> Result<Outcome, StoreError> {
    Outcome::from_columns(class, status)
        .ok_or_else(|| corrupt("results failure", format!("`{class}`")))
}
