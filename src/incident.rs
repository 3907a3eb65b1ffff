//! Incidents: one fault, however many hosts, edges and rounds it touches. The engine diagnoses each
//! round's failures into scopes ([`FaultScope`]); the [`Tracker`] groups them: an incident opens
//! when a diagnosis first holds, follows its scope as it widens or narrows, collects the decisions
//! (and refusals) made about it and the versions they published, and resolves once its scope has
//! been clean for `rise_rounds` rounds. Pure like the engine (`now` is given); the decision loop
//! keeps its state in the store after each round, so a restart or a kill continues the same
//! incidents. The [`Board`] is what the pages and `/metrics` read of the open ones.
//!
//! Layout: `relate` which scopes are one fault; `tracker` the rounds applied to the incidents.

mod relate;
mod tracker;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::{ClassCount, FaultScope, Reason};

pub use tracker::{Context, Observed, Tracker};

/// Timeline entries an incident keeps once told: a flapping fault over days must not grow its row
/// without bound. The first ones (how it began) are kept, and the newest; the count of those
/// dropped between is kept too.
pub const TIMELINE_KEPT: usize = 200;
/// Timeline entries kept from an incident's beginning when its timeline is cut.
pub const TIMELINE_HEAD: usize = 20;

/// Whether an incident still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Its scope failed within the last `rise_rounds` rounds.
    Open,
    /// Its scope has been clean for `rise_rounds` rounds (or it was absorbed by a wider one).
    Resolved,
}

impl IncidentState {
    /// The one spelling, as in JSON, SQL and the API's `state=`.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Resolved => "resolved",
        }
    }

    /// Reads [`IncidentState::as_str`] back.
    pub fn parse(s: &str) -> Option<IncidentState> {
        match s {
            "open" => Some(IncidentState::Open),
            "resolved" => Some(IncidentState::Resolved),
            _ => None,
        }
    }
}

/// Why nothing was flipped for an incident (or a flip was held back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// It fails in fewer valid regions than the quorum needs.
    BelowQuorum,
    /// Too few regions had valid evidence: the engine changed nothing.
    Freeze,
    /// Disabling would have left no host: one was kept.
    FailOpen,
    /// The origin fails, not the CDN: no host would help.
    Origin,
    /// Our own probe network fails there: its results do not vote.
    ProbeNetwork,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::BelowQuorum => {
                "nothing flipped: it fails in fewer valid regions than the quorum"
            }
            Refusal::Freeze => "nothing flipped: too few regions had valid evidence (frozen)",
            Refusal::FailOpen => "kept enabled: disabling it would have left no host (fail-open)",
            Refusal::Origin => "nothing flipped: the origin fails on every vendor",
            Refusal::ProbeNetwork => {
                "nothing flipped: our own probe network fails, its results do not vote"
            }
        })
    }
}

/// What was decided about an incident's hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// A host was taken out, or brought back.
    Flip {
        /// The host.
        host: String,
        /// Whether clients may use it now.
        enabled: bool,
        /// The engine's reason.
        reason: Reason,
        /// The version that published it, once known.
        version: Option<i64>,
    },
    /// A merged path prefix was rolled back to its original domain (`rate: 0`), or restored.
    Merge {
        /// The prefix.
        prefix: String,
        /// Rolled back (true) or restored (false).
        rolled_back: bool,
        /// The version that published it, once known.
        version: Option<i64>,
    },
    /// Nothing was flipped, and why.
    Refused {
        /// Why.
        refusal: Refusal,
        /// The host concerned, when one.
        host: Option<String>,
    },
}

/// As the timeline shows it: `cdn.shop.test disabled (vendor_wide), version 12`.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Flip {
                host,
                enabled,
                reason,
                version,
            } => {
                let verb = if *enabled { "enabled" } else { "disabled" };
                write!(f, "{host} {verb} ({})", reason.as_str())?;
                match version {
                    Some(v) => write!(f, ", version {v}"),
                    None => write!(f, ", not published"),
                }
            }
            Decision::Merge {
                prefix,
                rolled_back,
                version,
            } => {
                let what = if *rolled_back {
                    "merge rolled back (rate 0): clients load it from its original domain"
                } else {
                    "merge restored (its configured rate)"
                };
                write!(f, "prefix {prefix}: {what}")?;
                match version {
                    Some(v) => write!(f, ", version {v}"),
                    None => write!(f, ", not published"),
                }
            }
            Decision::Refused {
                refusal,
                host: Some(host),
            } => write!(f, "{host}: {refusal}"),
            Decision::Refused {
                refusal,
                host: None,
            } => write!(f, "{refusal}"),
        }
    }
}

/// One thing that happened to an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Happening {
    /// The diagnosis first held.
    Opened {
        /// Its scope then.
        scope: FaultScope,
    },
    /// The scope grew.
    Widened {
        /// The new scope.
        scope: FaultScope,
    },
    /// The scope shrank (or moved to another of the same size).
    Narrowed {
        /// The new scope.
        scope: FaultScope,
    },
    /// A decision or refusal.
    Decided(Decision),
    /// Another open incident turned out to be part of this one.
    Absorbed {
        /// The other incident.
        incident: i64,
    },
    /// This incident turned out to be part of another, older one.
    MergedInto {
        /// The other incident.
        incident: i64,
    },
    /// Clean for `rise_rounds` rounds.
    Resolved,
    /// The same scope failed again soon after it resolved.
    Reopened,
}

