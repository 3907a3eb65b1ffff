//! The state of each (host, region) cell and the one sentence at the top of the overview that says
//! whether anything is wrong right now. Pure: from what the newest probes, the published version
//! and the events say.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::{FaultScope, Reason};
use crate::model::Outcome;
use crate::store::newest::NewestGroup;

/// How a (host, region) cell, or a (path, host) cell, is doing by its newest probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum CellState {
    Ok,
    /// Some probes fail, fewer than the engine's round-failure share (or only 4xx).
    Degraded,
    /// At least the engine's round-failure share of the probes fail at the CDN.
    Failing,
    /// The region's control targets are unreachable: its own network is down, its results do
    /// not count.
    Invalid,
    /// No probe recent enough.
    NoData,
    /// The region's agent is down or not heard yet: the region has no valid evidence, whatever
    /// it last sent (neither failing nor healthy).
    NoAgent,
}

impl CellState {
    /// The CSS class, and the word in tooltips and text.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            CellState::Ok => "ok",
            CellState::Degraded => "degraded",
            CellState::Failing => "failing",
            CellState::Invalid => "invalid",
            CellState::NoData => "nodata",
            CellState::NoAgent => "noagent",
        }
    }

    /// A symbol that tells the states apart without colour.
    pub(super) fn symbol(self) -> &'static str {
        match self {
            CellState::Ok => "✓",
            CellState::Degraded => "◐",
            CellState::Failing => "✗",
            CellState::Invalid => "⊘",
            CellState::NoData => "–",
            CellState::NoAgent => "◌",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            CellState::NoData => "no data",
            CellState::NoAgent => "no agent",
            other => other.as_str(),
        }
    }
}

/// What the newest probes of one cell said.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct CellCounts {
    pub probes: u64,
    pub failed: u64,
    pub cdn_failed: u64,
    /// Failures by outcome (`http_status 502` with its code).
    pub classes: BTreeMap<Outcome, u64>,
}

impl CellCounts {
    pub(super) fn add(&mut self, g: &NewestGroup) {
        self.probes += g.count;
        let Some(outcome) = g.outcome else { return };
        self.failed += g.count;
        if outcome.is_cdn_failure() {
            self.cdn_failed += g.count;
        }
        *self.classes.entry(outcome).or_default() += g.count;
    }

    /// The most frequent failure outcome, if any failed.
    pub(super) fn main_class(&self) -> Option<Outcome> {
        self.classes
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(c, _)| *c)
    }

    /// `http_status 502 ×4, tcp_refused ×2`, most frequent first.
    pub(super) fn classes_text(&self) -> String {
        let mut v: Vec<(&Outcome, &u64)> = self.classes.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(c, n)| format!("{c} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The cell's state; `control_ok` is the region's control verdict (`None` when unknown).
    pub(super) fn state(&self, control_ok: Option<bool>, round_fail_ratio: f64) -> CellState {
        if control_ok == Some(false) {
            CellState::Invalid
        } else if self.probes == 0 {
            CellState::NoData
        } else if self.cdn_failed > 0
            && self.cdn_failed as f64 >= round_fail_ratio * self.probes as f64
        {
            CellState::Failing
        } else if self.failed > 0 {
            CellState::Degraded
        } else {
            CellState::Ok
        }
    }

    /// The tooltip: what the newest probes of the cell said, in one line.
    pub(super) fn title(&self, state: CellState) -> String {
        match state {
            CellState::Invalid => {
                "control targets unreachable: the region's own network is down, its results do not count".into()
            }
            CellState::NoData => "no recent probe".into(),
            CellState::NoAgent => {
                "no agent: the region's agent is down or not heard yet, it has no valid evidence".into()
            }
            CellState::Ok => format!("all {} probes ok", self.probes),
            _ => format!(
                "{} of {} probes failed: {}",
                self.failed,
                self.probes,
                self.classes_text()
            ),
        }
    }
}

/// Why a host is in the state it is: the reason of the event that last changed it, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Change {
    pub reason: Reason,
    pub at: String,
}

