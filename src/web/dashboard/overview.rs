//! `GET /`: every host a row, every region a column, each cell coloured (and marked with a
//! symbol) by its newest probes (or "no agent" while the region's agent is down); per host its vendor, role, enabled flag and why, availability
//! over 1 h and 24 h, p95 total time, days to certificate expiry; the version served; and one
//! sentence on top saying whether anything is wrong right now.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::{Query, State};

use super::board::{self, CellCounts, CellState, Change, HostLine};
use super::{
    Figure, HostHead, Marks, Now, PageError, add_raw, cert_days, disabled_hosts, millis, param,
    percent, rolled_sums, stamp, when,
};
use crate::config::Host;
use crate::engine::{Event, Reason};
use crate::hist::Histogram;
use crate::period::HOUR_MS;
use crate::publish::Published;
use crate::store::newest::NewestGroup;
use crate::store::periods::{HostPath, PeriodCache, WindowSum};
use crate::web::AppState;
use crate::web::silences;

/// Below this availability a figure is shown in the warning style.
const AVAILABILITY_WARN: f64 = 0.99;

pub(super) struct Cell {
    pub state: CellState,
    pub title: String,
}

pub(super) struct Row {
    pub head: HostHead,
    pub cells: Vec<Cell>,
    pub avail_1h: Figure,
    pub avail_24h: Figure,
    pub p95_ms: String,
    pub cert: Figure,
}

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub(super) struct OverviewPage {
    pub summary: String,
    pub healthy: bool,
    pub regions: Vec<String>,
    pub rows: Vec<Row>,
    pub version: String,
    pub generated: String,
    pub cert_warn_days: u64,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Extension(cache): Extension<Arc<PeriodCache>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<OverviewPage, PageError> {
    param::only(&params, &[])?;
    let now = Now::of(&state);
    let store = &state.store;
    let marks = Marks::read(store).await?;
    let hour_from = now.ms() - HOUR_MS;
    let day_from = (now.ms() - 24 * HOUR_MS).div_euclid(HOUR_MS) * HOUR_MS;
    let names: Vec<String> = now.config.hosts.iter().map(|h| h.domain.clone()).collect();
    // Independent reads, run at once: each waits on SQLite, on a connection of its own.
    let (groups, raw, changes, mut hour, mut day, muting) = tokio::try_join!(
        store.newest_groups(now.fresh_since_ms()),
        store.raw_tallies(marks.rolled_to(day_from, now.ms()), hour_from, now.ms()),
        store.last_changes(&names),
        rolled_sums(store, &cache, (hour_from, now.ms()), marks, false),
        rolled_sums(store, &cache, (day_from, now.ms()), marks, true),
        silences::muting(&state),
    )?;
    // The raw rows from the hour's start are in both windows, the earlier ones in the day's only.
    add_raw(
        &mut hour,
        raw.iter().map(|r| (r.0.clone(), r.1.clone(), r.3)),
    );
    add_raw(
        &mut day,
        raw.into_iter().map(|(h, p, early, late)| {
            let mut t = early;
            t.add(late);
            (h, p, t)
        }),
    );
    let published = state.publisher.current();
    let disabled = disabled_hosts(published.as_deref());
    let regions: Vec<String> = now.config.regions.iter().map(|r| r.name.clone()).collect();
    let ctx = RowContext {
        now: &now,
        state: &state,
        groups: &groups,
        hour: &hour,
        day: &day,
    };
    let (rows, lines): (Vec<Row>, Vec<HostLine>) = now
        .config
        .hosts
        .iter()
        .map(|host| {
            let change = changes.get(&host.domain);
            let enabled = !disabled.get(&host.domain).copied().unwrap_or(false);
            ctx.row(host, &regions, enabled, change.map(|c| &c.0))
        })
        .unzip();
    let told = (published.as_ref().map(|p| p.version), muting);
    let (summary, healthy) = board::summary(&lines, &regions, &state.incidents.open(), told);
    Ok(OverviewPage {
        healthy,
        summary,
        regions,
        rows,
        version: served_version(published.as_deref(), now.ms()),
        generated: stamp(now.ms()),
        cert_warn_days: now.config.dashboard.cert_warn_days,
    })
}

/// The version served, with when and why it was issued; "none yet" before the first.
fn served_version(published: Option<&Published>, now_ms: i64) -> String {
    published.map_or_else(
        || "none yet".to_string(),
        |p| {
            format!(
                "{} (issued {}, {})",
                p.version,
                when(p.issued_at.timestamp_millis(), now_ms),
                p.reason
            )
        },
    )
}

/// What a host's row is built from.
struct RowContext<'a> {
    now: &'a Now,
    state: &'a AppState,
    groups: &'a [NewestGroup],
    hour: &'a HashMap<HostPath, WindowSum>,
    day: &'a HashMap<HostPath, WindowSum>,
}

