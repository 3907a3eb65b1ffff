//! A cache of rolled-up periods summed per (host, path), so that a window over every series reads
//! each period from SQLite once instead of on every page view.
//!
//! It is exact: a rollup row is written once, with the watermark, and never changes afterwards
//! (retention only deletes periods far older than any window read here), so callers only ask for
//! periods before the watermark. The cache covers one contiguous range per table; a request next
//! to it reads the periods that entered (and drops the ones too old to be asked for again), a
//! request far from it reads its whole window once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use sqlx::Row as _;

use super::rollup::Table;
use super::tallies::Tally;
use super::{Agg, Store, StoreError, corrupt, merge_packed};
use crate::hist::Histogram;
use crate::period::{HOUR_MS, MINUTE_MS};

/// How far back from the newest period asked for each table's periods are kept: enough for a day
/// of hours, and for the minutes of an hour window plus those after the hour watermark.
const KEEP_MINUTES_MS: i64 = 3 * HOUR_MS;
const KEEP_HOURS_MS: i64 = 26 * HOUR_MS;

/// One (host, path)'s probes in one rollup period: counts and the total-time histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodSum {
    /// The period's start, Unix ms.
    pub start_ms: i64,
    /// The host's domain.
    pub host: String,
    /// The probe path.
    pub path: String,
    /// Probes and failed probes.
    pub tally: Tally,
    /// Total time of the successful probes.
    pub total: Histogram,
}

/// A (host, path) pair.
pub type HostPath = (String, String);

/// One (host, path)'s probes in one period, its total-time histogram encoded (a few bytes).
#[derive(Debug, Clone)]
struct Entry {
    key: HostPath,
    tally: Tally,
    total: Vec<u8>,
}

/// The sum of a window for one (host, path).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowSum {
    /// Probes and failed probes.
    pub tally: Tally,
    /// Total time of the successful probes.
    pub total: Histogram,
}

#[derive(Debug, Default)]
struct Covered {
    /// `[from, to)` whose periods are all in `periods` (a period without rows is simply absent).
    range: Option<(i64, i64)>,
    periods: BTreeMap<i64, Vec<Entry>>,
}

/// What to read to cover `[from, to)` next to `range`, and the range covered afterwards.
fn plan(range: Option<(i64, i64)>, from: i64, to: i64) -> (Vec<(i64, i64)>, (i64, i64), bool) {
    match range {
        Some((lo, hi)) if from <= hi && to >= lo => {
            let mut reads = Vec::new();
            if from < lo {
                reads.push((from, lo));
            }
            if to > hi {
                reads.push((hi, to));
            }
            (reads, (lo.min(from), hi.max(to)), false)
        }
        // Nothing cached, or a window away from what is: start over with this one.
        _ => (vec![(from, to)], (from, to), true),
    }
}

/// Per-table caches of period sums; share one per process (the dashboard's router holds it).
#[derive(Debug, Default)]
pub struct PeriodCache {
    minutes: Mutex<Covered>,
    hours: Mutex<Covered>,
}

impl Store {
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
}

impl PeriodCache {
    fn side(&self, table: Table) -> (&Mutex<Covered>, i64, i64) {
        match table {
            Table::Minute => (&self.minutes, MINUTE_MS, KEEP_MINUTES_MS),
            Table::Hour => (&self.hours, HOUR_MS, KEEP_HOURS_MS),
        }
    }

    /// Per (host, path), the sum of the periods of `table` that start in `[from_ms, to_ms)`; only
    /// ask for periods that are rolled up (`to_ms` at or before the table's watermark).
    pub async fn sums(
        &self,
        store: &Store,
        table: Table,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<HashMap<HostPath, WindowSum>, StoreError> {
        let (lock, unit, keep) = self.side(table);
        let from = ceil_to(from_ms, unit);
        let to = ceil_to(to_ms, unit).max(from);
        // No lock is held while reading: when another request changed the cache meanwhile, what
        // was read may overlap what it added, so plan again (it rarely happens twice).
        for _ in 0..3 {
            let seen = lock.lock().expect("period cache").range;
            let (reads, covered, reset) = plan(seen, from, to);
            let mut fetched = Vec::new();
            for (a, b) in reads {
                fetched.extend(store.period_sums(table, a, b).await?);
            }
            let mut c = lock.lock().expect("period cache");
            if c.range != seen {
                continue;
            }
            if reset {
                c.periods.clear();
            }
            for p in fetched {
                c.periods.entry(p.start_ms).or_default().push(Entry::of(p));
            }
            let out = sum(&c.periods, from, to);
            // Keep what a later window, ending later, can still ask for.
            let (lo, hi) = covered;
            let floor = (hi - keep).max(lo);
            c.periods = c.periods.split_off(&floor);
            c.range = Some((floor, hi));
            return Ok(out);
        }
        let mut direct = BTreeMap::new();
        for p in store.period_sums(table, from, to).await? {
            direct
                .entry(p.start_ms)
                .or_insert_with(Vec::new)
                .push(Entry::of(p));
        }
        Ok(sum(&direct, from, to))
    }
}

impl Entry {
    fn of(p: PeriodSum) -> Entry {
        let mut total = Vec::new();
        p.total.encode(&mut total);
        Entry {
            key: (p.host, p.path),
            tally: p.tally,
            total,
        }
    }
}

fn sum(periods: &BTreeMap<i64, Vec<Entry>>, from: i64, to: i64) -> HashMap<HostPath, WindowSum> {
    let mut out: HashMap<HostPath, WindowSum> = HashMap::new();
    for entries in periods.range(from..to).map(|(_, e)| e) {
        for e in entries {
            let s = out.entry(e.key.clone()).or_default();
            s.tally.add(e.tally);
            // The bytes were encoded above from a histogram, so they decode.
            let _ = s.total.merge_encoded(&e.total);
        }
    }
    out
}

fn ceil_to(ms: i64, unit: i64) -> i64 {
    ms.div_euclid(unit) * unit + if ms.rem_euclid(unit) == 0 { 0 } else { unit }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_sliding_forward_reads_only_the_periods_that_entered_it() {
        let (reads, covered, reset) = plan(Some((100, 200)), 110, 210);
        assert_eq!(reads, vec![(200, 210)]);
        assert_eq!(covered, (100, 210));
        assert!(!reset);
    }

    #[test]
    fn a_window_inside_what_is_cached_reads_nothing() {
        let (reads, _, reset) = plan(Some((100, 200)), 120, 180);
        assert!(reads.is_empty());
        assert!(!reset);
    }

    #[test]
    fn a_wider_window_reads_both_missing_ends() {
        let (reads, covered, _) = plan(Some((100, 200)), 50, 260);
        assert_eq!(reads, vec![(50, 100), (200, 260)]);
        assert_eq!(covered, (50, 260));
    }

    #[test]
    fn a_window_away_from_the_cache_starts_it_over() {
        let (reads, covered, reset) = plan(Some((100, 200)), 500, 600);
        assert_eq!(reads, vec![(500, 600)]);
        assert_eq!(covered, (500, 600));
        assert!(reset);
        assert!(plan(None, 1, 2).2);
    }
}
