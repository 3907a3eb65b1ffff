//! `GET /events?host=&since=&until=`: the decision timeline, newest first, with each event's
//! evidence per region, sample failures and the version it produced; a GET form filters it by host
//! and time, and a link leads to the plain-text incident report of the same selection.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};

use super::{Now, PageError, param, stamp};
use crate::engine::Event;
use crate::period::HOUR_MS;
use crate::store::Store;
use crate::web::AppState;

/// The most events one page lists.
const LIMIT: i64 = 500;
/// The window when `since` is not given.
pub(super) const DEFAULT_SPAN_MS: i64 = 24 * HOUR_MS;

pub(super) struct Evidence {
    pub region: String,
    pub text: String,
    pub invalid: bool,
    pub failing: bool,
}

pub(super) struct EventRow {
    pub at: String,
    pub reason: &'static str,
    pub host: String,
    pub change: &'static str,
    pub detail: String,
    pub evidence: Vec<Evidence>,
    pub samples: Vec<String>,
    pub version: Option<i64>,
}

pub(super) struct HostOption {
    pub name: String,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "events.html")]
pub(super) struct EventsPage {
    pub hosts: Vec<HostOption>,
    pub since: String,
    pub until: String,
    pub window: String,
    pub rows: Vec<EventRow>,
    pub truncated: bool,
    pub incident_href: String,
}

/// The `host` parameter: a configured host, or one that events name (it may have left the config).
pub(super) async fn host_param(
    params: &HashMap<String, String>,
    now: &Now,
    store: &Store,
) -> Result<Option<String>, PageError> {
    let Some(host) = param::given(params, "host") else {
        return Ok(None);
    };
    if now.config.host(host).is_some() || store.host_has_events(host).await? {
        return Ok(Some(host.to_string()));
    }
    let known: Vec<&str> = now.config.hosts.iter().map(|h| h.domain.as_str()).collect();
    Err(PageError::bad(
        "host",
        format!(
            "`{host}` is neither configured nor named by any event (configured: {})",
            known.join(", ")
        ),
    ))
}

/// A time in the form the incident link carries: RFC 3339 in UTC, no characters to escape.
pub(super) fn link_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

pub(super) async fn page(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<EventsPage, PageError> {
    param::only(&params, &["host", "since", "until"])?;
    let now = Now::of(&state);
    let host = host_param(&params, &now, &state.store).await?;
    let (since, until) = param::window(&params, now.at, DEFAULT_SPAN_MS)?;
    let mut events = state
        .store
        .events(host.as_deref(), since, until, LIMIT + 1)
        .await?;
    let truncated = events.len() as i64 > LIMIT;
    events.truncate(LIMIT as usize);
    let mut hosts: Vec<HostOption> = now
        .config
        .hosts
        .iter()
        .map(|h| HostOption {
            selected: host.as_deref() == Some(h.domain.as_str()),
            name: h.domain.clone(),
        })
        .collect();
    if let Some(h) = host.as_ref().filter(|h| now.config.host(h).is_none()) {
        hosts.push(HostOption {
            name: h.clone(),
            selected: true,
        });
    }
    let host_part = host
        .as_ref()
        .map(|h| format!("host={h}&"))
        .unwrap_or_default();
    Ok(EventsPage {
        hosts,
        since: param::given(&params, "since")
            .unwrap_or_default()
            .to_string(),
        until: param::given(&params, "until")
            .unwrap_or_default()
            .to_string(),
        window: format!("{} to {}", stamp(since), stamp(until)),
        rows: events.iter().map(|(e, v)| row(e, *v)).collect(),
        truncated,
        incident_href: format!(
            "/events/incident?{host_part}since={}&until={}",
            link_time(since),
            link_time(until)
        ),
    })
}

/// How an event changed its host: `enabled → disabled` and back, or nothing.
pub(super) fn change_text(e: &Event) -> &'static str {
    match (e.old_enabled, e.new_enabled) {
        (Some(true), Some(false)) => "enabled → disabled",
        (Some(false), Some(true)) => "disabled → enabled",
        (None, Some(false)) => "→ disabled",
        (None, Some(true)) => "→ enabled",
        _ => "",
    }
}

fn row(e: &Event, version: Option<i64>) -> EventRow {
    EventRow {
        at: stamp(e.at.timestamp_millis()),
        reason: e.reason.as_str(),
        host: e.host.clone().unwrap_or_default(),
        change: change_text(e),
        detail: e.detail.clone(),
        evidence: e
            .evidence
            .iter()
            .map(|(region, c)| Evidence {
                region: region.clone(),
                text: if c.invalid {
                    "invalid (control targets down)".into()
                } else {
                    format!("{} ok / {} failed", c.ok, c.failed)
                },
                invalid: c.invalid,
                failing: !c.invalid && c.failed > 0,
            })
            .collect(),
        samples: e.samples.iter().map(ToString::to_string).collect(),
        version,
    }
}