impl RowContext<'_> {
    fn row(
        &self,
        host: &Host,
        regions: &[String],
        enabled: bool,
        change: Option<&Event>,
    ) -> (Row, HostLine) {
        let mine: Vec<&NewestGroup> = self
            .groups
            .iter()
            .filter(|g| g.host == host.domain)
            .collect();
        let cells = self.cells(&mine, regions);
        let line = HostLine {
            host: host.domain.clone(),
            enabled,
            change: change
                .filter(|e| !enabled || e.reason == Reason::FailOpen)
                .map(|e| Change {
                    reason: e.reason,
                    at: when(e.at.timestamp_millis(), self.now.ms()),
                }),
            cells: cells.iter().map(|c| c.state).collect(),
        };
        let row = Row {
            head: HostHead::new(host, enabled, change, self.now.ms()),
            cells,
            avail_1h: availability(self.hour, &host.domain),
            avail_24h: availability(self.day, &host.domain),
            p95_ms: p95(self.hour, &host.domain),
            cert: cert_days(
                mine.iter().filter_map(|g| g.cert_not_after_s).min(),
                self.now,
            ),
        };
        (row, line)
    }

    /// A cell per region from the host's newest probes there.
    fn cells(&self, mine: &[&NewestGroup], regions: &[String]) -> Vec<Cell> {
        let ratio = self.now.config.engine.round_fail_ratio;
        regions
            .iter()
            .map(|region| {
                let mut counts = CellCounts::default();
                mine.iter()
                    .filter(|g| &g.region == region)
                    .for_each(|g| counts.add(g));
                let latest = self.state.latest();
                // An agent's silence makes its region's evidence invalid, whatever it last sent.
                let st = if latest.unheard(region) {
                    CellState::NoAgent
                } else {
                    counts.state(latest.control_ok(region), ratio)
                };
                Cell {
                    state: st,
                    title: format!("{region}: {}", counts.title(st)),
                }
            })
            .collect()
    }
}

fn host_sums<'a>(
    sums: &'a HashMap<HostPath, WindowSum>,
    host: &'a str,
) -> impl Iterator<Item = &'a WindowSum> {
    sums.iter()
        .filter(move |(k, _)| k.0 == host)
        .map(|(_, s)| s)
}

fn availability(sums: &HashMap<HostPath, WindowSum>, host: &str) -> Figure {
    let mut tally = crate::store::tallies::Tally::default();
    host_sums(sums, host).for_each(|s| tally.add(s.tally));
    let ratio = tally.success_ratio();
    Figure {
        text: percent(ratio),
        warn: ratio.is_some_and(|r| r < AVAILABILITY_WARN),
    }
}

fn p95(sums: &HashMap<HostPath, WindowSum>, host: &str) -> String {
    let mut total = Histogram::default();
    host_sums(sums, host).for_each(|s| total.merge(&s.total));
    match total.quantile_ms(0.95) {
        Some(ms) => format!("{} ms", millis(Some(ms))),
        None => millis(None),
    }
}
