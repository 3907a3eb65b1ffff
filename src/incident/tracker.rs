//! One round applied to the incidents: each diagnosis joins the open incident it belongs to (or
//! opens one, or reopens the same scope's if it resolved just before), incidents that turn out to
//! be one fault are merged into the oldest, untouched ones count clean rounds until they resolve,
//! and the round's events are linked to the incident they are about, its decisions and refusals
//! kept on it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::relate::{belongs, may_rescope, rank, under};
use super::{Decision, Entry, Happening, Incident, IncidentState, Refusal};
use crate::engine::{Diagnosis, Event, FaultScope, Reason};

/// What a round is applied with.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The round's time.
    pub now: DateTime<Utc>,
    /// Whether this is a round of its own (false for confirmations amending the newest round:
    /// an incident they do not touch has not been clean for one more round).
    pub counts_round: bool,
    /// Clean rounds in a row that resolve an incident (the engine's `rise_rounds`).
    pub rise_rounds: usize,
    /// Valid regions a host-wide decision needs (the engine's quorum this round).
    pub quorum: usize,
    /// A scope failing again within this long after its incident resolved reopens it.
    pub reopen_within: chrono::Duration,
}

/// What a round did to the incidents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Per event of the round (same order), the incident it is about.
    pub links: Vec<Option<i64>>,
    /// The incidents that changed (to be saved).
    pub changed: BTreeSet<i64>,
}

/// The incidents still open, and those resolved recently enough to reopen or to take the late
/// decisions about their hosts (a host coming back after its hold).
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    incidents: BTreeMap<i64, Incident>,
    next_id: i64,
}

impl Tracker {
    /// A tracker holding `kept` (as read back from the store), numbering new incidents from
    /// `next_id` on.
    pub fn new(kept: Vec<Incident>, next_id: i64) -> Tracker {
        let next_id = kept.iter().map(|i| i.id + 1).fold(next_id.max(1), i64::max);
        Tracker {
            incidents: kept.into_iter().map(|i| (i.id, i)).collect(),
            next_id,
        }
    }

