//! `GET /events/incident?host=&since=&until=`: a plain-text incident report on-call can paste to
//! customers: what failed (classes, phases, hosts, regions), where, when (first failure,
//! detection, switch, recovery) and what was switched, from the events and the probe results of
//! the window. The text is made by a pure function (`incident/text.rs`). The same report is made
//! per incident (`of_incident`): its hosts over its time, from the events linked to it.

mod text;

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::events::{DEFAULT_SPAN_MS, host_param};
use super::{Now, PageError, param};
use crate::engine::Event;
use crate::period::{HOUR_MS, MINUTE_MS};
use crate::store::failures::{FailurePeriod, PhaseCount};
use crate::store::rollup::Table;
use crate::store::tallies::Tally;
use crate::store::{Store, StoreError};
use crate::web::AppState;

/// The events a report reads at most.
const MAX_EVENTS: i64 = 2_000;

/// Everything a report is made from.
#[derive(Debug, Clone, Default)]
pub(super) struct Incident {
    pub host: Option<String>,
    pub since_ms: i64,
    pub until_ms: i64,
    pub generated_ms: i64,
    /// Periods with failures, oldest first, and the length of one.
    pub periods: Vec<FailurePeriod>,
    pub period_ms: i64,
    pub totals: Tally,
    pub phases: Vec<PhaseCount>,
    /// Oldest first.
    pub events: Vec<(Event, Option<i64>)>,
    pub vendors: BTreeMap<String, String>,
}

pub(super) async fn report(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    param::only(&params, &["host", "since", "until"])?;
    let now = Now::of(&state);
    let host = host_param(&params, &now, &state.store).await?;
    let (since, until) = param::window(&params, now.at, DEFAULT_SPAN_MS)?;
    let mut events = state
        .store
        .events(host.as_deref(), since, until, MAX_EVENTS)
        .await?;
    events.reverse();
    let incident = gather(&state.store, &now, host, (since, until), events).await?;
    Ok(plain(text::render(&incident)))
}

/// The report of one incident: its host (when it touched one) over its time, with its own events.
pub(super) async fn of_incident(
    store: &Store,
    now: &Now,
    incident: &crate::incident::Incident,
) -> Result<String, PageError> {
    let host = match incident.hosts.iter().collect::<Vec<_>>().as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    };
    let interval = now.config.probe.interval().as_millis() as i64;
    let since = incident.opened_at.timestamp_millis() - 2 * interval;
    let until = incident
        .resolved_at
        .map_or(now.ms(), |t| t.timestamp_millis() + interval)
        .min(now.ms())
        .max(since + 1);
    let events = store.incident_events(incident.id, MAX_EVENTS).await?;
    let report = gather(store, now, host, (since, until), events).await?;
    Ok(text::render(&report))
}

/// A plain-text answer.
pub(super) fn plain(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// Everything a report of `host` (or every host) over `[since, until)` is made of, with `events`.
async fn gather(
    store: &Store,
    now: &Now,
    host: Option<String>,
    (since, until): (i64, i64),
    events: Vec<(Event, Option<i64>)>,
) -> Result<Incident, PageError> {
    let minutes_kept_from =
        now.ms() - now.config.store.minute_rollup_retention().as_millis() as i64;
    let table = if since >= minutes_kept_from {
        Table::Minute
    } else {
        Table::Hour
    };
    let ((periods, totals), phases) = tokio::try_join!(
        failures(store, host.as_deref(), table, (since, until)),
        store.failure_phases(host.as_deref(), since, until),
    )?;
    Ok(Incident {
        phases,
        host,
        since_ms: since,
        until_ms: until,
        generated_ms: now.ms(),
        periods,
        period_ms: match table {
            Table::Minute => MINUTE_MS,
            Table::Hour => HOUR_MS,
        },
        totals,
        events,
        vendors: now
            .config
            .hosts
            .iter()
            .map(|h| (h.domain.clone(), h.vendor.clone()))
            .collect(),
    })
}

/// The window's failure periods from `table`'s rollups, then the raw rows not rolled up yet, with
/// the probe and failure totals of the window.
async fn failures(
    store: &Store,
    host: Option<&str>,
    table: Table,
    (since, until): (i64, i64),
) -> Result<(Vec<FailurePeriod>, Tally), StoreError> {
    let (minutes_done, hours_done) = store.watermarks().await?;
    let done = match table {
        Table::Minute => minutes_done,
        Table::Hour => hours_done,
    };
    let rolled_to = done.unwrap_or(i64::MIN).clamp(since, until);
    let (mut periods, mut totals, (raw, raw_totals)) = tokio::try_join!(
        store.failure_periods(host, table, since, rolled_to),
        store.rollup_tally(host, table, since, rolled_to),
        store.raw_failure_periods(host, rolled_to, until),
    )?;
    periods.extend(raw);
    totals.add(raw_totals);
    Ok((periods, totals))
}
