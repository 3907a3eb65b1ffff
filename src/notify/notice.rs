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
    /// (a change a restart replays makes no second notice).
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

    /// The notices `incident`'s timeline entries from number `from` on make (numbered as
    /// [`Incident::entries_ever`] counts, so a timeline cut in the middle by a storm still tells
    /// its newest entries, each under its own `seq`; not every entry is one: a narrowing or a
    /// merge tells no one), with `version` the one being served.
    pub fn of(
        incident: &Incident,
        from: usize,
        version: Option<i64>,
        config: &Config,
    ) -> Vec<Notice> {
        incident
            .entries_from(from)
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
                // A resolution names the widest scope the incident had: the fault that woke
                // on-call ("vendor alpha in every region"), not the last edge seen recovering.
                let scope = match (change, &incident.widest) {
                    (Change::Resolved, Some(widest)) => widest.clone(),
                    _ => incident.scope.clone(),
                };
                Some(Notice {
                    incident: incident.id,
                    seq: u32::try_from(i).unwrap_or(u32::MAX),
                    change,
                    at: e.at,
                    scope,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::incident::{IncidentState, TIMELINE_HEAD, TIMELINE_KEPT};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    /// An incident whose timeline was cut in the middle: opened, then `decided` hosts disabled
    /// (more than it keeps), then resolved.
    fn storm(decided: usize) -> Incident {
        let scope = FaultScope::Vendor {
            vendor: "alpha".into(),
        };
        let flip = |i: usize| Decision::Flip {
            host: format!("gen-{i}"),
            enabled: false,
            reason: crate::engine::Reason::VendorWide,
            version: Some(2),
        };
        let mut timeline = vec![Entry {
            at: at(0),
            what: Happening::Opened {
                scope: scope.clone(),
            },
        }];
        timeline.extend((0..decided).map(|i| Entry {
            at: at(1),
            what: Happening::Decided(flip(i)),
        }));
        timeline.push(Entry {
            at: at(60),
            what: Happening::Resolved,
        });
        let dropped = timeline.len() - TIMELINE_KEPT;
        timeline.drain(TIMELINE_HEAD..TIMELINE_HEAD + dropped);
        Incident {
            id: 1,
            scope,
            widest: None,
            state: IncidentState::Resolved,
            opened_at: at(0),
            updated_at: at(60),
            last_failed_at: at(30),
            resolved_at: Some(at(60)),
            clean_rounds: 3,
            classes: Vec::new(),
            hosts: (0..decided).map(|i| format!("gen-{i}")).collect(),
            paths: BTreeSet::new(),
            regions: BTreeSet::new(),
            resolvers: BTreeSet::new(),
            edges: BTreeSet::new(),
            decisions: (0..decided).map(flip).collect(),
            timeline,
            timeline_dropped: dropped,
            told: 0,
        }
    }

    #[test]
    fn a_resolution_names_the_widest_scope_the_incident_had() {
        let mut incident = storm(250);
        incident.widest = Some(incident.scope.clone());
        incident.scope = FaultScope::RegionVendor {
            region: "cn-south".into(),
            vendor: "alpha".into(),
        };
        let all = Notice::of(&incident, 0, None, &Config::default());
        let resolved = all.iter().find(|n| n.change == Change::Resolved).unwrap();
        assert_eq!(
            resolved.scope,
            FaultScope::Vendor {
                vendor: "alpha".into()
            }
        );
        let opened = all.iter().find(|n| n.change == Change::Opened).unwrap();
        assert_eq!(
            opened.scope, incident.scope,
            "other changes name the scope now"
        );
    }

    #[test]
    fn a_storm_cut_timeline_still_tells_its_resolution_under_its_own_number() {
        let incident = storm(250);
        let config = Config::default();
        let resolved_seq = u32::try_from(incident.entries_ever() - 1).unwrap();
        // Told up to the resolution: only it is new, numbered as entries are ever counted.
        let new = Notice::of(&incident, incident.entries_ever() - 1, None, &config);
        assert_eq!(new.len(), 1, "{new:?}");
        assert_eq!(new[0].change, Change::Resolved);
        assert_eq!(new[0].seq, resolved_seq);
        // All at once: every kept entry, each under a distinct number.
        let all = Notice::of(&incident, 0, None, &config);
        assert_eq!(all.len(), TIMELINE_KEPT);
        let seqs: BTreeSet<u32> = all.iter().map(|n| n.seq).collect();
        assert_eq!(seqs.len(), all.len());
        assert_eq!(all.last().unwrap().seq, resolved_seq);
    }
}
