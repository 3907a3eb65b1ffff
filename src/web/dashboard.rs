//! The on-call pages: the overview `/`, a host `/hosts/{host}`, the paths `/paths`, the decision
//! timeline `/events` and its plain-text incident report `/events/incident`, the incidents
//! `/incidents` (and their API, `/api/v1/incidents`), the regional agents `/agents`.
//!
//! Server-rendered with askama (templates/), readable without JavaScript, refreshing themselves
//! while open. Every HTML answer carries a Content-Security-Policy of `default-src 'self'` and
//! `nosniff`; bad input gets a 4xx page naming what is wrong, a database failure a 503 page. The
//! pages only read: what to show comes from the store, the config, the published version and the
//! latest control-target verdicts (`results`), and what the fleet knows of its agents.

mod agents;
mod board;
mod chart;
mod dns;
mod events;
mod host;
mod incident;
mod incidents;
mod overview;
mod param;
mod paths;

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::engine::{Event, Reason};
use crate::period::HOUR_MS;
use crate::store::charts::BucketCache;
use crate::store::periods::{HostPath, PeriodCache, WindowSum};
use crate::store::rollup::Table;
use crate::store::tallies::Tally;
use crate::store::{Store, StoreError};
use crate::web::AppState;

/// The dashboard's routes, with the caches of rolled-up periods and chart buckets they share.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/hosts/{host}", get(host::page))
        .route("/paths", get(paths::page))
        .route("/events", get(events::page))
        .route("/events/incident", get(incident::report))
        .route("/incidents", get(incidents::page))
        .route("/agents", get(agents::page))
        .route("/incidents/{id}", get(incidents::one))
        .route("/incidents/{id}/report", get(incidents::report))
        .route("/api/v1/incidents", get(incidents::api_list))
        .route("/api/v1/incidents/{id}", get(incidents::api_one))
        .layer(Extension(Arc::new(PeriodCache::default())))
        .layer(Extension(Arc::new(BucketCache::default())))
        .layer(axum::middleware::map_response(protect))
}

/// How often the pages that open an incident (the overview and the paths) are rendered in the
/// background.
const WARM_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Keeps the period caches of `/` and `/paths` warm until `stop`: renders both once at start and
/// then every `WARM_EVERY`, answers thrown away. Their first view otherwise reads a day of
/// rollups of every series at once (README, the dashboard benchmark: ~240 ms at 3,000 series), just
/// when an on-call engineer opens them; a warm render costs ~25 ms a minute.
pub async fn keep_warm(app: Router, stop: tokio_util::sync::CancellationToken) {
    let mut ticker = tokio::time::interval(WARM_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => warm(&app).await,
        }
    }
}

/// One background render of `/` and `/paths` through `app` (the whole router, as a browser's
/// request goes), filling their period caches.
pub async fn warm(app: &Router) {
    use tower::ServiceExt as _;
    for path in ["/", "/paths"] {
        let request = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .expect("a static request");
        match app.clone().oneshot(request).await {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => tracing::debug!(path, status = %resp.status(), "warming a page"),
            Err(e) => match e {},
        }
    }
}