/// One host as the summary sees it.
#[derive(Debug, Clone)]
pub(super) struct HostLine {
    pub host: String,
    pub enabled: bool,
    pub change: Option<Change>,
    /// One per region, in the regions' order.
    pub cells: Vec<CellState>,
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Phrases beyond this many are folded into one count (the summary stays one sentence).
const MOST_PHRASES: usize = 3;

/// The hosts in `state` per region, grouped by regions with the same hosts:
/// `2 hosts failing in cn-east and cn-north`, `cdn.shop.test failing in every region`; past
/// [`MOST_PHRASES`] groups, one count: `12 hosts degraded in 9 regions`.
fn by_region(hosts: &[HostLine], regions: &[String], state: CellState) -> Vec<String> {
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for (i, region) in regions.iter().enumerate() {
        let names: Vec<String> = hosts
            .iter()
            .filter(|h| h.cells.get(i) == Some(&state))
            .map(|h| h.host.clone())
            .collect();
        if names.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(n, _)| *n == names) {
            Some((_, rs)) => rs.push(region.clone()),
            None => groups.push((names, vec![region.clone()])),
        }
    }
    if groups.len() > MOST_PHRASES {
        let names: BTreeSet<&String> = groups.iter().flat_map(|g| &g.0).collect();
        let rs: usize = groups.iter().map(|g| g.1.len()).sum();
        return vec![format!(
            "{} {} in {}",
            plural(names.len(), "host", "hosts"),
            state.label(),
            plural(rs, "region", "regions")
        )];
    }
    groups
        .into_iter()
        .map(|(names, rs)| {
            let who = if names.len() == hosts.len() && hosts.len() > 1 {
                "every host".to_string()
            } else if names.len() <= 2 {
                and_list(&names)
            } else {
                plural(names.len(), "host", "hosts")
            };
            let whre = if rs.len() == regions.len() && regions.len() > 1 {
                "every region".to_string()
            } else if rs.len() > 3 {
                plural(rs.len(), "region", "regions")
            } else {
                and_list(&rs)
            };
            format!("{who} {} in {whre}", state.label())
        })
        .collect()
}

/// Regions where every cell is in `state`.
fn whole_regions(hosts: &[HostLine], regions: &[String], state: CellState) -> Vec<String> {
    regions
        .iter()
        .enumerate()
        .filter(|(i, _)| !hosts.is_empty() && hosts.iter().all(|h| h.cells.get(*i) == Some(&state)))
        .map(|(_, r)| r.clone())
        .collect()
}

/// What is said of regions where every cell is invalid, without an agent, or without data.
fn whole_region_phrases(hosts: &[HostLine], regions: &[String]) -> Vec<String> {
    let mut parts = Vec::new();
    let invalid = whole_regions(hosts, regions, CellState::Invalid);
    if !invalid.is_empty() {
        parts.push(format!(
            "{} cannot vote (its control targets are unreachable)",
            and_list(&invalid)
        ));
    }
    let agentless = whole_regions(hosts, regions, CellState::NoAgent);
    if !agentless.is_empty() {
        parts.push(format!(
            "no agent up for {} (no valid evidence until it is back)",
            and_list(&agentless)
        ));
    }
    let silent = whole_regions(hosts, regions, CellState::NoData);
    if !silent.is_empty() {
        parts.push(format!("no recent probes from {}", and_list(&silent)));
    }
    parts
}

