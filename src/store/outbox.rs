//! SQL for the notifications outbox: a channel's due pending notices, and what became of a send
//! (sent, pending again later, or failed), and the counts the dashboard shows per channel. Rows are
//! written with the incidents that made them (`store/incidents.rs`).

use super::{Store, StoreError, query_err};

/// A notice to record for one channel; what it says is the notifier's (`body`, its JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice<'a> {
    /// The channel.
    pub channel: &'a str,
    /// The incident.
    pub incident: i64,
    /// The change's number in the incident's timeline.
    pub seq: u32,
    /// The change's spelling.
    pub change: &'static str,
    /// The notice, as JSON.
    pub body: String,
}

/// One pending notice of one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// The row.
    pub id: i64,
    /// The notice, as JSON.
    pub body: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was recorded, Unix ms.
    pub created_at_ms: i64,
}

/// One channel's outbox as the dashboard shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting to be sent (due or backing off).
    pub pending: i64,
    /// Sent.
    pub sent: i64,
    /// Given up.
    pub failed: i64,
    /// The newest failure's error, if any.
    pub last_error: Option<String>,
}

impl Store {
    /// `channel`'s pending notices due at `now_ms`, oldest first, `limit` at most.
    pub async fn due_notices(
        &self,
        channel: &str,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT id, notice, attempts, created_at_ms FROM notifications
             WHERE channel = ? AND state = 'pending' AND next_at_ms <= ? ORDER BY id LIMIT ?",
        )
        .bind(channel)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading the outbox"))?;
        Ok(rows
            .into_iter()
            .map(|(id, body, attempts, created_at_ms)| OutboxRow {
                id,
                body,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                created_at_ms,
            })
            .collect())
    }

    /// How many notices of `channel` wait (due now or backing off).
    pub async fn outbox_depth(&self, channel: &str) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM notifications WHERE channel = ? AND state = 'pending'",
        )
        .bind(channel)
        .fetch_one(&self.reader)
        .await
        .map_err(query_err("reading the outbox"))?;
        Ok(n)
    }

    /// Marks `ids` sent at `now_ms`.
    pub async fn notices_sent(&self, ids: &[i64], now_ms: i64) -> Result<(), StoreError> {
        let list = serde_json::to_string(ids).expect("ids serialize");
        sqlx::query(
            "UPDATE notifications SET state = 'sent', done_at_ms = ?, attempts = attempts + 1, last_error = NULL
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(now_ms)
        .bind(list)
        .execute(&self.writer)
        .await
        .map_err(query_err("marking notifications sent"))?;
        Ok(())
    }

    /// Records a failed attempt at `ids`: pending again at `retry_at_ms`, or failed (at `now_ms`)
    /// once `max_attempts` are spent or when `retry_at_ms` is `None`.
    pub async fn notices_failed(
        &self,
        ids: &[i64],
        why: &str,
        (now_ms, retry_at_ms): (i64, Option<i64>),
        max_attempts: u32,
    ) -> Result<(), StoreError> {
        let list = serde_json::to_string(ids).expect("ids serialize");
        sqlx::query(
            "UPDATE notifications SET attempts = attempts + 1, last_error = ?1,
               state = CASE WHEN ?2 IS NULL OR attempts + 1 >= ?3 THEN 'failed' ELSE 'pending' END,
               next_at_ms = COALESCE(?2, next_at_ms),
               done_at_ms = CASE WHEN ?2 IS NULL OR attempts + 1 >= ?3 THEN ?4 ELSE NULL END
             WHERE id IN (SELECT value FROM json_each(?5))",
        )
        .bind(why)
        .bind(retry_at_ms)
        .bind(i64::from(max_attempts))
        .bind(now_ms)
        .bind(list)
        .execute(&self.writer)
        .await
        .map_err(query_err("recording a failed notification"))?;
        Ok(())
    }

    /// `channel`'s counts by state, and its newest error.
    pub async fn outbox_counts(&self, channel: &str) -> Result<OutboxCounts, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM notifications WHERE channel = ? GROUP BY state",
        )
        .bind(channel)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("counting the outbox"))?;
        let mut counts = OutboxCounts::default();
        for (state, n) in rows {
            match state.as_str() {
                "pending" => counts.pending = n,
                "sent" => counts.sent = n,
                _ => counts.failed += n,
            }
        }
        let err: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT last_error FROM notifications WHERE channel = ? AND last_error IS NOT NULL
             ORDER BY id DESC LIMIT 1",
        )
        .bind(channel)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_err("reading the outbox"))?;
        counts.last_error = err.and_then(|(e,)| e);
        Ok(counts)
    }
}
