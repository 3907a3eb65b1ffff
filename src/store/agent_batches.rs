//! Agents' batches stored exactly once: a batch's results and its idempotency key (agent, boot,
//! sequence) in one transaction, so a batch the agent sends again after a lost acknowledgement
//! stores nothing twice. Results dated in minutes already rolled up mark those minutes late; the
//! rollup rolls them again ([`Store::roll_up`]).

use sqlx::Row as _;

use super::{Record, Store, StoreError, query_err};
use crate::period::MINUTE_MS;

/// A batch's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchKey {
    /// The agent's configured id.
    pub agent: String,
    /// The agent process's boot id (a new one each start).
    pub boot: String,
    /// The batch's number within that boot, from 0.
    pub seq: u64,
}

/// What storing a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStored {
    /// Its results were stored now.
    New,
    /// The batch was stored before: nothing was written.
    Duplicate,
}

impl Store {
    /// Stores `records` under `key` in one transaction, unless `key` was stored before; `now_ms`
    /// dates the key (for pruning).
    pub async fn write_agent_batch(
        &self,
        key: &BatchKey,
        records: &[Record],
        now_ms: i64,
    ) -> Result<BatchStored, StoreError> {
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(query_err("starting an agent batch"))?;
        let seq = i64::try_from(key.seq).unwrap_or(i64::MAX);
        let claimed = sqlx::query(
            "INSERT OR IGNORE INTO agent_batches (agent, boot, seq, stored_ms, records)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&key.agent)
        .bind(&key.boot)
        .bind(seq)
        .bind(now_ms)
        .bind(records.len() as i64)
        .execute(&mut *tx)
        .await
        .map_err(query_err("claiming an agent batch"))?;
        if claimed.rows_affected() == 0 {
            return Ok(BatchStored::Duplicate);
        }
        self.insert_records(&mut tx, records).await?;
        mark_late_minutes(&mut tx, records).await?;
        tx.commit()
            .await
            .map_err(query_err("committing an agent batch"))?;
        Ok(BatchStored::New)
    }

    /// Batches stored under `agent`, and the records they held (tests count what arrived).
    pub async fn agent_batches(&self, agent: &str) -> Result<(u64, u64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*), COALESCE(SUM(records), 0) FROM agent_batches WHERE agent = ?",
        )
        .bind(agent)
        .fetch_one(&self.reader)
        .await
        .map_err(query_err("counting agent batches"))?;
        let (n, records): (i64, i64) = (row.get(0), row.get(1));
        Ok((n as u64, records as u64))
    }

    /// Forgets batch keys stored before `cutoff_ms` (at most `limit`); returns how many.
    pub(super) async fn prune_agent_batches(
        &self,
        cutoff_ms: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM agent_batches WHERE (agent, boot, seq) IN
             (SELECT agent, boot, seq FROM agent_batches WHERE stored_ms < ? LIMIT ?)",
        )
        .bind(cutoff_ms)
        .bind(limit)
        .execute(&self.writer)
        .await
        .map_err(query_err("forgetting old agent batches"))?;
        Ok(done.rows_affected())
    }
}

/// Marks every minute of `records` that is already behind the minute rollup's watermark.
async fn mark_late_minutes(
    tx: &mut sqlx::SqliteConnection,
    records: &[Record],
) -> Result<(), StoreError> {
    let (done,): (Option<i64>,) =
        sqlx::query_as("SELECT value FROM meta WHERE key = 'minute_done_ms'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err("reading the minute watermark"))?
            .unwrap_or((None,));
    let Some(done) = done else {
        return Ok(());
    };
    let mut late: Vec<i64> = records
        .iter()
        .map(|r| r.result.at.timestamp_millis())
        .filter(|at| *at < done)
        .map(|at| at.div_euclid(MINUTE_MS) * MINUTE_MS)
        .collect();
    late.sort_unstable();
    late.dedup();
    for start in late {
        sqlx::query("INSERT OR IGNORE INTO late_minutes (start_ms) VALUES (?)")
            .bind(start)
            .execute(&mut *tx)
            .await
            .map_err(query_err("marking a late minute"))?;
    }
    Ok(())
}
