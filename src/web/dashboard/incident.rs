//! `GET /events/incident?host=&since=&until=`: a plain-text incident report on-call can paste to
//! customers: what failed (classes, phases, hosts, regions), where, when (first failure,
//! detection, switch, recovery) and what was switched, from the events and the probe results of
//! the window. The text is made by a pure function (`incident/text.rs`).

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
    let minutes_kept_from =
        now.ms() - now.config.store.minute_rollup_retention().as_millis() as i64;
    let table = if since >= minutes_kept_from {
        Table::Minute
    } else {
        Table::Hour
    };
    let ((periods, totals), mut events, phases) = tokio::try_join!(
        failures(&state.store, host.as_deref(), table, (since, until)),
        state
            .store
            .events(host.as_deref(), since, until, MAX_EVENTS),
        state.store.failure_phases(host.as_deref(), since, until),
    )?;
    events.reverse();
    let incident = Incident {
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
    };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text::render(&incident),
    )
        .into_response())
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
