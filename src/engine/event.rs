//! What the engine says about a round: events (a decision or a refusal, with its evidence), their
//! reasons and the failed-result samples they carry (`sample.rs`). It decides nothing; text is made
//! only where an event is shown, and a sample keeps its fields until then.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::diagnosis::Diagnosis;
use super::evidence::{Analysis, RegionCounts};
use super::sample::Sample;

/// Samples one event carries at most.
const SAMPLES_PER_EVENT: usize = 5;

/// Why a state changed, or why a change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Unhealthy in a quorum of regions, some by failed rounds in a row.
    QuorumFall,
    /// Unhealthy in a quorum of regions by the share of failed rounds.
    Ratio,
    /// Every host of the vendor was failing: all disabled in one version.
    VendorWide,
    /// Every host would have been disabled: this one was kept.
    FailOpen,
    /// A manual override decided.
    Override,
    /// Fewer than the quorum's minimum of regions had valid evidence: nothing changes.
    Freeze,
    /// Healthy again in a quorum of regions, after the hold.
    Rise,
    /// A path fails on every vendor: the origin, not the CDN.
    OriginFault,
    /// A part of the CDN fails (an edge, a resolver, a vendor in a region, a vendor, a path prefix
    /// on a vendor): diagnosed, decided by the rules as ever.
    Degraded,
    /// A region's control targets fail: its own probe network is down, its results do not vote.
    ProbeNetwork,
    /// Not enough evidence yet since start.
    ColdStart,
    /// A merged path prefix fails on the unified hosts while its original domain serves: its
    /// merge is rolled back (published with rate 0).
    MergeRollback,
    /// A rolled-back prefix is healthy on the unified hosts again, hold elapsed: its configured
    /// rate is published again.
    MergeRestore,
    /// A merged path prefix fails on this vendor's hosts and its original domain fails too: the
    /// vendor's hosts are left for the vendor that serves it.
    PrefixVendor,
    /// An operator made a silence: matching messages are muted (the engine decides as ever).
    Silenced,
    /// An operator cleared a silence.
    SilenceCleared,
    /// A regional agent missed its heartbeats: its regions have no valid evidence.
    AgentDown,
    /// A regional agent is heard again: its regions vote again.
    AgentUp,
}

impl Reason {
    /// The one spelling, as in JSON, SQL and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::QuorumFall => "quorum_fall",
            Reason::Ratio => "ratio",
            Reason::VendorWide => "vendor_wide",
            Reason::FailOpen => "fail_open",
            Reason::Override => "override",
            Reason::Freeze => "freeze",
            Reason::Rise => "rise",
            Reason::OriginFault => "origin_fault",
            Reason::Degraded => "degraded",
            Reason::ProbeNetwork => "probe_network",
            Reason::ColdStart => "cold_start",
            Reason::MergeRollback => "merge_rollback",
            Reason::MergeRestore => "merge_restore",
            Reason::PrefixVendor => "prefix_vendor",
            Reason::Silenced => "silenced",
            Reason::SilenceCleared => "silence_cleared",
            Reason::AgentDown => "agent_down",
            Reason::AgentUp => "agent_up",
        }
    }
}