    /// The incidents it holds, oldest first.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values()
    }

    /// One incident it holds.
    pub fn get(&self, id: i64) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    /// One incident it holds, to note what was told of it.
    pub fn get_mut(&mut self, id: i64) -> Option<&mut Incident> {
        self.incidents.get_mut(&id)
    }

    /// Applies one round's diagnoses and events.
    pub fn observe(&mut self, diagnoses: &[Diagnosis], events: &[Event], cx: Context) -> Observed {
        let mut changed = BTreeSet::new();
        let touched = self.attribute(diagnoses, cx, &mut changed);
        for (id, ds) in &touched {
            if let Some(incident) = self.incidents.get_mut(id) {
                failed_again(incident, ds, cx);
            }
        }
        for incident in self.incidents.values_mut() {
            if cx.counts_round
                && incident.state == IncidentState::Open
                && !touched.contains_key(&incident.id)
            {
                incident.clean_rounds += 1;
                changed.insert(incident.id);
                if incident.clean_rounds >= cx.rise_rounds {
                    incident.state = IncidentState::Resolved;
                    incident.resolved_at = Some(cx.now);
                    push(incident, cx.now, Happening::Resolved);
                }
            }
        }
        let links = events
            .iter()
            .map(|e| self.link(e, &touched, cx, &mut changed))
            .collect();
        self.incidents.retain(|_, i| {
            i.state == IncidentState::Open
                || i.resolved_at
                    .is_some_and(|at| cx.now - at <= cx.reopen_within)
        });
        Observed { links, changed }
    }

    /// Records `version` on the flips of the round `observed` came from (decided at `now`).
    pub fn published(&mut self, observed: &Observed, version: i64, now: DateTime<Utc>) {
        for id in &observed.changed {
            let Some(incident) = self.incidents.get_mut(id) else {
                continue;
            };
            let decisions = incident.decisions.iter_mut();
            let entries = incident
                .timeline
                .iter_mut()
                .filter(|e| e.at == now)
                .filter_map(|e| match &mut e.what {
                    Happening::Decided(d) => Some(d),
                    _ => None,
                });
            for d in decisions.chain(entries) {
                if let Decision::Flip {
                    version: v @ None, ..
                }
                | Decision::Merge {
                    version: v @ None, ..
                } = d
                {
                    *v = Some(version);
                }
            }
        }
    }

    /// Which incident each diagnosis belongs to, opening, reopening and merging as needed.
    fn attribute<'d>(
        &mut self,
        diagnoses: &'d [Diagnosis],
        cx: Context,
        changed: &mut BTreeSet<i64>,
    ) -> BTreeMap<i64, Vec<&'d Diagnosis>> {
        let mut touched: BTreeMap<i64, Vec<&Diagnosis>> = BTreeMap::new();
        for d in diagnoses {
            let related: Vec<i64> = self
                .incidents
                .values()
                .filter(|i| i.state == IncidentState::Open && belongs(d, i))
                .map(|i| i.id)
                .collect();
            let id = match related.split_first() {
                None => self.reopen(d, cx).unwrap_or_else(|| self.open(d, cx)),
                Some((&oldest, younger)) => {
                    for &other in younger {
                        self.merge(other, oldest, cx.now);
                        let moved = touched.remove(&other).unwrap_or_default();
                        touched.entry(oldest).or_default().extend(moved);
                        changed.insert(other);
                    }
                    oldest
                }
            };
            // The incident's places grow now, so the round's next diagnoses see them.
            if let Some(incident) = self.incidents.get_mut(&id) {
                widen_places(incident, d);
            }
            touched.entry(id).or_default().push(d);
            changed.insert(id);
        }
        touched
    }

    /// Reopens the incident of `d`'s very scope if it resolved within the reopen window.
    fn reopen(&mut self, d: &Diagnosis, cx: Context) -> Option<i64> {
        let incident = self.incidents.values_mut().rev().find(|i| {
            i.state == IncidentState::Resolved
                && i.scope == d.scope
                && !merged(i)
                && i.resolved_at
                    .is_some_and(|at| cx.now - at <= cx.reopen_within)
        })?;
        incident.state = IncidentState::Open;
        incident.resolved_at = None;
        push(incident, cx.now, Happening::Reopened);
        Some(incident.id)
    }

    /// Opens a new incident for `d`.
    fn open(&mut self, d: &Diagnosis, cx: Context) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut incident = Incident {
            id,
            scope: d.scope.clone(),
            widest: None,
            state: IncidentState::Open,
            opened_at: cx.now,
            updated_at: cx.now,
            last_failed_at: cx.now,
            resolved_at: None,
            clean_rounds: 0,
            classes: Vec::new(),
            hosts: BTreeSet::new(),
            paths: BTreeSet::new(),
            regions: BTreeSet::new(),
            resolvers: BTreeSet::new(),
            edges: BTreeSet::new(),
            decisions: Vec::new(),
            timeline: Vec::new(),
            timeline_dropped: 0,
            told: 0,
        };
        push(
            &mut incident,
            cx.now,
            Happening::Opened {
                scope: d.scope.clone(),
            },
        );
        if let Some(refusal) = opening_refusal(d, cx.quorum) {
            decide(
                &mut incident,
                cx.now,
                Decision::Refused {
                    refusal,
                    host: None,
                },
            );
        }
        self.incidents.insert(id, incident);
        id
    }

    /// Folds incident `from` into `into`: one fault found to be one.
    fn merge(&mut self, from: i64, into: i64, now: DateTime<Utc>) {
        let Some(mut other) = self.incidents.remove(&from) else {
            return;
        };
        other.state = IncidentState::Resolved;
        other.resolved_at = Some(now);
        push(&mut other, now, Happening::MergedInto { incident: into });
        if let Some(oldest) = self.incidents.get_mut(&into) {
            oldest.hosts.extend(other.hosts.iter().cloned());
            oldest.paths.extend(other.paths.iter().cloned());
            oldest.regions.extend(other.regions.iter().cloned());
            oldest.resolvers.extend(other.resolvers.iter().cloned());
            oldest.edges.extend(other.edges.iter().copied());
            for d in &other.decisions {
                oldest.decisions.push(d.clone());
            }
            push(oldest, now, Happening::Absorbed { incident: from });
        }
        self.incidents.insert(from, other);
    }

    /// The incident event `e` is about, with its decision or refusal recorded there.
    fn link(
        &mut self,
        e: &Event,
        touched: &BTreeMap<i64, Vec<&Diagnosis>>,
        cx: Context,
        changed: &mut BTreeSet<i64>,
    ) -> Option<i64> {
        let decision = decision_of(e);
        if e.reason == Reason::Freeze {
            // About the whole round: every open incident was held by it.
            for incident in self.incidents.values_mut() {
                if incident.state == IncidentState::Open {
                    if let Some(d) = &decision {
                        decide(incident, cx.now, d.clone());
                    }
                    changed.insert(incident.id);
                }
            }
            return None;
        }
        let (hosts, paths) = touches(e);
        let fits = |i: &Incident| {
            family_fits(e.reason, &i.scope)
                && match &e.prefix {
                    // A merge is about its prefix, whichever hosts it was failing on.
                    Some(prefix) => on_prefix(&i.scope, prefix),
                    None => {
                        !i.hosts.is_disjoint(&hosts)
                            && (paths.is_empty()
                                || e.reason != Reason::OriginFault
                                || !i.paths.is_disjoint(&paths))
                    }
                }
        };
        let id = touched
            .keys()
            .filter_map(|id| self.incidents.get(id))
            .chain(
                self.incidents
                    .values()
                    .filter(|i| i.state == IncidentState::Open),
            )
            .chain(self.incidents.values().rev().filter(|i| !merged(i)))
            .find(|i| fits(i))
            .map(|i| i.id)?;
        if let (Some(d), Some(incident)) = (decision, self.incidents.get_mut(&id)) {
            decide(incident, cx.now, d);
            changed.insert(id);
        }
        Some(id)
    }
}

