//! SQL for published versions, decision events and overrides.

use std::collections::HashMap;

use sqlx::Row as _;

use super::{Store, StoreError, query_err};
use crate::engine::{Event, Override, OverrideKind};

/// One stored version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    /// The version number.
    pub version: i64,
    /// When it was issued, Unix ms.
    pub issued_at_ms: i64,
    /// The document's bytes, as signed and served.
    pub body: Vec<u8>,
    /// The id of the key that signed it.
    pub key_id: String,
    /// The signature, base64.
    pub signature: String,
    /// Why it was published, in its one spelling.
    pub reason: String,
    /// The content's canonical text.
    pub content: String,
}

/// A version in the history list (without its bytes).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VersionSummary {
    /// The version number.
    pub version: i64,
    /// When it was issued, Unix ms.
    pub issued_at_ms: i64,
    /// Why it was published, in its one spelling.
    pub reason: String,
    /// The content's canonical text.
    pub content: String,
}

/// A stored override with its id.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OverrideRow {
    /// The row id, for clearing it.
    pub id: i64,
    /// The override itself.
    #[serde(flatten)]
    pub rule: Override,
    /// When it was set, Unix ms.
    pub created_at_ms: i64,
}

fn version_row(row: &sqlx::sqlite::SqliteRow) -> VersionRow {
    VersionRow {
        version: row.get(0),
        issued_at_ms: row.get(1),
        body: row.get(2),
        key_id: row.get(3),
        signature: row.get(4),
        reason: row.get(5),
        content: row.get(6),
    }
}

/// An event row selected as `at_ms, host, old_enabled, new_enabled, reason, detail, evidence,
/// samples, version, incident`.
pub(super) fn event_row(r: &sqlx::sqlite::SqliteRow) -> Result<(Event, Option<i64>), StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "events",
        detail,
    };
    let reason: String = r.get(4);
    let reason = serde_json::from_value(serde_json::Value::String(reason.clone()))
        .map_err(|_| corrupt(format!("unknown reason {reason}")))?;
    let evidence: String = r.get(6);
    let samples: String = r.get(7);
    let event = Event {
        at: chrono::DateTime::from_timestamp_millis(r.get(0)).unwrap_or_default(),
        host: r.get(1),
        old_enabled: r.get(2),
        new_enabled: r.get(3),
        reason,
        detail: r.get(5),
        evidence: serde_json::from_str(&evidence).map_err(|e| corrupt(e.to_string()))?,
        samples: serde_json::from_str(&samples).map_err(|e| corrupt(e.to_string()))?,
        incident: r.get(9),
        prefix: None,
    };
    Ok((event, r.get(8)))
}

impl Store {
    /// Each of `hosts`' newest event that changed its enabled flag, with the version it produced.
    pub async fn last_changes(
        &self,
        hosts: &[String],
    ) -> Result<HashMap<String, (Event, Option<i64>)>, StoreError> {
        let list = serde_json::to_string(hosts).expect("strings serialize");
        let rows = sqlx::query(
            "SELECT e.at_ms, e.host, e.old_enabled, e.new_enabled, e.reason, e.detail, e.evidence,
                    e.samples, e.version, e.incident
             FROM json_each(?1) h CROSS JOIN events e ON e.id = (
               SELECT id FROM events WHERE host = h.value AND new_enabled IS NOT NULL
               ORDER BY at_ms DESC, id DESC LIMIT 1)",
        )
        .bind(list)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading the last state changes"))?;
        rows.iter()
            .map(|r| {
                let (event, version) = event_row(r)?;
                Ok((event.host.clone().unwrap_or_default(), (event, version)))
            })
            .collect()
    }

