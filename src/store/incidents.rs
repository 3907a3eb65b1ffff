//! SQL for incidents: each one's row rewritten after a round that changed it, in one transaction per
//! round with the notices it made (the outbox: `store/outbox.rs`); read back at start (the open ones and those resolved recently, for the tracker) and by
//! the API and pages (a list by state and time, one by id, the events linked to one).

use crate::engine::Event;
use crate::incident::{Incident, IncidentState};

use super::outbox::NewNotice;
use super::publish::event_row;
use super::{Store, StoreError, query_err};

/// Incidents one list returns at most.
pub const LIST_LIMIT: i64 = 500;

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        what: "incidents",
        detail,
    }
}

fn incident_of(body: &str) -> Result<Incident, StoreError> {
    serde_json::from_str(body).map_err(|e| corrupt(e.to_string()))
}

impl Store {
    /// Writes every incident of `incidents` (new or changed), and the notices they made for each
    /// channel (into the outbox, a notice already there ignored), in one transaction, at `now_ms`.
    pub async fn save_incidents(
        &self,
        incidents: &[&Incident],
        notices: &[NewNotice<'_>],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if incidents.is_empty() && notices.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(query_err("starting an incident write"))?;
        for i in incidents {
            let body = serde_json::to_string(i).expect("an incident serializes");
            sqlx::query(
                "INSERT INTO incidents (id, kind, state, opened_at_ms, updated_at_ms, resolved_at_ms, body)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state,
                   updated_at_ms = excluded.updated_at_ms, resolved_at_ms = excluded.resolved_at_ms,
                   body = excluded.body",
            )
            .bind(i.id)
            .bind(i.scope.kind())
            .bind(i.state.as_str())
            .bind(i.opened_at.timestamp_millis())
            .bind(i.updated_at.timestamp_millis())
            .bind(i.resolved_at.map(|t| t.timestamp_millis()))
            .bind(body)
            .execute(&mut *tx)
            .await
            .map_err(query_err("writing an incident"))?;
        }
        for n in notices {
            sqlx::query(
                "INSERT OR IGNORE INTO notifications
                   (channel, incident, seq, change, notice, state, created_at_ms, next_at_ms)
                 VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            )
            .bind(n.channel)
            .bind(n.incident)
            .bind(n.seq)
            .bind(n.change)
            .bind(&n.body)
            .bind(now_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(query_err("writing a notification"))?;
        }
        tx.commit().await.map_err(query_err("committing incidents"))
    }

    /// What the tracker starts from: the open incidents and those resolved at or after
    /// `resolved_since_ms`, oldest first, and the next free number.
    pub async fn kept_incidents(
        &self,
        resolved_since_ms: i64,
    ) -> Result<(Vec<Incident>, i64), StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT body FROM incidents WHERE state = 'open' OR resolved_at_ms >= ? ORDER BY id",
        )
        .bind(resolved_since_ms)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading the open incidents"))?;
        // Events name their incident before it is saved again: a number they name is taken too.
        let (max,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(m) FROM (SELECT MAX(id) AS m FROM incidents UNION ALL SELECT MAX(incident) FROM events)",
        )
            .fetch_one(&self.reader)
            .await
            .map_err(query_err("reading the incident numbers"))?;
        let kept = rows
            .iter()
            .map(|(b,)| incident_of(b))
            .collect::<Result<_, _>>()?;
        Ok((kept, max.unwrap_or(0) + 1))
    }

    /// Incidents opened at or after `since_ms` (or still open), newest first, in `state` if given.
    pub async fn incidents(
        &self,
        state: Option<IncidentState>,
        since_ms: i64,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT body FROM incidents
             WHERE (?1 IS NULL OR state = ?1) AND (opened_at_ms >= ?2 OR state = 'open')
             ORDER BY opened_at_ms DESC, id DESC LIMIT ?3",
        )
        .bind(state.map(IncidentState::as_str))
        .bind(since_ms)
        .bind(LIST_LIMIT)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading incidents"))?;
        rows.iter().map(|(b,)| incident_of(b)).collect()
    }

    /// One incident.
    pub async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT body FROM incidents WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(query_err("reading an incident"))?;
        row.map(|(b,)| incident_of(&b)).transpose()
    }

    /// The events linked to incident `id`, oldest first, with the versions they produced.
    pub async fn incident_events(
        &self,
        id: i64,
        limit: i64,
    ) -> Result<Vec<(Event, Option<i64>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, host, old_enabled, new_enabled, reason, detail, evidence, samples, version, incident
             FROM events WHERE incident = ? ORDER BY at_ms, id LIMIT ?",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("reading an incident's events"))?;
        rows.iter().map(event_row).collect()
    }
}
