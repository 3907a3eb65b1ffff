//! `GET /api/v1/status`: per host, per region and resolver, and per path, the latest probe summary
//! and the rolling success ratio.
//!
//! Public and cheap: the store reads only each series' newest rows and its last 15 minutes through
//! the series index, and an answer is served again for up to [`STATUS_TTL`] (as `/metrics` is), so
//! a flood of requests costs one read per second. It takes no parameters.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ApiError;
use crate::store::SeriesLatest;
use crate::web::AppState;

/// How long one answer is served again.
pub(super) const STATUS_TTL: Duration = Duration::from_secs(1);

/// The last answer, when it was made (real time) and the service's "now" it was made at.
#[derive(Debug, Default)]
pub(super) struct StatusCache {
    last: Mutex<Option<(Instant, DateTime<Utc>, Bytes)>>,
}

impl StatusCache {
    /// The last answer when it is younger than [`STATUS_TTL`] and, on a stepped clock, made at
    /// this same `now` (a test's step is a new moment).
    fn get(&self, now: DateTime<Utc>, stepped: bool) -> Option<Bytes> {
        let last = self.last.lock().expect("status cache");
        let (made, at, body) = last.as_ref()?;
        (made.elapsed() < STATUS_TTL && (!stepped || *at == now)).then(|| body.clone())
    }

    fn put(&self, now: DateTime<Utc>, body: Bytes) {
        *self.last.lock().expect("status cache") = Some((Instant::now(), now, body));
    }
}

/// The window of the rolling success ratio.
const RATIO_WINDOW_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Default, Serialize)]
pub(super) struct Summary {
    /// Unix ms of the newest probe counted in `latest_*`.
    pub latest_at_ms: i64,
    pub latest_results: u64,
    pub latest_failed: u64,
    /// Failure classes of the latest probes, with counts.
    pub latest_failures: BTreeMap<String, u64>,
    pub window_results: u64,
    pub window_failed: u64,
    /// Successes / results over the last 15 minutes; absent when nothing was probed.
    pub success_ratio_15m: Option<f64>,
}

impl Summary {
    fn add_latest(&mut self, l: &SeriesLatest) {
        self.latest_at_ms = self.latest_at_ms.max(l.at_ms);
        self.latest_results += 1;
        if let Some(f) = &l.failure {
            self.latest_failed += 1;
            *self.latest_failures.entry(f.clone()).or_default() += 1;
        }
    }

    fn add_window(&mut self, n: u64, failed: u64) {
        self.window_results += n;
        self.window_failed += failed;
        self.success_ratio_15m = (self.window_results > 0).then(|| {
            (self.window_results - self.window_failed) as f64 / self.window_results as f64
        });
    }
}

#[derive(Debug, Default, Serialize)]
pub(super) struct HostStatus {
    /// Keyed "region/resolver".
    pub by_region_resolver: BTreeMap<String, Summary>,
    pub by_path: BTreeMap<String, Summary>,
}

#[derive(Debug, Serialize)]
pub(super) struct Status {
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub hosts: BTreeMap<String, HostStatus>,
    pub scheduler: SchedulerStatus,
    pub store: StoreStatus,
}

#[derive(Debug, Serialize)]
pub(super) struct SchedulerStatus {
    pub series: u64,
    pub probes_started: u64,
    pub in_flight: u64,
    pub skipped_overlap: u64,
    pub lag_p50_ms: Option<f64>,
    pub lag_p99_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(super) struct StoreStatus {
    pub queue_depth: usize,
    pub written: u64,
    pub dropped: u64,
}

/// `GET /api/v1/status`.
pub(super) async fn status(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let name = q
            .split('&')
            .next()
            .unwrap_or("")
            .split('=')
            .next()
            .unwrap_or("");
        return Err(ApiError::BadRequest(format!(
            "unknown parameter `{name}` (/api/v1/status takes none)"
        )));
    }
    let now = state.clock.now();
    let stepped = state.clock.is_stepped();
    let body = match state.guards.status.get(now, stepped) {
        Some(body) => body,
        None => {
            let status = read(&state, now).await?;
            let body = Bytes::from(serde_json::to_vec(&status).map_err(|e| {
                tracing::error!(error = %e, "encoding the status failed");
                ApiError::Unavailable("the status cannot be encoded right now".into())
            })?);
            state.guards.status.put(now, body.clone());
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The status as of `now`, from the store and the service's counters.
async fn read(state: &AppState, now: DateTime<Utc>) -> Result<Status, ApiError> {
    let latest = state.store.latest().await?;
    let counts = state
        .store
        .counts_since(now.timestamp_millis() - RATIO_WINDOW_MS)
        .await?;
    let mut hosts: BTreeMap<String, HostStatus> = BTreeMap::new();
    for l in &latest {
        let host = hosts.entry(l.series.host.clone()).or_default();
        host.by_path
            .entry(l.series.path.clone())
            .or_default()
            .add_latest(l);
        let rr = format!("{}/{}", l.series.region, l.series.resolver);
        host.by_region_resolver.entry(rr).or_default().add_latest(l);
    }
    for (key, n, failed) in &counts {
        let host = hosts.entry(key.host.clone()).or_default();
        host.by_path
            .entry(key.path.clone())
            .or_default()
            .add_window(*n, *failed);
        let rr = format!("{}/{}", key.region, key.resolver);
        host.by_region_resolver
            .entry(rr)
            .or_default()
            .add_window(*n, *failed);
    }
    let lag = state.scheduler.lag.lock().expect("lag histogram").clone();
    let stats = state.ingest.stats();
    Ok(Status {
        generated_at: now,
        hosts,
        scheduler: SchedulerStatus {
            probes_started: state.scheduler.started.load(Ordering::Relaxed),
            skipped_overlap: state.scheduler.skipped_overlap.load(Ordering::Relaxed),
            series: state.scheduler.series.load(Ordering::Relaxed),
            in_flight: state.scheduler.in_flight.load(Ordering::Relaxed),
            lag_p50_ms: lag.quantile_ms(0.5),
            lag_p99_ms: lag.quantile_ms(0.99),
        },
        store: StoreStatus {
            queue_depth: state.ingest.depth(),
            written: stats.written.load(Ordering::Relaxed),
            dropped: stats.dropped.load(Ordering::Relaxed),
        },
    })
}
