//! `GET /paths`: each merged path prefix (the config's `merged_hosts`, or the first segment of a
//! probed path) across every host and vendor — success over 15 minutes and the newest failure
//! class per cell — so that an origin fault, one path failing everywhere on every vendor while
//! other paths work, stands out as a marked row.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::{Query, State};

use super::board::{CellCounts, CellState};
use super::{Marks, Now, PageError, add_raw, param, percent, rolled_sums, stamp};
use crate::config::{Config, MergedHost};
use crate::period::MINUTE_MS;
use crate::store::newest::NewestGroup;
use crate::store::periods::{HostPath, PeriodCache, WindowSum};
use crate::store::tallies::Tally;
use crate::web::AppState;

/// The success shown per cell is over this window.
const WINDOW_MS: i64 = 15 * MINUTE_MS;

/// The prefix a probed path belongs to: the longest merged prefix it falls under, else its first
/// segment (`/image/probe.jpg` → `/image`).
pub(super) fn prefix_of(path: &str, merged: &[MergedHost]) -> String {
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if let Some(m) = merged
        .iter()
        .filter(|m| under(&m.path_prefix))
        .max_by_key(|m| m.path_prefix.len())
    {
        return m.path_prefix.clone();
    }
    match path.trim_start_matches('/').split_once('/') {
        Some((first, _)) => format!("/{first}"),
        None => path.to_string(),
    }
}

pub(super) struct Column {
    pub host: String,
    pub vendor: String,
}

pub(super) struct PathCell {
    /// `None`: this host does not probe the prefix.
    pub state: Option<CellState>,
    pub success: String,
    pub class: String,
    pub title: String,
}

pub(super) struct PathRow {
    pub prefix: String,
    pub merged_host: String,
    pub paths: String,
    pub cells: Vec<PathCell>,
    pub origin_fault: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "paths.html")]
