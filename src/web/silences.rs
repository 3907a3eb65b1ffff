//! Silences over JSON: `GET/POST /api/v1/silences`, `DELETE /api/v1/silences/{id}`. Making and
//! clearing one needs the admin token, checked from the headers before any body is read
//! (web::guards), and is audited as an event; the config page's forms go through the same
//! functions. A silence mutes messages only (notify::silence); it never changes a decision.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::admin::{DEFAULT_EXPIRY_S, MAX_EXPIRY_S, MAX_TEXT_CHARS, admin, admin_body};
use super::guards::Refusal;
use crate::config::{Config, SCOPE_KINDS};
use crate::engine::{Event, Reason};
use crate::notify::silence::{BadField, Matchers, Recurrence, RecurrenceWire, Silence};
use crate::store::StoreError;
use crate::store::silences::SilenceRow;
use crate::web::AppState;

/// Longest lifetime of a recurring window with an expiry: a year and a day.
const MAX_WINDOW_EXPIRY_S: i64 = 366 * 24 * 3600;
/// A silence as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewSilence {
    pub host: Option<String>,
    pub vendor: Option<String>,
    pub region: Option<String>,
    /// A scope kind (`vendor`, `edge` …).
    pub scope: Option<String>,
    pub reason: String,
    pub actor: String,
    /// Seconds until it expires (or `expires_at`); a one-off lasts 24 h by default, a week at most.
    pub expires_in_s: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    /// A recurring window; without an expiry it lasts until cleared.
    pub every: Option<RecurrenceWire>,
}

/// A silence as listed.
#[derive(Debug, Serialize)]
pub(super) struct SilenceView {
    pub id: i64,
    #[serde(flatten)]
    pub matchers: Matchers,
    pub reason: String,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub every: Option<RecurrenceWire>,
    /// Whether it mutes matching messages right now (a window may be closed).
    pub in_effect: bool,
}

impl SilenceView {
    pub(super) fn of(s: &Silence, now: DateTime<Utc>) -> SilenceView {
        SilenceView {
            id: s.id,
            matchers: s.matchers.clone(),
            reason: s.reason.clone(),
            actor: s.actor.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            every: s.every.as_ref().map(Recurrence::wire),
            in_effect: s.in_effect(now),
        }
    }
}

/// One live silence as listed.
pub(super) struct SilenceLine {
    pub id: i64,
    pub matchers: String,
    pub reason: String,
    pub actor: String,
    /// Its window, or "always".
    pub when: String,
    pub until: String,
    pub in_effect: bool,
}

impl SilenceLine {
    pub(super) fn of(s: &Silence, now: DateTime<Utc>) -> SilenceLine {
        SilenceLine {
            id: s.id,
            matchers: s.matchers.to_string(),
            reason: s.reason.clone(),
            actor: s.actor.clone(),
            when: s.every.map_or_else(|| "always".into(), |w| w.to_string()),
            until: s.expires_at.map_or_else(
                || "until cleared".into(),
                |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ),
            in_effect: s.in_effect(now),
        }
    }
}

fn refused(b: BadField) -> ApiError {
    ApiError::BadRequest(b.to_string())
}

fn bad(field: &'static str, why: impl Into<String>) -> ApiError {
    refused(BadField {
        field,
        why: why.into(),
    })
}

/// A matcher as given: blank is not given; a name must be in the config.
fn matcher(
    field: &'static str,
    v: Option<&String>,
    (known, noun): (&[&str], &str),
) -> Result<Option<String>, ApiError> {
    let Some(v) = v.map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if known.contains(&v) {
        return Ok(Some(v.to_string()));
    }
    let list = if known.len() <= 12 {
        format!(" (expected one of {})", known.join(", "))
    } else {
        String::new()
    };
    Err(bad(field, format!("`{v}` is not {noun}{list}")))
}

fn matchers(config: &Config, s: &NewSilence) -> Result<Matchers, ApiError> {
    let hosts: Vec<&str> = config.hosts.iter().map(|h| h.domain.as_str()).collect();
    let vendors: Vec<&str> = config.vendors.iter().map(|v| v.name.as_str()).collect();
    let regions: Vec<&str> = config.regions.iter().map(|r| r.name.as_str()).collect();
    let m = Matchers {
        host: matcher("host", s.host.as_ref(), (&hosts, "a host of the config"))?,
        vendor: matcher(
            "vendor",
            s.vendor.as_ref(),
            (&vendors, "a vendor of the config"),
        )?,
        region: matcher(
            "region",
            s.region.as_ref(),
            (&regions, "a region of the config"),
        )?,
        scope: matcher("scope", s.scope.as_ref(), (&SCOPE_KINDS, "a scope kind"))?,
    };
    if m.is_empty() {
        return Err(bad(
            "host",
            "a silence needs at least one matcher: `host`, `vendor`, `region` or `scope`",
        ));
    }
    Ok(m)
}

/// When it expires: `None` for a recurring window kept until cleared.
fn expiry(
    s: &NewSilence,
    recurring: bool,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let max = if recurring {
        MAX_WINDOW_EXPIRY_S
    } else {
        MAX_EXPIRY_S
    };
    let secs = match (s.expires_in_s, s.expires_at) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "expires_at",
                "give `expires_at` or `expires_in_s`, not both",
            ));
        }
        (Some(secs), None) => secs,
        (None, Some(at)) => (at - now).num_seconds(),
        (None, None) if recurring => return Ok(None),
        (None, None) => DEFAULT_EXPIRY_S,
    };
    if !(60..=max).contains(&secs) {
        let field = if s.expires_at.is_some() {
            "expires_at"
        } else {
            "expires_in_s"
        };
        return Err(bad(
            field,
            format!("must be from 60 to {max} seconds from now"),
        ));
    }
    Ok(Some(now + chrono::Duration::seconds(secs)))
}

