//! The only place with SQL: probe results, their rollups and retention, in one SQLite file.
//!
//! One writer connection (SQLite allows one writer; a pool of one makes that explicit and keeps
//! writes from queueing on the busy handler), a small pool of readers for queries, WAL mode with
//! `synchronous=NORMAL` (a crash loses at most the last transactions, never the file; a publish
//! commits with `FULL`, see [`publish`]), incremental auto-vacuum so retention frees pages in small
//! steps instead of one long VACUUM.
//!
//! Writing: [`writer`] (results), [`rollup`] (minute and hour rollups), [`publish`] (versions,
//! events, overrides), [`silences`] (silences and maintenance windows), [`engine_state`] (the decision engine's memory). Reading, one module per
//! kind of data read: `latest` (each series' latest probe, raw counts), [`newest`] (the newest
//! probes with every column), [`tallies`] (probes and failures over a window, per edge),
//! [`periods`] (rolled-up periods summed per host and path), [`charts`] (rollup rows and chart
//! buckets), [`failures`] (failure periods and phases).
//!
//! Two rules keep a page over thousands of series within milliseconds. SQLite aggregates, so few
//! rows cross into Rust (each row costs microseconds there, against tens of nanoseconds inside
//! SQLite); histograms of many rows travel as one concatenated blob (`group_concat(hist, '')`: the
//! encoding is self-delimiting). And queries walk each series' primary-key range (`series CROSS
//! JOIN rollup_… ON series_id`), reading its rows contiguously instead of looking each one up from
//! the time index. Windows over every series go through [`periods::PeriodCache`], and charts
//! through [`charts::BucketCache`], which read each rolled-up period once.

/// SQL over one rollup table, `$before` + the table's name + `$after`, as a `&'static str`.
macro_rules! per_table {
    ($table:expr, $before:literal, $after:literal) => {
        match $table {
            Table::Minute => concat!($before, "rollup_minute", $after),
            Table::Hour => concat!($before, "rollup_hour", $after),
        }
    };
}

mod agent_batches;
mod agg;
pub mod charts;
pub mod engine_state;
pub mod failures;
pub mod incidents;
mod latest;
pub mod newest;
pub mod outbox;
pub mod periods;
pub mod publish;
pub mod rollup;
mod schema;
pub mod silences;
pub mod tallies;
pub mod writer;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

pub use agent_batches::{BatchKey, BatchStored};
pub use agg::{Agg, RawTimes};
pub use latest::SeriesLatest;

use crate::model::{EdgeResult, Outcome};
use crate::series::SeriesKey;

