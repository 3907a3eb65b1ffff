//! `GET /hosts/{host}?window=6h`: one host in detail: its newest result per region × resolver ×
//! edge (status, failure class, each phase's time, rolling success), the resolvers' DNS answers
//! side by side with stale answers marked, latency per phase and failures by class over the
//! window as charts, and its recent events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use askama::Template;
use askama::filters::Safe;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::{Path, Query, State};

use super::board::CellState;
use super::chart::{self, Bar, Line, Svg};
use super::dns::{self, Answer, Mark, Served};
use super::{
    Figure, HostHead, Marks, Now, PageError, cert_days, disabled_hosts, millis, param, percent,
    stamp, when,
};
use crate::model::{Outcome, Phase, PhaseTime};
use crate::period::{HOUR_MS, MINUTE_MS};
use crate::store::charts::Bucket;
use crate::store::charts::BucketCache;
use crate::store::newest::ProbeRow;
use crate::store::rollup::Table;
use crate::store::tallies::Tally;
use crate::web::AppState;

/// The rolling success of each edge is over this window.
const ROLLING_MS: i64 = 15 * MINUTE_MS;
/// Resolver answers over this window tell a stale answer from a new one.
const DNS_HISTORY_MS: i64 = HOUR_MS;
/// The events listed on the page.
const RECENT_EVENTS: i64 = 10;

/// A chart window: its name, span, the rollups it reads (minutes up to a day, hours beyond) and
/// the width of one point.
struct ChartWindow {
    name: &'static str,
    span_ms: i64,
    table: Table,
    bucket_ms: i64,
}

const WINDOWS: [ChartWindow; 5] = [
    ChartWindow {
        name: "1h",
        span_ms: HOUR_MS,
        table: Table::Minute,
        bucket_ms: MINUTE_MS,
    },
    ChartWindow {
        name: "6h",
        span_ms: 6 * HOUR_MS,
        table: Table::Minute,
        bucket_ms: 3 * MINUTE_MS,
    },
    ChartWindow {
        name: "24h",
        span_ms: 24 * HOUR_MS,
        table: Table::Minute,
        bucket_ms: 12 * MINUTE_MS,
    },
    ChartWindow {
        name: "7d",
        span_ms: 7 * 24 * HOUR_MS,
        table: Table::Hour,
        bucket_ms: 2 * HOUR_MS,
    },
    ChartWindow {
        name: "30d",
        span_ms: 30 * 24 * HOUR_MS,
        table: Table::Hour,
        bucket_ms: 6 * HOUR_MS,
    },
];
const DEFAULT_WINDOW: usize = 1;

/// The phases charted, with their index in a rollup's histograms.
const PHASES: [(&str, usize); 6] = [
    ("DNS", 0),
    ("connect", 1),
    ("TLS", 2),
    ("first byte", 3),
    ("transfer", 4),
    ("total", 5),
];

pub(super) struct ResultRow {
    pub region: String,
    pub resolver: String,
    pub path: String,
    pub edge: String,
    pub state: CellState,
    pub status: String,
    pub failure: String,
    pub failure_title: String,
    pub phases_ms: Vec<String>,
    pub success: String,
}

pub(super) struct DnsTable {
    pub region: String,
    pub resolvers: Vec<String>,
    pub rows: Vec<DnsRow>,
}

pub(super) struct DnsRow {
    pub edge: String,
    pub cells: Vec<&'static str>,
    pub mark: String,
    pub stale: bool,
    pub differs: bool,
}

pub(super) struct WindowLink {
    pub name: &'static str,
    pub current: bool,
}