/// Validates and stores a silence with its audit event; shared by the JSON API and the config
/// page's form.
pub(super) async fn add(state: &AppState, s: NewSilence) -> Result<i64, ApiError> {
    let config = state.config.get();
    let m = matchers(&config, &s)?;
    for (field, v) in [("reason", &s.reason), ("actor", &s.actor)] {
        if v.trim().is_empty() || v.chars().count() > MAX_TEXT_CHARS {
            return Err(bad(
                field,
                format!("must be 1 to {MAX_TEXT_CHARS} characters"),
            ));
        }
    }
    let every = s.every.as_ref().map(Recurrence::parse).transpose();
    let every = every.map_err(refused)?;
    let now = state.clock.now();
    let expires_at = expiry(&s, every.is_some(), now)?;
    let silence = Silence {
        id: 0,
        matchers: m,
        reason: s.reason.trim().to_string(),
        actor: s.actor.trim().to_string(),
        created_at: now,
        expires_at,
        every,
    };
    let row = row_of(&silence);
    let id = (state.store)
        .add_silence(&row, |id| made(&silence, id, now))
        .await?;
    tracing::info!(id, matchers = %silence.matchers, actor = %silence.actor, "silence added");
    Ok(id)
}

fn row_of(s: &Silence) -> SilenceRow {
    SilenceRow {
        id: s.id,
        host: s.matchers.host.clone(),
        vendor: s.matchers.vendor.clone(),
        region: s.matchers.region.clone(),
        scope: s.matchers.scope.clone(),
        reason: s.reason.clone(),
        actor: s.actor.clone(),
        every: (s.every.as_ref())
            .map(|w| serde_json::to_string(&w.wire()).expect("a recurrence serializes")),
        created_at_ms: s.created_at.timestamp_millis(),
        expires_at_ms: s.expires_at.map(|e| e.timestamp_millis()),
    }
}

/// The event the events page shows of a new silence: who silenced what, until when, and why.
fn made(s: &Silence, id: i64, now: DateTime<Utc>) -> Event {
    let until = match s.expires_at {
        Some(e) => format!("until {}", e.format("%Y-%m-%d %H:%M UTC")),
        None => "until cleared".to_string(),
    };
    let every = s.every.map(|w| format!(", {w}")).unwrap_or_default();
    let detail = format!(
        "silence {id}: {} silenced {} {until}{every}: {}",
        s.actor, s.matchers, s.reason
    );
    audit(s.matchers.host.clone(), Reason::Silenced, detail, now)
}

/// The event of a cleared silence.
fn cleared(r: &SilenceRow, now: DateTime<Utc>) -> Event {
    let m = Matchers {
        host: r.host.clone(),
        vendor: r.vendor.clone(),
        region: r.region.clone(),
        scope: r.scope.clone(),
    };
    let detail = format!(
        "silence {} ({m}) cleared; {} had made it: {}",
        r.id, r.actor, r.reason
    );
    audit(m.host, Reason::SilenceCleared, detail, now)
}

fn audit(host: Option<String>, reason: Reason, detail: String, now: DateTime<Utc>) -> Event {
    Event {
        host,
        ..Event::bare(now, reason, detail)
    }
}

/// Clears the live silence `id` (as given in a path), audited; shared by the JSON API and the
/// config page's form.
pub(super) async fn remove(state: &AppState, id: &str) -> Result<i64, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("`{id}` is not a silence id")))?;
    let now = state.clock.now();
    let cleared = (state.store)
        .clear_silence(id, now.timestamp_millis(), |row| cleared(row, now))
        .await?;
    match cleared {
        Some(_) => {
            tracing::info!(id, "silence cleared");
            Ok(id)
        }
        None => Err(ApiError::NotFound(format!("live silence {id}"))),
    }
}

/// The live silences, oldest first; a row that does not read is logged and left out.
pub(super) async fn live(state: &AppState) -> Result<Vec<Silence>, StoreError> {
    let rows = (state.store)
        .live_silences(state.clock.now().timestamp_millis())
        .await?;
    Ok(crate::notify::silence::read_rows(&rows))
}

/// How many silences mute matching messages right now.
pub(super) async fn muting(state: &AppState) -> Result<usize, StoreError> {
    let now = state.clock.now();
    Ok(live(state)
        .await?
        .iter()
        .filter(|s| s.in_effect(now))
        .count())
}

/// `POST /api/v1/silences`.
pub(super) async fn create(
    State(state): State<AppState>,
    req: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), Refusal> {
    let s: NewSilence = admin_body(&state, req, "silence").await?;
    let id = add(&state, s).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

/// `GET /api/v1/silences`: the live silences (readable without the token).
pub(super) async fn list(
    State(state): State<AppState>,
) -> Result<Json<Vec<SilenceView>>, ApiError> {
    let now = state.clock.now();
    let live = live(&state).await?;
    Ok(Json(live.iter().map(|s| SilenceView::of(s, now)).collect()))
}

/// `DELETE /api/v1/silences/{id}`.
pub(super) async fn clear(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<StatusCode, Refusal> {
    let (parts, _body) = req.into_parts();
    admin(&state, &parts)?;
    remove(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
