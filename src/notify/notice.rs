//! What one incident state change says, as data: the change, the incident's scope, severity,
//! classes, hosts, vendors, regions, the decision and the version, and its page. Made from the
//! timeline entries a round added ([`Notice::of`]); text is made only by the channels.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Severity};
use crate::engine::{ClassCount, FaultScope};
use crate::incident::{Decision, Entry, Happening, Incident, Refusal};

/// Which change of an incident a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It opened.
    Opened,
    /// Its scope grew.
    Widened,
    /// A decision (or a refusal that matters: fail-open, freeze) was made for it.
    Decided,
    /// It resolved.
    Resolved,
    /// It failed again soon after resolving.
    Reopened,
}

impl Change {
    /// The one spelling, as in the outbox and the messages' machine fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Opened => "opened",
            Change::Widened => "widened",
            Change::Decided => "decided",
            Change::Resolved => "resolved",
            Change::Reopened => "reopened",
        }
    }
}

/// One incident state change, as every channel renders it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// The incident.
    pub incident: i64,
    /// The change's place in the incident's timeline: with `incident`, what makes a notice unique
    /// (a restart never sends the same change twice).
    pub seq: u32,
    /// What changed.
    pub change: Change,
    /// When.
    pub at: DateTime<Utc>,
    /// The incident's scope then.
    pub scope: FaultScope,
    /// How urgent.
    pub severity: Severity,
    /// Its failure classes, with phases and peak counts.
    pub classes: Vec<ClassCount>,
    /// The hosts it touched.
    pub hosts: Vec<String>,
    /// Their vendors.
    pub vendors: Vec<String>,
    /// The regions it failed in.
    pub regions: Vec<String>,
    /// For [`Change::Decided`]: the decision.
    pub decision: Option<Decision>,
    /// The version being served (the decision's, for a decision).
    pub version: Option<i64>,
    /// When the incident opened.
    pub opened_at: DateTime<Utc>,
    /// When it resolved (for [`Change::Resolved`]).
    pub resolved_at: Option<DateTime<Utc>>,
    /// Its page, when the dashboard's external URL is configured; else its path.
    pub link: String,
}

impl Notice {
    /// Whether the notice is about our own probing (a probe network down), not the CDN: said so
    /// in every message, and never "CDN down".
    pub fn about_probing(&self) -> bool {
        matches!(self.scope, FaultScope::ProbeNetwork { .. })
    }

    /// How long the incident lasted, for a resolution.
    pub fn duration(&self) -> Option<chrono::Duration> {
        self.resolved_at.map(|r| r - self.opened_at)
    }

    /// The notices `incident`'s timeline entries from index `from` on make (not every entry is
    /// one: a narrowing or a merge tells no one), with `version` the one being served.
    pub fn of(
        incident: &Incident,
        from: usize,
        version: Option<i64>,
        config: &Config,
    ) -> Vec<Notice> {
        let entries = incident.timeline.iter().enumerate().skip(from);
        entries
            .filter_map(|(i, e)| {
                let change = change_of(e)?;
                let decision = match &e.what {
                    Happening::Decided(d) => Some(d.clone()),
                    _ => None,
                };
                let version = match &decision {
                    Some(Decision::Flip { version, .. } | Decision::Merge { version, .. }) => {
                        *version
                    }
                    _ => version,
                };
                Some(Notice {
                    incident: incident.id,
                    seq: u32::try_from(i).unwrap_or(u32::MAX),
                    change,
                    at: e.at,
                    scope: incident.scope.clone(),
                    severity: severity(incident),
                    classes: incident.classes.clone(),
                    hosts: incident.hosts.iter().cloned().collect(),
                    vendors: vendors(incident, config),
                    regions: incident.regions.iter().cloned().collect(),
                    decision,
                    version,
                    opened_at: incident.opened_at,
                    resolved_at: incident.resolved_at,
                    link: link(incident.id, config),
                })
            })
            .collect()
    }
}

impl Notice {
    /// `incident` as it stands, as a notice of its opening (what Alertmanager is told again of
    /// the open incidents after a restart).
    pub fn standing(incident: &Incident, version: Option<i64>, config: &Config) -> Notice {
        Notice {
            incident: incident.id,
            seq: u32::try_from(incident.entries_ever()).unwrap_or(u32::MAX),
            change: Change::Opened,
            at: incident.updated_at,
            scope: incident.scope.clone(),
            severity: severity(incident),
            classes: incident.classes.clone(),
            hosts: incident.hosts.iter().cloned().collect(),
            vendors: vendors(incident, config),
            regions: incident.regions.iter().cloned().collect(),
            decision: None,
            version,
            opened_at: incident.opened_at,
            resolved_at: incident.resolved_at,
            link: link(incident.id, config),
        }
    }
}

/// The change an entry tells on-call about, if any.
fn change_of(e: &Entry) -> Option<Change> {
    match &e.what {
        Happening::Opened { .. } => Some(Change::Opened),
        Happening::Widened { .. } => Some(Change::Widened),
        Happening::Resolved => Some(Change::Resolved),
        Happening::Reopened => Some(Change::Reopened),
        Happening::Decided(Decision::Flip { .. } | Decision::Merge { .. }) => Some(Change::Decided),
        Happening::Decided(Decision::Refused { refusal, .. }) => {
            matches!(refusal, Refusal::FailOpen | Refusal::Freeze).then_some(Change::Decided)
        }
        Happening::Narrowed { .. } | Happening::Absorbed { .. } | Happening::MergedInto { .. } => {
            None
        }
    }
}

/// Critical when hosts were moved (or kept only by fail-open), the engine froze, a vendor fails
/// everywhere or the origin does; a warning when the fault is partial or on our side.
pub fn severity(incident: &Incident) -> Severity {
    let moved = incident.decisions.iter().any(|d| {
        matches!(
            d,
            Decision::Flip { .. }
                | Decision::Merge { .. }
                | Decision::Refused {
                    refusal: Refusal::FailOpen | Refusal::Freeze,
                    ..
                }
        )
    });
    let wide = matches!(
        incident.scope,
        FaultScope::Vendor { .. } | FaultScope::Origin { .. }
    );
    if moved || wide {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

fn vendors(incident: &Incident, config: &Config) -> Vec<String> {
    let mut v: Vec<String> = incident
        .hosts
        .iter()
        .filter_map(|h| config.host(h).map(|c| c.vendor.clone()))
        .collect();
    if let FaultScope::RegionVendor { vendor, .. }
    | FaultScope::Vendor { vendor }
    | FaultScope::PrefixVendor { vendor, .. } = &incident.scope
    {
        v.push(vendor.clone());
    }
    v.sort();
    v.dedup();
    v
}

fn link(id: i64, config: &Config) -> String {
    let base = config
        .dashboard
        .external_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/');
    format!("{base}/incidents/{id}")
}