/// How long SQLite waits on a lock before giving up, for readers and the writer alike.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows per multi-row INSERT: 17 columns × 400 rows stays far below SQLite's 32 766 variables.
const ROWS_PER_INSERT: usize = 400;
/// The least time agents' batch keys are kept: beyond an agent spool's age bound.
const AGENT_KEYS_KEPT: Duration = Duration::from_secs(26 * 3600);
/// Rows deleted per retention step (and 256 pages freed), so a step holds the write lock for
/// milliseconds only.
pub const PRUNE_STEP_ROWS: i64 = 5_000;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened.
    #[error("cannot open the database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why not.
        source: sqlx::Error,
    },
    /// The migrations could not be applied.
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error while {what}: {source}")]
    Query {
        /// What the query was doing.
        what: &'static str,
        /// Why it failed.
        source: sqlx::Error,
    },
    /// A row does not read as what it should hold.
    #[error("the database holds a malformed {what} row: {detail}")]
    Corrupt {
        /// What kind of row.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

fn query_err(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

/// Merges rows' histograms packed back to back (six per row) into `agg`.
fn merge_packed(agg: &mut Agg, mut packed: &[u8]) -> Option<()> {
    while !packed.is_empty() {
        packed = agg.merge_hists(packed)?;
    }
    Some(())
}

/// Adds `by_class` objects packed as a JSON array (`[{"dns_timeout":2},…]`) to `agg`.
fn merge_classes(agg: &mut Agg, packed: Option<&str>) -> Option<()> {
    let Some(json) = packed else { return Some(()) };
    let maps: Vec<BTreeMap<Outcome, u64>> = serde_json::from_str(json).ok()?;
    for (class, n) in maps.into_iter().flatten() {
        *agg.by_class.entry(class).or_default() += n;
    }
    Some(())
}

fn corrupt(what: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { what, detail }
}

impl Store {
    /// Runs `sql`, whose `?1` is a host (NULL: every host) and `?2`, `?3` a window's bounds.
    async fn in_window(
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
}

/// One probe result as it enters the store: the row and the prober that measured it.
#[derive(Debug, Clone)]
pub struct Record {
    /// The id of the prober that measured it.
    pub prober: Arc<str>,
    /// The result.
    pub result: EdgeResult,
}

/// The store: cheap to clone (two pools and a shared id cache).
#[derive(Clone)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
    ids: Arc<Mutex<IdCache>>,
}

#[derive(Default)]
struct IdCache {
    series: HashMap<SeriesKey, i64>,
    probers: HashMap<Arc<str>, i64>,
}

impl Store {
    /// Opens (creating if absent) the database file and applies the migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(false);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .map_err(open_err)?;
        schema::migrator().run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        Ok(Store {
            writer,
            reader,
            ids: Arc::default(),
        })
    }

    /// Writes a batch of results in one transaction. Either every row is stored or none is.
    pub async fn write_batch(&self, batch: &[Record]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(query_err("starting a write"))?;
        self.insert_records(&mut tx, batch).await?;
        tx.commit().await.map_err(query_err("committing results"))
    }

    /// Inserts `records` in `tx`, their series and probers registered as needed.
    async fn insert_records(
        &self,
        tx: &mut sqlx::SqliteConnection,
        records: &[Record],
    ) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(records.len());
        for rec in records {
            let series = self.series_id(tx, SeriesKey::of(&rec.result)).await?;
            let prober = self.prober_id(tx, &rec.prober).await?;
            rows.push((series, prober, &rec.result));
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            insert_results(tx, chunk).await?;
        }
        Ok(())
    }

    async fn series_id(
        &self,
        tx: &mut sqlx::SqliteConnection,
        key: SeriesKey,
    ) -> Result<i64, StoreError> {
        if let Some(id) = self.ids.lock().expect("id cache").series.get(&key) {
            return Ok(*id);
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO series (host, path, region, resolver) VALUES (?, ?, ?, ?)
             ON CONFLICT (host, path, region, resolver) DO UPDATE SET host = excluded.host RETURNING id",
        )
        .bind(&key.host)
        .bind(&key.path)
        .bind(&key.region)
        .bind(&key.resolver)
        .fetch_one(&mut *tx)
        .await
        .map_err(query_err("registering a series"))?;
        self.ids.lock().expect("id cache").series.insert(key, id);
        Ok(id)
    }

    async fn prober_id(
        &self,
        tx: &mut sqlx::SqliteConnection,
        name: &Arc<str>,
    ) -> Result<i64, StoreError> {
        if let Some(id) = self.ids.lock().expect("id cache").probers.get(name) {
            return Ok(*id);
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO probers (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(&**name)
        .fetch_one(&mut *tx)
        .await
        .map_err(query_err("registering a prober"))?;
        self.ids
            .lock()
            .expect("id cache")
            .probers
            .insert(name.clone(), id);
        Ok(id)
    }

    /// One retention step: deletes at most [`PRUNE_STEP_ROWS`] expired rows from each table and
    /// frees some pages. Returns the rows deleted; call again while it returns more than zero.
    pub async fn prune_step(&self, now_ms: i64, retention: &Retention) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for (table, window) in [
            ("results", retention.raw),
            ("rollup_minute", retention.minute),
            ("rollup_hour", retention.hour),
        ] {
            // Checked: a window past i64's milliseconds keeps everything rather than wrapping.
            let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
            let cutoff = now_ms.saturating_sub(window_ms);
            let sql = match table {
                "results" => {
                    "DELETE FROM results WHERE id IN (SELECT id FROM results WHERE at_ms < ? LIMIT ?)"
                }
                "rollup_minute" => {
                    "DELETE FROM rollup_minute WHERE (series_id, start_ms) IN
                     (SELECT series_id, start_ms FROM rollup_minute WHERE start_ms < ? LIMIT ?)"
                }
                _ => {
                    "DELETE FROM rollup_hour WHERE (series_id, start_ms) IN
                     (SELECT series_id, start_ms FROM rollup_hour WHERE start_ms < ? LIMIT ?)"
                }
            };
            let done = sqlx::query(sql)
                .bind(cutoff)
                .bind(PRUNE_STEP_ROWS)
                .execute(&self.writer)
                .await
                .map_err(query_err("deleting expired rows"))?;
            deleted += done.rows_affected();
        }
        // Agents' batch keys outlive the raw results a little: a batch re-sent from an agent's
        // spool (at most a day old) must still be recognised.
        let keys_ms =
            i64::try_from(retention.raw.max(AGENT_KEYS_KEPT).as_millis()).unwrap_or(i64::MAX);
        deleted += self
            .prune_agent_batches(now_ms.saturating_sub(keys_ms), PRUNE_STEP_ROWS)
            .await?;
        sqlx::query("PRAGMA incremental_vacuum(256)")
            .execute(&self.writer)
            .await
            .map_err(query_err("freeing pages"))?;
        Ok(deleted)
    }

    /// Checkpoints the WAL into the main file (at shutdown, so the file is whole on its own).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await
            .map_err(query_err("checkpointing the WAL"))?;
        Ok(())
    }

    /// Closes both pools, waiting for their connections.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Raw per-edge results.
    pub raw: Duration,
    /// Per-minute rollups.
    pub minute: Duration,
    /// Per-hour rollups.
    pub hour: Duration,
}