    /// Whether any event names `host` (a host no longer configured can still be looked up).
    pub async fn host_has_events(&self, host: &str) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM events WHERE host = ? LIMIT 1")
            .bind(host)
            .fetch_optional(&self.reader)
            .await
            .map_err(query_err("looking up a host's events"))?;
        Ok(row.is_some())
    }

    /// Writes a new version, its events and nothing else, in one transaction: the version number
    /// comes from the AUTOINCREMENT row, `build` turns it into the exact bytes and their signature.
    /// The transaction commits with `synchronous=FULL` ([`Store::full_sync_writer`]): once this
    /// returns, a power loss cannot take the version back and hand its number out again.
    pub async fn publish_version(
        &self,
        issued_at_ms: i64,
        key_id: &str,
        reason: &str,
        content: &str,
        events: &[Event],
        build: impl FnOnce(i64) -> (Vec<u8>, String),
    ) -> Result<VersionRow, StoreError> {
        let mut durable = self.full_sync_writer().await?;
        let written = write_version(
            durable.connection(),
            (issued_at_ms, key_id, reason, content),
            events,
            build,
        )
        .await;
        durable.finish().await?;
        written
    }

    /// The writer's `synchronous` setting (0 OFF, 1 NORMAL, 2 FULL), for tests.
    #[cfg(test)]
    pub(crate) async fn writer_synchronous(&self) -> i64 {
        let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&self.writer)
            .await
            .expect("the writer answers");
        level
    }

    /// The writer connection switched to `synchronous=FULL` (in WAL mode: the WAL is synced at
    /// every commit) until [`FullSync::finish`] switches it back to the store's `NORMAL`.
    pub async fn full_sync_writer(&self) -> Result<FullSync, StoreError> {
        let mut conn = self
            .writer
            .acquire()
            .await
            .map_err(query_err("starting a publish"))?;
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await
            .map_err(query_err("making a publish durable"))?;
        Ok(FullSync { conn })
    }

    /// Stores events that produced no version (refusals, degradations, origin faults).
    pub async fn record_events(&self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(query_err("starting an event write"))?;
        insert_events(&mut tx, events, None).await?;
        tx.commit().await.map_err(query_err("committing events"))
    }

    /// Makes sure the next version number is above `floor` (after restoring an older copy of the file).
    pub async fn raise_version_floor(&self, floor: i64) -> Result<(), StoreError> {
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(query_err("raising the version floor"))?;
        let updated =
            sqlx::query("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'versions'")
                .bind(floor)
                .execute(&mut *tx)
                .await
                .map_err(query_err("raising the version floor"))?;
        if updated.rows_affected() == 0 {
            sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ('versions', ?)")
                .bind(floor)
                .execute(&mut *tx)
                .await
                .map_err(query_err("raising the version floor"))?;
        }
        tx.commit()
            .await
            .map_err(query_err("raising the version floor"))
    }

    /// The newest version, if any.
    pub async fn latest_version(&self) -> Result<Option<VersionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT version, issued_at_ms, body, key_id, signature, reason, content FROM versions ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await
        .map_err(query_err("reading the latest version"))?;
        Ok(row.as_ref().map(version_row))
    }

    /// Version `version`, if it is stored.
    pub async fn version(&self, version: i64) -> Result<Option<VersionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT version, issued_at_ms, body, key_id, signature, reason, content FROM versions WHERE version = ?",
        )
        .bind(version)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_err("reading a version"))?;
        Ok(row.as_ref().map(version_row))
    }

    /// The newest `limit` versions, newest first.
    pub async fn version_history(&self, limit: i64) -> Result<Vec<VersionSummary>, StoreError> {
        let rows = sqlx::query("SELECT version, issued_at_ms, reason, content FROM versions ORDER BY version DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(query_err("reading the version history"))?;
        Ok(rows
            .iter()
            .map(|r| VersionSummary {
                version: r.get(0),
                issued_at_ms: r.get(1),
                reason: r.get(2),
                content: r.get(3),
            })
            .collect())
    }

    /// Events in `[from_ms, to_ms)`, optionally for one host, newest first, at most `limit`.
    pub async fn events(
        &self,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<(Event, Option<i64>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, host, old_enabled, new_enabled, reason, detail, evidence, samples, version, incident FROM events
             WHERE at_ms >= ? AND at_ms < ? AND (? IS NULL OR host = ?) ORDER BY at_ms DESC, id DESC LIMIT ?",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(host)
        .bind(host)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading events"))?;
        rows.iter().map(event_row).collect()
    }

    /// Stores an override set at `now_ms`; returns its id.
    pub async fn add_override(&self, o: &Override, now_ms: i64) -> Result<i64, StoreError> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO overrides (host, kind, reason, actor, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&o.host)
        .bind(o.kind.as_str())
        .bind(&o.reason)
        .bind(&o.actor)
        .bind(now_ms)
        .bind(o.expires_at.timestamp_millis())
        .fetch_one(&self.writer)
        .await
        .map_err(query_err("adding an override"))?;
        Ok(id)
    }

    /// Clears an override; false if there was no such active override.
    pub async fn clear_override(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE overrides SET cleared_at_ms = ? WHERE id = ? AND cleared_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(query_err("clearing an override"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Overrides neither cleared nor expired at `now_ms`, oldest first.
    pub async fn active_overrides(&self, now_ms: i64) -> Result<Vec<OverrideRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, host, kind, reason, actor, created_at_ms, expires_at_ms FROM overrides
             WHERE cleared_at_ms IS NULL AND expires_at_ms > ? ORDER BY id",
        )
        .bind(now_ms)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading overrides"))?;
        rows.iter()
            .map(|r| {
                let kind: String = r.get(2);
                Ok(OverrideRow {
                    id: r.get(0),
                    rule: Override {
                        host: r.get(1),
                        kind: OverrideKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                            what: "overrides",
                            detail: format!("kind {kind}"),
                        })?,
                        reason: r.get(3),
                        actor: r.get(4),
                        expires_at: chrono::DateTime::from_timestamp_millis(r.get(6))
                            .unwrap_or_default(),
                    },
                    created_at_ms: r.get(5),
                })
            })
            .collect()
    }
}