/// What `d` adds to the places of `incident`: its hosts, paths, regions, resolvers and edges.
fn widen_places(incident: &mut Incident, d: &Diagnosis) {
    incident.hosts.extend(d.hosts.iter().cloned());
    incident.paths.extend(d.paths.iter().cloned());
    incident.resolvers.extend(d.resolvers.iter().cloned());
    incident.edges.extend(d.edges.iter().copied());
    let failing = d.regions.iter().filter(|(_, c)| c.failed > 0);
    incident.regions.extend(failing.map(|(r, _)| r.clone()));
}

/// An incident whose scope failed this round, with the round's diagnoses of it: its classes, and
/// its scope widened or narrowed to the widest of them.
fn failed_again(incident: &mut Incident, ds: &[&Diagnosis], cx: Context) {
    incident.clean_rounds = 0;
    incident.last_failed_at = cx.now;
    incident.updated_at = cx.now;
    for d in ds {
        for c in &d.classes {
            match incident
                .classes
                .iter_mut()
                .find(|k| k.outcome == c.outcome && k.phase == c.phase)
            {
                Some(k) => k.count = k.count.max(c.count),
                None => incident.classes.push(*c),
            }
        }
    }
    incident.classes.sort_by_key(|c| std::cmp::Reverse(c.count));
    let round_scope = ds
        .iter()
        .map(|d| &d.scope)
        .filter(|s| may_rescope(&incident.scope, s))
        .max_by_key(|s| (rank(s), *s == &incident.scope))
        .cloned();
    if let Some(scope) = round_scope.filter(|s| *s != incident.scope) {
        let was = incident.widest.as_ref().unwrap_or(&incident.scope);
        if rank(&scope) >= rank(was) {
            incident.widest = None;
        } else if incident.widest.is_none() {
            incident.widest = Some(incident.scope.clone());
        }
        let what = if rank(&scope) > rank(&incident.scope) {
            Happening::Widened {
                scope: scope.clone(),
            }
        } else {
            Happening::Narrowed {
                scope: scope.clone(),
            }
        };
        incident.scope = scope;
        push(incident, cx.now, what);
    }
}