pub(super) struct EventLine {
    pub at: String,
    pub reason: &'static str,
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "host.html")]
pub(super) struct HostPage {
    pub head: HostHead,
    pub cert: Figure,
    pub generated: String,
    pub windows: Vec<WindowLink>,
    pub results: Vec<ResultRow>,
    pub dns: Vec<DnsTable>,
    pub phase_charts: Vec<Safe<Svg>>,
    pub failure_chart: Safe<Svg>,
    pub events: Vec<EventLine>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Extension(charts): Extension<Arc<BucketCache>>,
    Path(host): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<HostPage, PageError> {
    param::only(&params, &["window"])?;
    let window = chart_window(&params)?;
    let now = Now::of(&state);
    let cfg = configured(&now, &host)?;
    // Buckets start at whole multiples of their width, so points stay put between refreshes.
    let from = (now.ms() - window.span_ms).div_euclid(window.bucket_ms) * window.bucket_ms;
    let store = &state.store;
    let marks = Marks::read(store).await?;
    let done = match window.table {
        Table::Minute => marks.minutes,
        Table::Hour => marks.hours,
    };
    let (newest, rolling, served, buckets, change, events) = tokio::try_join!(
        store.newest_probes(&host, now.fresh_since_ms()),
        store.edge_tallies(&host, now.ms() - ROLLING_MS, now.ms()),
        store.served_edges(&host, now.ms() - DNS_HISTORY_MS, now.ms()),
        charts.buckets(
            store,
            &host,
            window.table,
            (from, now.ms()),
            window.bucket_ms,
            done.unwrap_or(i64::MIN)
        ),
        store.last_changes(std::slice::from_ref(&host)),
        store.events(Some(&host), 0, i64::MAX, RECENT_EVENTS),
    )?;
    let enabled = !disabled_hosts(state.publisher.current().as_deref())
        .get(&host)
        .copied()
        .unwrap_or(false);
    let span = (from, now.ms(), window.bucket_ms);
    Ok(HostPage {
        head: HostHead::new(&cfg, enabled, change.get(&host).map(|c| &c.0), now.ms()),
        cert: cert_days(newest.iter().filter_map(|r| r.cert_not_after_s).min(), &now),
        generated: stamp(now.ms()),
        windows: window_links(window),
        results: results(&newest, &rolling),
        dns: dns_tables(&now, &newest, &served),
        phase_charts: phase_charts(&buckets, span),
        failure_chart: Safe(failure_chart(&buckets, span)),
        events: events
            .iter()
            .map(|(e, _)| EventLine {
                at: when(e.at.timestamp_millis(), now.ms()),
                reason: e.reason.as_str(),
                detail: e.detail.clone(),
            })
            .collect(),
    })
}

/// The chart window the `window` parameter names (6 h when absent).
fn chart_window(params: &HashMap<String, String>) -> Result<&'static ChartWindow, PageError> {
    match param::given(params, "window") {
        None => Ok(&WINDOWS[DEFAULT_WINDOW]),
        Some(w) => WINDOWS.iter().find(|c| c.name == w).ok_or_else(|| {
            PageError::bad(
                "window",
                format!("`{w}` is not a window (use 1h, 6h, 24h, 7d or 30d)"),
            )
        }),
    }
}

fn window_links(current: &ChartWindow) -> Vec<WindowLink> {
    WINDOWS
        .iter()
        .map(|w| WindowLink {
            name: w.name,
            current: w.name == current.name,
        })
        .collect()
}

/// The configured host of that name, or a 404 naming it and the hosts there are.
fn configured(now: &Now, host: &str) -> Result<crate::config::Host, PageError> {
    now.config.host(host).cloned().ok_or_else(|| {
        let known: Vec<&str> = now.config.hosts.iter().map(|h| h.domain.as_str()).collect();
        PageError::NotFound(format!(
            "no host named `{host}` is configured (configured: {})",
            known.join(", ")
        ))
    })
}

fn results(
    newest: &[ProbeRow],
    rolling: &[(crate::series::SeriesKey, Option<String>, Tally)],
) -> Vec<ResultRow> {
    newest
        .iter()
        .map(|r| {
            let tally = rolling
                .iter()
                .find(|(k, e, _)| *k == r.series && *e == r.edge)
                .map(|t| t.2);
            let state = match r.outcome() {
                None => CellState::Ok,
                Some(o) if o.is_cdn_failure() => CellState::Failing,
                Some(_) => CellState::Degraded,
            };
            ResultRow {
                region: r.series.region.clone(),
                resolver: r.series.resolver.clone(),
                path: r.series.path.clone(),
                edge: r.edge.clone().unwrap_or_else(|| "— (no address)".into()),
                state,
                status: r.status.map_or_else(|| "—".into(), |s| s.to_string()),
                failure: r
                    .failure
                    .map(|c| c.as_str())
                    .unwrap_or_default()
                    .to_string(),
                failure_title: match (&r.phase, &r.detail) {
                    (Some(p), Some(d)) => format!("in {p}: {d}"),
                    _ => String::new(),
                },
                phases_ms: phase_cells(r),
                success: percent(tally.and_then(|t| t.success_ratio())),
            }
        })
        .collect()
}

/// The row's figures (each phase, then the total); a figure a timeout ended reads
/// `≥400 (timeout)`: the phase would have taken at least that long.
fn phase_cells(r: &ProbeRow) -> Vec<String> {
    let failure = r.failure.zip(r.phase);
    let [phases @ .., total] = r.phases_us.map(|us| us.map(|v| v as f64 / 1000.0));
    let times = Phase::ALL
        .into_iter()
        .zip(phases)
        .map(|(p, ms)| ms.map(|ms| PhaseTime::of_phase(ms, p, failure)))
        .chain([total.map(|ms| PhaseTime::of_total(ms, failure))]);
    times
        .map(|t| match t {
            None => millis(None),
            Some(PhaseTime::Measured { ms }) => millis(Some(ms)),
            Some(PhaseTime::TimedOut { ms }) => format!("≥{} (timeout)", millis(Some(ms))),
        })
        .collect()
}