pub(super) struct PathsPage {
    pub columns: Vec<Column>,
    pub rows: Vec<PathRow>,
    pub generated: String,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Extension(cache): Extension<Arc<PeriodCache>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<PathsPage, PageError> {
    param::only(&params, &[])?;
    let now = Now::of(&state);
    let store = &state.store;
    let marks = Marks::read(store).await?;
    let from = now.ms() - WINDOW_MS;
    let (groups, raw, mut sums) = tokio::try_join!(
        store.newest_groups(now.fresh_since_ms()),
        store.raw_tallies(marks.rolled_to(from, now.ms()), from, now.ms()),
        rolled_sums(store, &cache, (from, now.ms()), marks, false),
    )?;
    add_raw(
        &mut sums,
        raw.into_iter().map(|(h, p, _, late)| (h, p, late)),
    );
    // Results of a region whose own network is down do not count here either.
    let groups: Vec<NewestGroup> = groups
        .into_iter()
        .filter(|g| state.latest().control_ok(&g.region) != Some(false))
        .collect();
    let mut rows: Vec<PathRow> = prefixes(&now.config)
        .into_iter()
        .map(|p| path_row(&now, p, &groups, &sums))
        .collect();
    let vendors: Vec<&str> = now.config.hosts.iter().map(|h| h.vendor.as_str()).collect();
    mark_origin_faults(&mut rows, &vendors);
    Ok(PathsPage {
        columns: now
            .config
            .hosts
            .iter()
            .map(|h| Column {
                host: h.domain.clone(),
                vendor: h.vendor.clone(),
            })
            .collect(),
        rows,
        generated: stamp(now.ms()),
    })
}

/// A path prefix: its merged host name (if any) and, per configured host, the paths it probes
/// under the prefix.
type Prefix = (String, String, Vec<BTreeSet<String>>);

/// Each prefix of the probed paths, in config order.
fn prefixes(config: &Config) -> Vec<Prefix> {
    let mut out: Vec<Prefix> = Vec::new();
    for (i, host) in config.hosts.iter().enumerate() {
        for p in &host.paths {
            let prefix = prefix_of(&p.path, &config.merged_hosts);
            let at = match out.iter().position(|r| r.0 == prefix) {
                Some(at) => at,
                None => {
                    let merged = config
                        .merged_hosts
                        .iter()
                        .find(|m| m.path_prefix == prefix)
                        .map(|m| m.host.clone())
                        .unwrap_or_default();
                    out.push((prefix, merged, vec![BTreeSet::new(); config.hosts.len()]));
                    out.len() - 1
                }
            };
            out[at].2[i].insert(p.path.clone());
        }
    }
    out
}

/// A prefix's row: a cell per configured host.
fn path_row(
    now: &Now,
    (prefix, merged_host, by_host): Prefix,
    groups: &[NewestGroup],
    sums: &HashMap<HostPath, WindowSum>,
) -> PathRow {
    let all: BTreeSet<&String> = by_host.iter().flatten().collect();
    let cells = now
        .config
        .hosts
        .iter()
        .zip(&by_host)
        .map(|(h, paths)| {
            let mut tally = Tally::default();
            for p in paths {
                if let Some(s) = sums.get(&(h.domain.clone(), p.clone())) {
                    tally.add(s.tally);
                }
            }
            cell(&h.domain, paths, groups, tally, now)
        })
        .collect();
    PathRow {
        paths: all.into_iter().cloned().collect::<Vec<_>>().join(", "),
        prefix,
        merged_host,
        cells,
        origin_fault: false,
    }
}

fn cell(
    host: &str,
    paths: &BTreeSet<String>,
    groups: &[NewestGroup],
    tally: Tally,
    now: &Now,
) -> PathCell {
    if paths.is_empty() {
        return PathCell {
            state: None,
            success: "—".into(),
            class: "unprobed".into(),
            title: format!("{host} does not probe this prefix"),
        };
    }
    let mut counts = CellCounts::default();
    groups
        .iter()
        .filter(|g| g.host == host && paths.contains(&g.path))
        .for_each(|g| counts.add(g));
    let state = counts.state(None, now.config.engine.round_fail_ratio);
    PathCell {
        state: Some(state),
        success: percent(tally.success_ratio()),
        class: counts
            .main_class()
            .map(|o| o.to_string())
            .unwrap_or_default(),
        title: format!(
            "{host}: newest probes: {}; last 15 min: {} probes, {} failed",
            counts.title(state),
            tally.count,
            tally.failures
        ),
    }
}

/// Marks the rows failing on every host that probes them, across at least two vendors (`vendors`:
/// each column's), while another row works somewhere: the origin, not a CDN (the engine's
/// `origin_fault` rule).
fn mark_origin_faults(rows: &mut [PathRow], vendors: &[&str]) {
    let failing_everywhere = |r: &PathRow| {
        let probed: Vec<(usize, &PathCell)> = r
            .cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.state.is_some())
            .collect();
        let vendors: BTreeSet<&str> = probed
            .iter()
            .filter_map(|(i, _)| vendors.get(*i).copied())
            .collect();
        vendors.len() >= 2
            && probed
                .iter()
                .all(|(_, c)| c.state == Some(CellState::Failing))
    };
    let faulty: Vec<bool> = rows.iter().map(failing_everywhere).collect();
    for i in 0..rows.len() {
        let others_work = rows.iter().enumerate().any(|(j, r)| {
            j != i
                && r.cells
                    .iter()
                    .any(|c| matches!(c.state, Some(CellState::Ok | CellState::Degraded)))
        });
        rows[i].origin_fault = faulty[i] && others_work;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(prefix: &str) -> MergedHost {
        MergedHost {
            host: "x.test".into(),
            path_prefix: prefix.into(),
            rate: 1.0,
            vendor: None,
        }
    }

    #[test]
    fn a_path_belongs_to_its_longest_merged_prefix_or_its_first_segment() {
        let m = [merged("/image"), merged("/image/big")];
        assert_eq!(prefix_of("/image/probe.jpg", &m), "/image");
        assert_eq!(prefix_of("/image/big/a.jpg", &m), "/image/big");
        assert_eq!(
            prefix_of("/images/a.jpg", &m),
            "/images",
            "not under /image"
        );
        assert_eq!(prefix_of("/product/probe.json", &m), "/product");
        assert_eq!(prefix_of("/probe.txt", &m), "/probe.txt");
    }

    fn row(prefix: &str, states: &[Option<CellState>]) -> PathRow {
        PathRow {
            prefix: prefix.into(),
            merged_host: String::new(),
            paths: String::new(),
            cells: states
                .iter()
                .map(|s| PathCell {
                    state: *s,
                    success: String::new(),
                    class: String::new(),
                    title: String::new(),
                })
                .collect(),
            origin_fault: false,
        }
    }

    use CellState::{Degraded, Failing, Ok};

    #[test]
    fn a_path_failing_on_every_vendor_while_others_work_is_an_origin_fault() {
        let vendors = ["alpha", "alpha", "beta"];
        let mut rows = [
            row("/image", &[Some(Ok), Some(Ok), Some(Degraded)]),
            row("/product", &[Some(Failing), Some(Failing), Some(Failing)]),
            row("/community", &[Some(Failing), Some(Failing), Some(Ok)]),
        ];
        mark_origin_faults(&mut rows, &vendors);
        let marked: Vec<bool> = rows.iter().map(|r| r.origin_fault).collect();
        assert_eq!(marked, [false, true, false]);
    }

    #[test]
    fn one_vendor_failing_or_everything_failing_is_not_an_origin_fault() {
        let mut rows = [
            row("/image", &[Some(Failing), Some(Failing), None]),
            row("/product", &[Some(Ok), Some(Ok), None]),
        ];
        mark_origin_faults(&mut rows, &["alpha", "alpha", "beta"]);
        assert!(
            !rows[0].origin_fault,
            "only alpha probes /image: a vendor fault"
        );
        let mut rows = [
            row("/image", &[Some(Failing), Some(Failing)]),
            row("/product", &[Some(Failing), Some(Failing)]),
        ];
        mark_origin_faults(&mut rows, &["alpha", "beta"]);
        assert!(
            rows.iter().all(|r| !r.origin_fault),
            "nothing works: not the origin"
        );
    }
}