/// The headers every dashboard answer carries: nothing from elsewhere may run or load, and the
/// browser must not guess a content type.
async fn protect(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A query parameter is missing, unknown or malformed.
    #[error("parameter `{name}`: {why}")]
    BadParam {
        /// The parameter.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// Nothing is there (404).
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error("the database is unavailable; try again in a moment")]
    Store(#[from] StoreError),
}

impl PageError {
    /// A bad parameter `name`, and why.
    pub fn bad(name: &str, why: impl Into<String>) -> PageError {
        PageError::BadParam {
            name: name.to_string(),
            why: why.into(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            PageError::BadParam { .. } => (StatusCode::BAD_REQUEST, "Bad request"),
            PageError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            PageError::Store(cause) => {
                tracing::error!(error = %cause, "a dashboard page failed on the store");
                (StatusCode::SERVICE_UNAVAILABLE, "Unavailable")
            }
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message: self.to_string(),
        };
        (status, page).into_response()
    }
}

/// What every page reads at the start: the config in force and the time.
struct Now {
    config: Arc<Config>,
    at: DateTime<Utc>,
}

impl Now {
    fn of(state: &AppState) -> Now {
        Now {
            config: state.config.get(),
            at: state.clock.now(),
        }
    }

    fn ms(&self) -> i64 {
        self.at.timestamp_millis()
    }

    /// Probes that started before this are too old to describe the present: three intervals.
    fn fresh_since_ms(&self) -> i64 {
        self.ms() - 3 * self.config.probe.interval().as_millis() as i64
    }
}

/// The rollup watermarks: everything before `minutes` is in the minute rollups, everything before
/// `hours` in the hour rollups.
#[derive(Debug, Clone, Copy)]
struct Marks {
    minutes: Option<i64>,
    hours: Option<i64>,
}

impl Marks {
    async fn read(store: &Store) -> Result<Marks, StoreError> {
        let (minutes, hours) = store.watermarks().await?;
        Ok(Marks { minutes, hours })
    }

    /// Where the rolled-up part of a window from `from_ms` to `to_ms` ends (the raw rows go on).
    fn rolled_to(&self, from_ms: i64, to_ms: i64) -> i64 {
        self.minutes.unwrap_or(i64::MIN).clamp(from_ms, to_ms)
    }
}

/// Per (host, path): probes, failures and the total-time histogram of the rolled-up part of
/// `[from_ms, to_ms)`: whole hours from the hour rollups when `hours` is set, then minutes from the
/// minute rollups, both through the period cache. The raw rows after [`Marks::rolled_to`] are
/// added by the caller ([`add_raw`]), so that one query serves several windows.
async fn rolled_sums(
    store: &Store,
    cache: &PeriodCache,
    (from_ms, to_ms): (i64, i64),
    marks: Marks,
    hours: bool,
) -> Result<HashMap<HostPath, WindowSum>, StoreError> {
    let minutes_done = marks.rolled_to(from_ms, to_ms);
    let mut out: HashMap<HostPath, WindowSum> = HashMap::new();
    let mut minutes_from = from_ms;
    if hours {
        let hours_done = marks.hours.unwrap_or(i64::MIN).clamp(from_ms, minutes_done);
        let hours_to = hours_done.div_euclid(HOUR_MS) * HOUR_MS;
        if hours_to > from_ms {
            out = cache.sums(store, Table::Hour, from_ms, hours_to).await?;
            minutes_from = hours_to;
        }
    }
    if minutes_done > minutes_from {
        for (key, sum) in cache
            .sums(store, Table::Minute, minutes_from, minutes_done)
            .await?
        {
            let s = out.entry(key).or_default();
            s.tally.add(sum.tally);
            s.total.merge(&sum.total);
        }
    }
    Ok(out)
}

/// Adds raw-row tallies to window sums.
fn add_raw(
    sums: &mut HashMap<HostPath, WindowSum>,
    raw: impl IntoIterator<Item = (String, String, Tally)>,
) {
    for (host, path, tally) in raw {
        sums.entry((host, path)).or_default().tally.add(tally);
    }
}

/// A figure for a table cell and whether it is in the warning style.
pub struct Figure {
    /// The text shown.
    pub text: String,
    /// Whether it is shown in the warning style.
    pub warn: bool,
}

/// Days until a certificate's notAfter (Unix seconds), a warning under the configured limit.
fn cert_days(not_after_s: Option<i64>, now: &Now) -> Figure {
    let Some(not_after) = not_after_s else {
        return Figure {
            text: "—".into(),
            warn: false,
        };
    };
    let days = (not_after - now.ms() / 1000).div_euclid(86_400);
    let text = if days < 0 {
        format!("expired {} d ago", -days)
    } else {
        format!("{days} d")
    };
    Figure {
        text,
        warn: days < now.config.dashboard.cert_warn_days as i64,
    }
}

/// The hosts the published version disables (none before the first version).
fn disabled_hosts(published: Option<&crate::publish::Published>) -> HashMap<String, bool> {
    published
        .map(|p| {
            p.hosts()
                .iter()
                .map(|h| (h.host.clone(), h.is_disabled))
                .collect()
        })
        .unwrap_or_default()
}

/// A host's name, its place in the failover group, and whether clients may use it now and why:
/// the reason of the event that last changed it, shown for a disabled host and for one a guard or
/// an operator keeps enabled, with the event's detail as its tooltip.
pub struct HostHead {
    /// The host's domain.
    pub host: String,
    /// The vendor serving it.
    pub vendor: String,
    /// Its role, in its one spelling.
    pub role: &'static str,
    /// Whether clients may use it now.
    pub enabled: bool,
    /// The reason and since when (`quorum_fall since 03:12 UTC`); empty when there is none to show.
    pub why: String,
    /// The detail of that event, for the tooltip.
    pub why_title: String,
}

impl HostHead {
    fn new(host: &crate::config::Host, enabled: bool, change: Option<&Event>, now_ms: i64) -> Self {
        let (why, why_title) = match change {
            Some(e) if !enabled || matches!(e.reason, Reason::FailOpen | Reason::Override) => (
                format!(
                    "{} since {}",
                    e.reason.as_str(),
                    when(e.at.timestamp_millis(), now_ms)
                ),
                e.detail.clone(),
            ),
            _ => (String::new(), String::new()),
        };
        HostHead {
            host: host.domain.clone(),
            vendor: host.vendor.clone(),
            role: host.role.as_str(),
            enabled,
            why,
            why_title,
        }
    }
}

/// A time for people: `03:12 UTC` today, `2026-11-23 03:12 UTC` on another day.
pub fn when(ms: i64, now_ms: i64) -> String {
    let (Some(t), Some(now)) = (
        DateTime::from_timestamp_millis(ms),
        DateTime::from_timestamp_millis(now_ms),
    ) else {
        return "?".into();
    };
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M UTC").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

/// A full timestamp: `2026-11-24 03:12:05 UTC`.
pub fn stamp(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

/// A share as a percentage with one decimal, `99.9 %`; `—` for no data.
pub fn percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "—".into(), |r| format!("{:.1} %", 100.0 * r))
}

/// Milliseconds for a table cell: `0.42`, `12.3`, `1234`; `—` when the phase was not reached.
pub fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "—".into(),
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) if v < 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_today_show_the_clock_and_other_days_the_date() {
        let now = 1_800_000_000_000; // 2027-01-15 08:00 UTC
        assert_eq!(when(now - 3_600_000, now), "07:00 UTC");
        assert_eq!(when(now - 9 * 3_600_000, now), "2027-01-14 23:00 UTC");
        assert_eq!(stamp(now + 5_000), "2027-01-15 08:00:05 UTC");
    }

    #[test]
    fn figures_are_short_and_a_missing_one_is_a_dash() {
        assert_eq!(percent(Some(0.99949)), "99.9 %");
        assert_eq!(percent(None), "—");
        assert_eq!(millis(Some(0.4213)), "0.42");
        assert_eq!(millis(Some(42.13)), "42.1");
        assert_eq!(millis(Some(4213.0)), "4213");
        assert_eq!(millis(None), "—");
    }
}