/// Per region of the config, each resolver's newest answer (the edges its probes reached) beside
/// the others'.
fn dns_tables(
    now: &Now,
    newest: &[ProbeRow],
    served: &[(String, String, String)],
) -> Vec<DnsTable> {
    now.config
        .regions
        .iter()
        .map(|region| {
            let answers: Vec<Answer> = region
                .resolvers
                .iter()
                .map(|res| answer_of(&region.name, &res.name, newest))
                .collect();
            let mut history: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (_, res, edge) in served.iter().filter(|s| s.0 == region.name) {
                history.entry(res.clone()).or_default().insert(edge.clone());
            }
            DnsTable {
                region: region.name.clone(),
                resolvers: answers
                    .iter()
                    .map(|a| match &a.dns_failure {
                        Some(f) => format!("{} ({f})", a.resolver),
                        None => a.resolver.clone(),
                    })
                    .collect(),
                rows: dns::compare(&answers, &history)
                    .into_iter()
                    .map(dns_row)
                    .collect(),
            }
        })
        .collect()
}

/// An edge's row of a DNS table, in words and symbols.
fn dns_row(row: dns::EdgeRow) -> DnsRow {
    DnsRow {
        cells: row
            .cells
            .iter()
            .map(|c| match c {
                Served::Ok => "✓ served",
                Served::Failing => "✗ served, failing",
                Served::Absent => "·",
            })
            .collect(),
        stale: matches!(row.mark, Mark::Stale(_)),
        differs: row.mark != Mark::Same,
        mark: match &row.mark {
            Mark::Same => "same".into(),
            Mark::Differs => "differs".into(),
            Mark::Stale(on) => format!("⚠ stale DNS on {}", on.join(", ")),
        },
        edge: row.edge,
    }
}

/// What `resolver` in `region` answered in the newest probes: each edge reached, ok when every
/// probe of it succeeded.
fn answer_of(region: &str, resolver: &str, newest: &[ProbeRow]) -> Answer {
    let mut edges: BTreeMap<String, bool> = BTreeMap::new();
    let mut dns_failure = None;
    for r in newest
        .iter()
        .filter(|r| r.series.region == region && r.series.resolver == resolver)
    {
        match &r.edge {
            Some(e) => {
                let ok = edges.entry(e.clone()).or_insert(true);
                *ok &= r.failure.is_none();
            }
            None => dns_failure = r.failure,
        }
    }
    Answer {
        resolver: resolver.to_string(),
        edges,
        dns_failure,
    }
}

/// Every bucket of the window, `None` where no rollup row fell.
fn grid(buckets: &[Bucket], from: i64, to: i64, step: i64) -> Vec<(i64, Option<&Bucket>)> {
    let by_start: HashMap<i64, &Bucket> = buckets.iter().map(|b| (b.start_ms, b)).collect();
    (0..)
        .map(|i| from + i * step)
        .take_while(|t| *t < to)
        .map(|t| (t, by_start.get(&t).copied()))
        .collect()
}

/// One chart per phase over `(from, to, step)`: p50 and p95 per bucket.
fn phase_charts(buckets: &[Bucket], (from, to, step): (i64, i64, i64)) -> Vec<Safe<Svg>> {
    let grid = grid(buckets, from, to, step);
    PHASES
        .iter()
        .map(|(name, i)| {
            let line = |q: f64, class: &'static str| Line {
                name: class.to_string(),
                class,
                points: grid
                    .iter()
                    .map(|(t, b)| (*t, b.and_then(|b| b.agg.hists[*i].quantile_ms(q))))
                    .collect(),
            };
            let title = format!("{name} time, ms");
            Safe(chart::lines(
                &title,
                "ms",
                from,
                to,
                &[line(0.5, "p50"), line(0.95, "p95")],
            ))
        })
        .collect()
}

/// Failures per bucket over `(from, to, step)`, stacked by class, most frequent class first.
fn failure_chart(buckets: &[Bucket], (from, to, step): (i64, i64, i64)) -> Svg {
    let mut totals: BTreeMap<Outcome, u64> = BTreeMap::new();
    for b in buckets {
        for (c, n) in &b.agg.by_class {
            *totals.entry(*c).or_default() += n;
        }
    }
    let mut classes: Vec<(Outcome, u64)> = totals.into_iter().collect();
    classes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let bars: Vec<Bar> = buckets
        .iter()
        .filter(|b| b.agg.failures > 0)
        .map(|b| Bar {
            start_ms: b.start_ms,
            stacks: classes
                .iter()
                .enumerate()
                .map(|(i, (c, _))| (i, b.agg.by_class.get(c).copied().unwrap_or(0)))
                .collect(),
        })
        .collect();
    // The chart names each outcome by its stored key, `http_status:502`.
    let names: Vec<String> = classes.iter().map(|(c, _)| c.key()).collect();
    chart::stacked_bars("failures by class", from, to, step, &bars, &names)
}