/// One decision or refusal, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When the round was evaluated.
    pub at: DateTime<Utc>,
    /// The host concerned; `None` for an event about all hosts or a path.
    pub host: Option<String>,
    /// Enabled before and after (`None` when the event changed no host).
    pub old_enabled: Option<bool>,
    /// See `old_enabled`.
    pub new_enabled: Option<bool>,
    /// Why.
    pub reason: Reason,
    /// What happened, in words.
    pub detail: String,
    /// Per region, for the host (or for all hosts when `host` is empty).
    pub evidence: BTreeMap<String, RegionCounts>,
    /// A few failed results.
    pub samples: Vec<Sample>,
    /// The incident it is about: set after the engine, by the incident tracker.
    #[serde(default)]
    pub incident: Option<i64>,
    /// The merged path prefix a merge rollback or restore is about (kept in memory for the
    /// incident tracker; the stored event says it in its detail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl Event {
    /// An event about `host` that changes nothing (yet), with the host's evidence and samples.
    pub(super) fn about_host(
        now: DateTime<Utc>,
        host: &str,
        reason: Reason,
        detail: String,
        a: &Analysis,
    ) -> Event {
        Event {
            host: Some(host.to_string()),
            evidence: a.host_counts.get(host).cloned().unwrap_or_default(),
            samples: first_samples(a, |s| s.host == host),
            ..Event::bare(now, reason, detail)
        }
    }

    /// An event about `path` (an origin fault), with the path's evidence and samples.
    pub(super) fn about_path(
        now: DateTime<Utc>,
        path: &str,
        reason: Reason,
        detail: String,
        a: &Analysis,
    ) -> Event {
        Event {
            evidence: a.path_counts.get(path).cloned().unwrap_or_default(),
            samples: first_samples(a, |s| s.path == path),
            ..Event::bare(now, reason, detail)
        }
    }

    /// An event about no host, with every host's evidence summed per region.
    pub(super) fn about_all(
        now: DateTime<Utc>,
        reason: Reason,
        detail: String,
        a: &Analysis,
    ) -> Event {
        let mut evidence = BTreeMap::new();
        for counts in a.host_counts.values() {
            add_counts(&mut evidence, counts);
        }
        Event {
            evidence,
            samples: first_samples(a, |_| true),
            ..Event::bare(now, reason, detail)
        }
    }

    /// An event about a diagnosed scope, with its own evidence and samples; about its host when it
    /// touches one only.
    pub(super) fn about_scope(
        now: DateTime<Utc>,
        reason: Reason,
        detail: String,
        d: &Diagnosis,
    ) -> Event {
        let host = match d.hosts.iter().collect::<Vec<_>>().as_slice() {
            [one] => Some(one.to_string()),
            _ => None,
        };
        Event {
            host,
            evidence: d.regions.clone(),
            samples: d.samples.iter().take(SAMPLES_PER_EVENT).cloned().collect(),
            ..Event::bare(now, reason, detail)
        }
    }

    /// An event about a merged path prefix (its merge rolled back or restored), with the
    /// evidence of its paths summed per region and their samples; about no host.
    pub(super) fn about_prefix(
        now: DateTime<Utc>,
        prefix: &str,
        reason: Reason,
        detail: String,
        a: &Analysis,
    ) -> Event {
        let under = |path: &str| super::diagnosis::prefix_of(path) == prefix;
        let mut evidence = BTreeMap::new();
        for (_, counts) in a.path_counts.iter().filter(|(p, _)| under(p)) {
            add_counts(&mut evidence, counts);
        }
        Event {
            evidence,
            samples: first_samples(a, |s| under(&s.path)),
            prefix: Some(prefix.to_string()),
            ..Event::bare(now, reason, detail)
        }
    }

    /// The same event, as the change of its host's enabled flag from `old` to `new`.
    pub(super) fn flipping(self, old: bool, new: bool) -> Event {
        Event {
            old_enabled: Some(old),
            new_enabled: Some(new),
            ..self
        }
    }

    /// An event about no host that changes nothing: a record of what happened (an audit, an
    /// agent's silence).
    pub fn bare(now: DateTime<Utc>, reason: Reason, detail: String) -> Event {
        Event {
            at: now,
            host: None,
            old_enabled: None,
            new_enabled: None,
            reason,
            detail,
            evidence: BTreeMap::new(),
            samples: Vec::new(),
            incident: None,
            prefix: None,
        }
    }
}

/// Adds `counts` into `evidence`, region by region.
fn add_counts(
    evidence: &mut BTreeMap<String, RegionCounts>,
    counts: &BTreeMap<String, RegionCounts>,
) {
    for (region, c) in counts {
        let e = evidence.entry(region.clone()).or_default();
        e.ok += c.ok;
        e.failed += c.failed;
        e.invalid |= c.invalid;
    }
}

fn first_samples(a: &Analysis, keep: impl Fn(&Sample) -> bool) -> Vec<Sample> {
    a.samples
        .iter()
        .filter(|s| keep(s))
        .take(SAMPLES_PER_EVENT)
        .cloned()
        .collect()
}