/// The writer connection while a publish commits with `synchronous=FULL`.
pub struct FullSync {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
}

impl FullSync {
    /// The connection, for the publish's transaction.
    pub fn connection(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.conn
    }

    /// Switches the connection back to `synchronous=NORMAL`. When that fails the connection is
    /// closed rather than returned to the pool still in `FULL` (safe, but slow for every write).
    pub async fn finish(mut self) -> Result<(), StoreError> {
        let reset = sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *self.conn)
            .await;
        if reset.is_err() {
            self.conn.close_on_drop();
        }
        reset
            .map(|_| ())
            .map_err(query_err("switching the writer back to synchronous=NORMAL"))
    }
}

/// The version row, its bytes and its events, in one transaction on `conn`.
async fn write_version(
    conn: &mut sqlx::SqliteConnection,
    (issued_at_ms, key_id, reason, content): (i64, &str, &str, &str),
    events: &[Event],
    build: impl FnOnce(i64) -> (Vec<u8>, String),
) -> Result<VersionRow, StoreError> {
    use sqlx::Connection as _;
    let mut tx = conn
        .begin()
        .await
        .map_err(query_err("starting a publish"))?;
    let (version,): (i64,) = sqlx::query_as(
        "INSERT INTO versions (issued_at_ms, body, key_id, signature, reason, content) VALUES (?, x'', ?, '', ?, ?) RETURNING version",
    )
    .bind(issued_at_ms)
    .bind(key_id)
    .bind(reason)
    .bind(content)
    .fetch_one(&mut *tx)
    .await
    .map_err(query_err("allocating a version"))?;
    let (body, signature) = build(version);
    sqlx::query("UPDATE versions SET body = ?, signature = ? WHERE version = ?")
        .bind(&body)
        .bind(&signature)
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(query_err("writing a version"))?;
    insert_events(&mut tx, events, Some(version)).await?;
    tx.commit()
        .await
        .map_err(query_err("committing a version"))?;
    Ok(VersionRow {
        version,
        issued_at_ms,
        body,
        key_id: key_id.to_string(),
        signature,
        reason: reason.to_string(),
        content: content.to_string(),
    })
}

pub(super) async fn insert_events(
    tx: &mut sqlx::SqliteConnection,
    events: &[Event],
    version: Option<i64>,
) -> Result<(), StoreError> {
    for e in events {
        sqlx::query(
            "INSERT INTO events (at_ms, host, old_enabled, new_enabled, reason, detail, evidence, samples, version, incident)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at.timestamp_millis())
        .bind(&e.host)
        .bind(e.old_enabled)
        .bind(e.new_enabled)
        .bind(e.reason.as_str())
        .bind(&e.detail)
        .bind(serde_json::to_string(&e.evidence).expect("evidence serializes"))
        .bind(serde_json::to_string(&e.samples).expect("samples serialize"))
        .bind(version)
        .bind(e.incident)
        .execute(&mut *tx)
        .await
        .map_err(query_err("writing an event"))?;
    }
    Ok(())
}
