//! SQL for silences and maintenance windows: made and cleared with their audit event in one
//! transaction, and the live ones (neither cleared nor expired) read through a partial index. The
//! rows stay plain here; `notify::silence` reads them into silences and decides what they mute.

use sqlx::Row as _;

use super::publish::insert_events;
use super::{Store, StoreError, query_err};
use crate::engine::Event;

/// A stored silence, as its columns hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SilenceRow {
    /// The row id, for clearing it (ignored when adding).
    pub id: i64,
    /// The host matcher, if given.
    pub host: Option<String>,
    /// The vendor matcher, if given.
    pub vendor: Option<String>,
    /// The region matcher, if given.
    pub region: Option<String>,
    /// The scope-kind matcher, if given.
    pub scope: Option<String>,
    /// Why.
    pub reason: String,
    /// Who.
    pub actor: String,
    /// A recurring window as JSON, if any.
    pub every: Option<String>,
    /// When it was made, Unix ms.
    pub created_at_ms: i64,
    /// When it ends, Unix ms; `None`: when cleared.
    pub expires_at_ms: Option<i64>,
}

/// The columns [`silence_row`] reads, in its order.
macro_rules! columns {
    () => {
        "id, host, vendor, region, scope, reason, actor, every, created_at_ms, expires_at_ms"
    };
}

fn silence_row(r: &sqlx::sqlite::SqliteRow) -> SilenceRow {
    SilenceRow {
        id: r.get(0),
        host: r.get(1),
        vendor: r.get(2),
        region: r.get(3),
        scope: r.get(4),
        reason: r.get(5),
        actor: r.get(6),
        every: r.get(7),
        created_at_ms: r.get(8),
        expires_at_ms: r.get(9),
    }
}

impl Store {
    /// Stores a silence and the event `audit(id)` makes of it, in one transaction; returns its id.
    pub async fn add_silence(
        &self,
        s: &SilenceRow,
        audit: impl FnOnce(i64) -> Event,
    ) -> Result<i64, StoreError> {
        let mut tx = (self.writer.begin().await).map_err(query_err("starting a silence write"))?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO silences (host, vendor, region, scope, reason, actor, every, created_at_ms, expires_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&s.host)
        .bind(&s.vendor)
        .bind(&s.region)
        .bind(&s.scope)
        .bind(&s.reason)
        .bind(&s.actor)
        .bind(&s.every)
        .bind(s.created_at_ms)
        .bind(s.expires_at_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(query_err("adding a silence"))?;
        insert_events(&mut tx, &[audit(id)], None).await?;
        tx.commit()
            .await
            .map_err(query_err("committing a silence"))?;
        Ok(id)
    }

    /// Clears the live silence `id` at `now_ms` and stores the event `audit` makes of it, in one
    /// transaction; the silence cleared, or `None` when there was no such live silence.
    pub async fn clear_silence(
        &self,
        id: i64,
        now_ms: i64,
        audit: impl FnOnce(&SilenceRow) -> Event,
    ) -> Result<Option<SilenceRow>, StoreError> {
        let mut tx = (self.writer.begin().await).map_err(query_err("starting a silence write"))?;
        let sql = concat!(
            "UPDATE silences SET cleared_at_ms = ?1 WHERE id = ?2 AND cleared_at_ms IS NULL
             AND (expires_at_ms IS NULL OR expires_at_ms > ?1) RETURNING ",
            columns!()
        );
        let row = sqlx::query(sql)
            .bind(now_ms)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err("clearing a silence"))?;
        let Some(row) = row.as_ref().map(silence_row) else {
            return Ok(None);
        };
        insert_events(&mut tx, &[audit(&row)], None).await?;
        tx.commit()
            .await
            .map_err(query_err("committing a silence"))?;
        Ok(Some(row))
    }

    /// Silences neither cleared nor expired at `now_ms`, oldest first (a recurring one may be
    /// outside its window: `notify::silence` says whether it is in effect).
    pub async fn live_silences(&self, now_ms: i64) -> Result<Vec<SilenceRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM silences
             WHERE cleared_at_ms IS NULL AND (expires_at_ms IS NULL OR expires_at_ms > ?) ORDER BY id"
        );
        let rows = sqlx::query(sql)
            .bind(now_ms)
            .fetch_all(&self.reader)
            .await
            .map_err(query_err("reading silences"))?;
        Ok(rows.iter().map(silence_row).collect())
    }
}