/// The refusal an incident opens with, when its scope cannot move hosts by itself: a fault in
/// fewer regions than the quorum, or our own probe network.
fn opening_refusal(d: &Diagnosis, quorum: usize) -> Option<Refusal> {
    let failing = d.regions.values().filter(|c| c.failed > 0).count();
    match &d.scope {
        FaultScope::ProbeNetwork { .. } => Some(Refusal::ProbeNetwork),
        FaultScope::Edge { .. } | FaultScope::Resolver { .. } | FaultScope::RegionVendor { .. }
            if failing < quorum =>
        {
            Some(Refusal::BelowQuorum)
        }
        _ => None,
    }
}

/// The decision or refusal an event records, if any.
fn decision_of(e: &Event) -> Option<Decision> {
    if let (Some(host), Some(old), Some(new)) = (&e.host, e.old_enabled, e.new_enabled)
        && old != new
    {
        return Some(Decision::Flip {
            host: host.clone(),
            enabled: new,
            reason: e.reason,
            version: None,
        });
    }
    if let (Some(prefix), Reason::MergeRollback | Reason::MergeRestore) = (&e.prefix, e.reason) {
        return Some(Decision::Merge {
            prefix: prefix.clone(),
            rolled_back: e.reason == Reason::MergeRollback,
            version: None,
        });
    }
    let refusal = match e.reason {
        Reason::Freeze => Refusal::Freeze,
        Reason::FailOpen => Refusal::FailOpen,
        Reason::OriginFault => Refusal::Origin,
        Reason::ProbeNetwork => Refusal::ProbeNetwork,
        _ => return None,
    };
    Some(Decision::Refused {
        refusal,
        host: e.host.clone(),
    })
}

/// Whether an event of `reason` can be about an incident of `scope`'s kind.
fn family_fits(reason: Reason, scope: &FaultScope) -> bool {
    match reason {
        Reason::ProbeNetwork => matches!(scope, FaultScope::ProbeNetwork { .. }),
        Reason::OriginFault | Reason::MergeRollback | Reason::MergeRestore => matches!(
            scope,
            FaultScope::Origin { .. } | FaultScope::PrefixVendor { .. }
        ),
        _ => !matches!(
            scope,
            FaultScope::ProbeNetwork { .. } | FaultScope::Origin { .. }
        ),
    }
}

/// Whether `scope` is about the merged path prefix `prefix`.
fn on_prefix(scope: &FaultScope, prefix: &str) -> bool {
    match scope {
        FaultScope::PrefixVendor { prefix: p, .. } => p == prefix,
        FaultScope::Origin { path } => under(path, prefix),
        _ => false,
    }
}

/// The hosts and paths an event touches: its host, and its samples'.
fn touches(e: &Event) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut hosts: BTreeSet<String> = e.samples.iter().map(|s| s.host.clone()).collect();
    hosts.extend(e.host.iter().cloned());
    let paths = e.samples.iter().map(|s| s.path.clone()).collect();
    (hosts, paths)
}

/// Whether the incident was merged into another (it is then never reopened or linked to).
fn merged(i: &Incident) -> bool {
    i.timeline
        .iter()
        .any(|e| matches!(e.what, Happening::MergedInto { .. }))
}

/// Records a decision, unless it is a refusal already recorded.
fn decide(incident: &mut Incident, now: DateTime<Utc>, d: Decision) {
    if matches!(d, Decision::Refused { .. }) && incident.decisions.contains(&d) {
        return;
    }
    incident.decisions.push(d.clone());
    push(incident, now, Happening::Decided(d));
}

/// Appends a timeline entry, cutting the middle of a timeline past [`TIMELINE_KEPT`].
fn push(incident: &mut Incident, at: DateTime<Utc>, what: Happening) {
    incident.updated_at = at;
    incident.timeline.push(Entry { at, what });
    incident.trim();
}
