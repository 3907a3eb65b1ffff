//! Incidents for on-call and for tools: the page `/incidents` (open first, then the history), a
//! page per incident `/incidents/{id}` (its scope, what it touched, its timeline, the events linked
//! to it, its plain-text report) and `/incidents/{id}/report`; the API `GET /api/v1/incidents`
//! (`state=open|resolved`, `since=`) and `GET /api/v1/incidents/{id}` as JSON.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Serialize;

use super::{Now, PageError, incident, param, stamp};
use crate::engine::Event;
use crate::incident::{Incident, IncidentState};
use crate::period::HOUR_MS;
use crate::web::silences::SilenceLine;
use crate::web::{ApiError, AppState};

/// The history the list shows when `since` is not given: 30 days.
const DEFAULT_SPAN_MS: i64 = 30 * 24 * HOUR_MS;
/// Events shown with one incident at most.
const EVENTS_SHOWN: i64 = 500;

/// One incident as the list shows it.
pub(super) struct Row {
    pub id: i64,
    pub open: bool,
    pub kind: &'static str,
    pub scope: String,
    pub classes: String,
    pub hosts: String,
    pub opened: String,
    pub ended: String,
    pub versions: String,
}

impl Row {
    fn of(i: &Incident) -> Row {
        Row {
            id: i.id,
            open: i.state == IncidentState::Open,
            kind: i.scope.kind(),
            scope: i.scope.to_string(),
            classes: classes(i),
            hosts: list(i.hosts.iter()),
            opened: stamp(i.opened_at.timestamp_millis()),
            ended: i
                .resolved_at
                .map_or_else(|| "open".into(), |t| stamp(t.timestamp_millis())),
            versions: list(i.versions().iter()),
        }
    }
}

fn list<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    if items.is_empty() {
        "—".into()
    } else {
        items.join(", ")
    }
}

fn classes(i: &Incident) -> String {
    list(i.classes.iter())
}

/// One notification channel's delivery as shown.
pub(super) struct ChannelRow {
    pub name: String,
    pub kind: &'static str,
    pub last_ok: String,
    pub last_error: String,
    pub failing: bool,
    pub queued: usize,
    pub sent: u64,
    pub failed: u64,
}

#[derive(Template, WebTemplate)]
#[template(path = "incidents.html")]
pub(super) struct ListPage {
    pub silences: Vec<SilenceLine>,
    pub open: Vec<Row>,
    pub history: Vec<Row>,
    pub window: String,
    pub channels: Vec<ChannelRow>,
}

fn channel_rows(state: &AppState) -> Vec<ChannelRow> {
    state
        .outbox
        .deliveries()
        .into_iter()
        .map(|(name, d)| ChannelRow {
            name,
            kind: d.kind,
            last_ok: d
                .last_ok
                .map_or_else(|| "never".into(), |t| stamp(t.timestamp_millis())),
            failing: d
                .last_error
                .as_ref()
                .is_some_and(|(at, _)| d.last_ok.is_none_or(|ok| *at > ok)),
            last_error: d.last_error.map_or_else(
                || "—".into(),
                |(at, why)| format!("{}: {why}", stamp(at.timestamp_millis())),
            ),
            queued: d.queued,
            sent: d.sent,
            failed: d.failed,
        })
        .collect()
}

/// One timeline entry as shown.
pub(super) struct Line {
    pub at: String,
    pub text: String,
}

/// One linked event as shown.
pub(super) struct EventLine {
    pub at: String,
    pub reason: &'static str,
    pub host: String,
    pub detail: String,
    pub version: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "incident.html")]
pub(super) struct OnePage {
    pub row: Row,
    pub regions: String,
    pub paths: String,
    pub resolvers: String,
    pub edges: String,
    pub timeline: Vec<Line>,
    pub dropped: usize,
    pub events: Vec<EventLine>,
    pub report: String,
}