/// The sentence at the top of the overview: whether anything is wrong right now; and true when
/// nothing is.
pub(super) fn summary(
    hosts: &[HostLine],
    regions: &[String],
    incidents: &[(i64, FaultScope)],
    (version, silences): (Option<i64>, usize),
) -> (String, bool) {
    let mut serving = match version {
        Some(v) => format!("serving version {v}"),
        None => "no version published yet".to_string(),
    };
    // Muted messages are worth saying at a glance: on-call may not be told of what it shows.
    if silences > 0 {
        serving += &format!("; {} active", plural(silences, "silence", "silences"));
    }
    let mut parts: Vec<String> = Vec::new();
    if !incidents.is_empty() {
        let named: Vec<String> = incidents
            .iter()
            .map(|(id, scope)| format!("#{id} {scope}"))
            .collect();
        parts.push(format!(
            "{} open ({})",
            plural(incidents.len(), "incident", "incidents"),
            named.join(", ")
        ));
    }
    for h in hosts {
        let why = h
            .change
            .as_ref()
            .map(|c| format!(" ({} since {})", c.reason.as_str(), c.at))
            .unwrap_or_default();
        if !h.enabled {
            parts.push(format!("{} is disabled{why}", h.host));
        } else if h
            .change
            .as_ref()
            .is_some_and(|c| c.reason == Reason::FailOpen)
        {
            parts.push(format!("{} is kept enabled{why}", h.host));
        }
    }
    parts.extend(whole_region_phrases(hosts, regions));
    parts.extend(by_region(hosts, regions, CellState::Failing));
    parts.extend(by_region(hosts, regions, CellState::Degraded));
    if parts.is_empty() {
        let text = format!(
            "All {} healthy in {}; {serving}.",
            plural(hosts.len(), "host", "hosts"),
            plural(regions.len(), "region", "regions")
        );
        return (text, true);
    }
    // Not capitalised: the sentence usually starts with a host name, which is lower case.
    (format!("{}; {serving}.", parts.join("; ")), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Vec<String> {
        ["cn-east", "cn-north", "cn-south"]
            .map(String::from)
            .to_vec()
    }

    fn line(host: &str, cells: [CellState; 3]) -> HostLine {
        HostLine {
            host: host.into(),
            enabled: true,
            change: None,
            cells: cells.to_vec(),
        }
    }

    use CellState::*;

    fn sentence(hosts: &[HostLine], regions: &[String], version: Option<i64>) -> String {
        let (text, healthy) = summary(hosts, regions, &[], (version, 0));
        assert_eq!(healthy, text.starts_with("All "), "{text}");
        text
    }

    #[test]
    fn active_silences_are_said_after_the_version_without_making_it_unhealthy() {
        let hosts = [line("cdn.shop.test", [CellState::Ok; 3])];
        let (text, healthy) = summary(&hosts, &regions(), &[], (Some(7), 2));
        assert!(healthy, "{text}");
        assert!(
            text.ends_with("serving version 7; 2 silences active."),
            "{text}"
        );
        let (text, _) = summary(&hosts, &regions(), &[], (Some(7), 1));
        assert!(text.ends_with("; 1 silence active."), "{text}");
    }

    #[test]
    fn open_incidents_come_first_with_their_scopes() {
        let hosts = [line("cdn.shop.test", [Ok; 3])];
        let open = [
            (
                3,
                FaultScope::Vendor {
                    vendor: "alpha".into(),
                },
            ),
            (
                5,
                FaultScope::Edge {
                    region: "cn-east".into(),
                    edge: "127.21.1.1".parse().unwrap(),
                },
            ),
        ];
        let (text, healthy) = summary(&hosts, &regions(), &open, (Some(7), 0));
        assert!(!healthy);
        assert_eq!(
            text,
            "2 incidents open (#3 vendor alpha in every region, #5 edge 127.21.1.1 (cn-east)); serving version 7."
        );
    }

    #[test]
    fn a_healthy_board_says_so_in_one_sentence_with_the_version() {
        let hosts = [
            line("cdn.shop.test", [Ok; 3]),
            line("cdn-ss.shop.test", [Ok; 3]),
            line("cdn-bak.shop.test", [Ok; 3]),
        ];
        assert_eq!(
            sentence(&hosts, &regions(), Some(7)),
            "All 3 hosts healthy in 3 regions; serving version 7."
        );
    }

    #[test]
    fn a_disabled_host_and_failing_cells_are_named_with_reason_time_and_region() {
        let mut primary = line("cdn.shop.test", [Failing, Failing, Failing]);
        primary.enabled = false;
        primary.change = Some(Change {
            reason: Reason::VendorWide,
            at: "03:12 UTC".into(),
        });
        let hosts = [
            primary,
            line("cdn-ss.shop.test", [Failing, Ok, Ok]),
            line("cdn-bak.shop.test", [Ok, Ok, Degraded]),
        ];
        assert_eq!(
            sentence(&hosts, &regions(), Some(8)),
            "cdn.shop.test is disabled (vendor_wide since 03:12 UTC); \
             cdn.shop.test and cdn-ss.shop.test failing in cn-east; \
             cdn.shop.test failing in cn-north and cn-south; \
             cdn-bak.shop.test degraded in cn-south; serving version 8."
        );
    }

    #[test]
    fn many_hosts_are_counted_and_a_whole_region_is_named_once() {
        let hosts: Vec<HostLine> = (0..4)
            .map(|i| line(&format!("h{i}.test"), [Failing, Invalid, Ok]))
            .collect();
        assert_eq!(
            sentence(&hosts, &regions(), None),
            "cn-north cannot vote (its control targets are unreachable); \
             every host failing in cn-east; no version published yet."
        );
        let hosts: Vec<HostLine> = (0..4)
            .map(|i| {
                line(
                    &format!("h{i}.test"),
                    [Failing, if i < 3 { Failing } else { Ok }, NoData],
                )
            })
            .collect();
        assert_eq!(
            sentence(&hosts, &regions(), Some(2)),
            "no recent probes from cn-south; every host failing in cn-east; \
             3 hosts failing in cn-north; serving version 2."
        );
    }

    #[test]
    fn many_scattered_problems_are_counted_not_listed() {
        let regions: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
        let hosts: Vec<HostLine> = (0..6)
            .map(|i| HostLine {
                host: format!("h{i}.test"),
                enabled: true,
                change: None,
                cells: (0..6).map(|j| if i == j { Degraded } else { Ok }).collect(),
            })
            .collect();
        assert_eq!(
            sentence(&hosts, &regions, Some(3)),
            "6 hosts degraded in 6 regions; serving version 3."
        );
    }

    #[test]
    fn a_region_without_a_live_agent_is_named_as_such_not_as_failing_or_healthy() {
        let hosts = [
            line("cdn.shop.test", [Ok, NoAgent, Ok]),
            line("cdn-ss.shop.test", [Ok, NoAgent, Ok]),
        ];
        assert_eq!(
            sentence(&hosts, &regions(), Some(4)),
            "no agent up for cn-north (no valid evidence until it is back); serving version 4."
        );
        assert_eq!(NoAgent.label(), "no agent");
        assert!(
            CellCounts::default()
                .title(NoAgent)
                .starts_with("no agent:")
        );
    }

    #[test]
    fn a_host_kept_by_the_fail_open_guard_is_mentioned() {
        let mut kept = line("cdn-bak.shop.test", [Failing; 3]);
        kept.change = Some(Change {
            reason: Reason::FailOpen,
            at: "03:20 UTC".into(),
        });
        let s = sentence(&[kept], &regions(), Some(9));
        assert!(
            s.starts_with("cdn-bak.shop.test is kept enabled (fail_open since 03:20 UTC)"),
            "{s}"
        );
        assert!(
            s.contains("cdn-bak.shop.test failing in every region"),
            "{s}"
        );
    }

    fn group(failure: Option<&str>, status: Option<i64>, count: u64) -> NewestGroup {
        NewestGroup {
            host: "h".into(),
            path: "/p".into(),
            region: "r".into(),
            outcome: failure.map(|c| Outcome::from_columns(c, status).unwrap()),
            count,
            cert_not_after_s: None,
            newest_at_ms: 0,
        }
    }

    #[test]
    fn a_cell_fails_at_the_engines_share_and_4xx_only_degrades_it() {
        let mut c = CellCounts::default();
        c.add(&group(None, Some(200), 4));
        c.add(&group(Some("http_status"), Some(502), 6));
        assert_eq!(c.state(Some(true), 0.6), Failing);
        assert_eq!(
            c.title(Failing),
            "6 of 10 probes failed: http_status 502 ×6"
        );
        let mut c = CellCounts::default();
        c.add(&group(None, Some(200), 2));
        c.add(&group(Some("http_status"), Some(403), 8));
        assert_eq!(c.state(None, 0.6), Degraded, "a 403 is not the CDN failing");
        let mut c = CellCounts::default();
        c.add(&group(None, Some(200), 7));
        c.add(&group(Some("tcp_refused"), None, 1));
        assert_eq!(c.state(None, 0.6), Degraded);
        assert_eq!(
            c.main_class().map(|o| o.to_string()).as_deref(),
            Some("tcp_refused")
        );
        assert_eq!(c.state(Some(false), 0.6), Invalid, "control down wins");
        assert_eq!(CellCounts::default().state(None, 0.6), NoData);
    }
}