fn us(ms: Option<f64>) -> Option<i64> {
    ms.map(|v| (v * 1000.0).round() as i64)
}

async fn insert_results(
    tx: &mut sqlx::SqliteConnection,
    rows: &[(i64, i64, &EdgeResult)],
) -> Result<(), StoreError> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO results (series_id, prober_id, at_ms, edge, dns_us, connect_us, tls_us, first_byte_us,
         transfer_us, total_us, status, body_bytes, cert_not_after, cert_verified, failure, phase, detail) ",
    );
    q.push_values(rows, |mut b, (series, prober, r)| {
        b.push_bind(*series)
            .push_bind(*prober)
            .push_bind(r.at.timestamp_millis())
            .push_bind(r.edge_ip.map(|ip| ip.to_string()))
            .push_bind(us(r.dns_ms))
            .push_bind(us(r.connect_ms))
            .push_bind(us(r.tls_ms))
            .push_bind(us(r.first_byte_ms))
            .push_bind(us(r.transfer_ms))
            .push_bind(us(r.total_ms))
            .push_bind(r.status.map(i64::from))
            .push_bind(r.body_bytes as i64)
            .push_bind(r.cert.as_ref().map(|c| c.not_after.timestamp()))
            .push_bind(r.cert.as_ref().map(|c| c.verified))
            .push_bind(r.failure.as_ref().map(|f| f.class.as_str()))
            .push_bind(r.failure.as_ref().map(|f| f.phase.as_str()))
            .push_bind(r.failure.as_ref().map(|f| f.detail.as_str()));
    });
    q.build()
        .execute(&mut *tx)
        .await
        .map_err(query_err("inserting results"))?;
    Ok(())
}

#[cfg(test)]
mod tests;