/// `GET /incidents`.
pub(super) async fn page(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<ListPage, PageError> {
    param::only(&params, &["since"])?;
    let now = Now::of(&state);
    let since = match param::given(&params, "since") {
        Some(v) => param::parse_time("since", v, now.at)?,
        None => now.ms() - DEFAULT_SPAN_MS,
    };
    let all = state.store.incidents(None, since).await?;
    let silences = crate::web::silences::live(&state).await?;
    let (open, history): (Vec<&Incident>, Vec<&Incident>) =
        all.iter().partition(|i| i.state == IncidentState::Open);
    Ok(ListPage {
        silences: silences
            .iter()
            .map(|s| SilenceLine::of(s, now.at))
            .collect(),
        open: open.into_iter().map(Row::of).collect(),
        history: history.into_iter().map(Row::of).collect(),
        window: format!("since {}", stamp(since)),
        channels: channel_rows(&state),
    })
}

/// `GET /incidents/{id}`.
pub(super) async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<OnePage, PageError> {
    let now = Now::of(&state);
    let i = find(&state, &id).await?;
    let events = state.store.incident_events(i.id, EVENTS_SHOWN).await?;
    let report = incident::of_incident(&state.store, &now, &i).await?;
    Ok(OnePage {
        regions: list(i.regions.iter()),
        paths: list(i.paths.iter()),
        resolvers: list(i.resolvers.iter().map(|(r, name)| format!("{r}/{name}"))),
        edges: list(i.edges.iter()),
        timeline: i
            .timeline
            .iter()
            .map(|e| Line {
                at: stamp(e.at.timestamp_millis()),
                text: e.what.to_string(),
            })
            .collect(),
        dropped: i.timeline_dropped,
        events: events.iter().map(event_line).collect(),
        report,
        row: Row::of(&i),
    })
}

/// `GET /incidents/{id}/report`: the plain-text report alone.
pub(super) async fn report(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let now = Now::of(&state);
    let i = find(&state, &id).await?;
    Ok(incident::plain(
        incident::of_incident(&state.store, &now, &i).await?,
    ))
}

fn event_line((e, version): &(Event, Option<i64>)) -> EventLine {
    EventLine {
        at: stamp(e.at.timestamp_millis()),
        reason: e.reason.as_str(),
        host: e.host.clone().unwrap_or_default(),
        detail: e.detail.clone(),
        version: *version,
    }
}

/// The incident `id` names, or a 400 / 404 page saying why not.
async fn find(state: &AppState, id: &str) -> Result<Incident, PageError> {
    let n: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| PageError::bad("id", format!("`{id}` is not an incident number")))?;
    state
        .store
        .incident(n)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("there is no incident {n}")))
}

/// An incident in the API, with where its page and report are.
#[derive(Serialize)]
pub(super) struct IncidentInfo {
    #[serde(flatten)]
    incident: Incident,
    versions: Vec<i64>,
    page: String,
    report: String,
}

impl IncidentInfo {
    fn of(incident: Incident) -> IncidentInfo {
        IncidentInfo {
            versions: incident.versions().into_iter().collect(),
            page: format!("/incidents/{}", incident.id),
            report: format!("/incidents/{}/report", incident.id),
            incident,
        }
    }
}

/// One incident with the events linked to it.
#[derive(Serialize)]
pub(super) struct IncidentDetail {
    #[serde(flatten)]
    info: IncidentInfo,
    events: Vec<crate::web::hostlist::EventInfo>,
}

fn api_error(e: PageError) -> ApiError {
    match e {
        PageError::BadParam { name, why } => {
            ApiError::BadRequest(format!("parameter `{name}`: {why}"))
        }
        PageError::NotFound(what) => ApiError::NotFound(what),
        PageError::Store(e) => ApiError::Store(e),
    }
}

/// `GET /api/v1/incidents?state=open|resolved&since=…`: newest first (every open one, and those
/// opened since `since`, 30 days by default).
pub(super) async fn api_list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<IncidentInfo>>, ApiError> {
    param::only(&params, &["state", "since"]).map_err(api_error)?;
    let now = Now::of(&state);
    let wanted = match param::given(&params, "state") {
        None => None,
        Some(s) => Some(IncidentState::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "parameter `state`: `{s}` is neither open nor resolved"
            ))
        })?),
    };
    let since = match param::given(&params, "since") {
        Some(v) => param::parse_time("since", v, now.at).map_err(api_error)?,
        None => now.ms() - DEFAULT_SPAN_MS,
    };
    let incidents = state.store.incidents(wanted, since).await?;
    Ok(Json(incidents.into_iter().map(IncidentInfo::of).collect()))
}

/// `GET /api/v1/incidents/{id}`.
pub(super) async fn api_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let i = find(&state, &id).await.map_err(api_error)?;
    let events = state.store.incident_events(i.id, EVENTS_SHOWN).await?;
    Ok(Json(IncidentDetail {
        events: events
            .into_iter()
            .map(|(event, version)| crate::web::hostlist::EventInfo { event, version })
            .collect(),
        info: IncidentInfo::of(i),
    }))
}