impl fmt::Display for Happening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Happening::Opened { scope } => write!(f, "opened: {scope} fails"),
            Happening::Widened { scope } => write!(f, "widened to {scope}"),
            Happening::Narrowed { scope } => write!(f, "narrowed to {scope}"),
            Happening::Decided(d) => write!(f, "{d}"),
            Happening::Absorbed { incident } => {
                write!(f, "incident {incident} turned out to be part of this one")
            }
            Happening::MergedInto { incident } => write!(f, "part of incident {incident}"),
            Happening::Resolved => f.write_str("resolved: clean for rise_rounds rounds"),
            Happening::Reopened => f.write_str("reopened: the same scope fails again"),
        }
    }
}

/// A timeline entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    #[serde(flatten)]
    pub what: Happening,
}

/// One fault, from its first diagnosis to its resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Its number, never reused.
    pub id: i64,
    /// Its scope now (the widest diagnosed in its latest failing round).
    pub scope: FaultScope,
    /// The widest scope it has had, when wider than its scope now: a vendor's incident that
    /// narrowed to one edge as it recovers still takes in its vendor's other failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widest: Option<FaultScope>,
    /// Open or resolved.
    pub state: IncidentState,
    /// When its diagnosis first held.
    pub opened_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it last failed.
    pub last_failed_at: DateTime<Utc>,
    /// When it resolved (while resolved).
    pub resolved_at: Option<DateTime<Utc>>,
    /// Clean rounds in a row since it last failed.
    pub clean_rounds: usize,
    /// The failure classes met, with their phases and peak counts, most frequent first.
    pub classes: Vec<ClassCount>,
    /// Every host it touched.
    pub hosts: BTreeSet<String>,
    /// Every probe path it touched.
    pub paths: BTreeSet<String>,
    /// Every region it failed in.
    pub regions: BTreeSet<String>,
    /// Every resolver it touched, as (region, resolver).
    pub resolvers: BTreeSet<(String, String)>,
    /// Every edge it touched.
    pub edges: BTreeSet<IpAddr>,
    /// What was decided about it, in order.
    pub decisions: Vec<Decision>,
    /// What happened, oldest first (at most [`TIMELINE_KEPT`]).
    pub timeline: Vec<Entry>,
    /// Entries dropped from the middle of a long timeline.
    pub timeline_dropped: usize,
    /// Entries (counted from the first ever, dropped ones included) already handed to the
    /// notifications: saved with the notices they made, in one transaction.
    #[serde(default)]
    pub told: usize,
}

impl Incident {
    /// Cuts the middle of a timeline past [`TIMELINE_KEPT`], keeping its first [`TIMELINE_HEAD`]
    /// entries and its newest — but only entries already told: one round that adds hundreds
    /// (a storm's re-enables) grows it until they are told, so its resolution is never cut first.
    pub fn trim(&mut self) {
        while self.timeline.len() > TIMELINE_KEPT
            && TIMELINE_HEAD + self.timeline_dropped < self.told
        {
            self.timeline.remove(TIMELINE_HEAD);
            self.timeline_dropped += 1;
        }
    }

    /// Entries ever added, those dropped from the middle included.
    pub fn entries_ever(&self) -> usize {
        self.timeline.len() + self.timeline_dropped
    }

    /// The entries from number `from` on (counted as [`Incident::entries_ever`] counts), with
    /// their numbers.
    pub fn entries_from(&self, from: usize) -> impl Iterator<Item = (usize, &Entry)> {
        let dropped = self.timeline_dropped;
        self.timeline
            .iter()
            .enumerate()
            .map(move |(i, e)| (if i < TIMELINE_HEAD { i } else { i + dropped }, e))
            .filter(move |(n, _)| *n >= from)
    }

    /// The versions its decisions published.
    pub fn versions(&self) -> BTreeSet<i64> {
        self.decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Flip { version, .. } | Decision::Merge { version, .. } => *version,
                Decision::Refused { .. } => None,
            })
            .collect()
    }
}

/// The open incidents as the pages and `/metrics` read them: updated by the decision loop after
/// each round.
#[derive(Debug, Default)]
pub struct Board {
    open: Mutex<Vec<(i64, FaultScope)>>,
}

impl Board {
    /// An empty board.
    pub fn new() -> Arc<Board> {
        Arc::new(Board::default())
    }

    /// The open incidents, oldest first.
    pub fn open(&self) -> Vec<(i64, FaultScope)> {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Open incidents per scope kind (every kind present, zero or not).
    pub fn open_by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut counts: BTreeMap<&'static str, usize> =
            FaultScope::KINDS.iter().map(|k| (*k, 0)).collect();
        for (_, scope) in self.open().iter() {
            *counts.entry(scope.kind()).or_default() += 1;
        }
        counts
    }

    /// Replaces the board with `tracker`'s open incidents.
    pub fn show(&self, tracker: &Tracker) {
        let open = tracker
            .incidents()
            .filter(|i| i.state == IncidentState::Open)
            .map(|i| (i.id, i.scope.clone()))
            .collect();
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = open;
    }
}

#[cfg(test)]
mod tests;
