//! Merged path prefixes (the article's `mergeHostConfigs`, section 2.4) and what the engine does
//! when one breaks on the unified hosts (section 6, the `/image` incident), as [`PathFault`]
//! chooses: roll its merge back (published with rate 0: clients load its URLs from the original
//! domain again) while the original domain serves; leave the vendor whose hosts break it when the
//! original fails too; raise it only when it fails everywhere. A prefix acts after `fall_rounds`
//! failed rounds in a quorum of regions, and is restored after `rise_rounds` healthy rounds and a
//! hold that runs from its last failed round. It reads the round's diagnoses and the original
//! domains' results; it flips hosts only through the disables it adds (the rules commit them).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::diagnosis::{Diagnosis, FaultScope, prefix_of};
use super::evidence::{Analysis, RegionCounts};
use super::guards::Disables;
use super::policy::PathFault;
use super::{Engine, Event, Policy, Reason};

/// A merged prefix the engine decides about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeInfo {
    /// The original domain (`host` in `mergeHostConfigs`).
    pub host: String,
    /// Its path prefix on the unified hosts, such as `/image`.
    pub prefix: String,
}

/// What the engine knows of one merged prefix; kept across a restart in [`super::Memory`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MergeMemory {
    /// Whether its merge is rolled back (published with rate 0).
    pub rolled_back: bool,
    /// The vendors whose hosts are out because of it.
    pub held_vendors: BTreeSet<String>,
    /// Rounds in a row it failed on the unified hosts, in a quorum of regions.
    pub failing: usize,
    /// Rounds in a row it was healthy there (no diagnosis names it).
    pub healthy: usize,
    /// When the rollback's hold ends.
    pub hold_until: Option<DateTime<Utc>>,
}

/// A merged prefix and what the engine knows of it.
#[derive(Debug, Clone)]
pub(super) struct MergeState {
    pub(super) info: MergeInfo,
    pub(super) m: MergeMemory,
}

/// What one round says about a merged prefix.
#[derive(Debug, Default)]
struct PrefixRound {
    /// Vendors on whose hosts it fails in a quorum of regions.
    vendors: BTreeSet<String>,
    /// It fails on every vendor (the origin scope) in a quorum of regions.
    everywhere: bool,
    /// Some diagnosis names it this round, in any region.
    named: bool,
    /// Its results on the unified hosts in voting regions.
    results: RegionCounts,
    /// Its original domain serves in a quorum of voting regions.
    original_works: bool,
}

impl PrefixRound {
    fn failing(&self) -> bool {
        self.everywhere || !self.vendors.is_empty()
    }

    fn healthy(&self, p: &Policy) -> bool {
        let n = self.results.ok + self.results.failed;
        !self.named && n > 0 && f64::from(self.results.failed) < p.round_fail_ratio * f64::from(n)
    }
}

/// What a failing prefix makes the engine do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Rollback,
    LeaveVendors,
    Raise,
}

/// The action `mode` takes for a failing prefix. A rollback needs the original to serve; leaving
/// vendors needs one that serves the prefix. The default moves the least traffic that makes the
/// prefix load: a rollback moves only the prefix's requests, leaving a vendor moves all of its.
fn choose(mode: PathFault, r: &PrefixRound) -> Action {
    let can_leave = !r.everywhere && !r.vendors.is_empty();
    match mode {
        PathFault::Raise => Action::Raise,
        PathFault::RollbackMerge | PathFault::LeastTraffic if r.original_works => Action::Rollback,
        PathFault::DisableVendor | PathFault::LeastTraffic if can_leave => Action::LeaveVendors,
        _ => Action::Raise,
    }
}

/// What the round says about `info`'s prefix.
fn read(info: &MergeInfo, diagnoses: &[Diagnosis], a: &Analysis, p: &Policy) -> PrefixRound {
    let quorum = p.quorum(a.valid_regions.len());
    let mut r = PrefixRound::default();
    for d in diagnoses {
        let wide = d.regions.len() >= quorum;
        match &d.scope {
            FaultScope::PrefixVendor { prefix, vendor } if *prefix == info.prefix => {
                r.named = true;
                if wide {
                    r.vendors.insert(vendor.clone());
                }
            }
            FaultScope::Origin { path } if prefix_of(path) == info.prefix => {
                r.named = true;
                r.everywhere |= wide;
            }
            _ => {}
        }
    }
    let voting = |(region, _): &(&String, &RegionCounts)| a.valid_regions.contains(*region);
    for (path, counts) in &a.path_counts {
        if prefix_of(path) == info.prefix {
            for (_, c) in counts.iter().filter(voting) {
                r.results.ok += c.ok;
                r.results.failed += c.failed;
            }
        }
    }
    let serves =
        |c: &RegionCounts| f64::from(c.failed) < p.round_fail_ratio * f64::from(c.ok + c.failed);
    let original = a.host_counts.get(&info.host);
    let serving = original
        .into_iter()
        .flatten()
        .filter(voting)
        .filter(|(_, c)| serves(c))
        .count();
    r.original_works = serving >= quorum;
    r
}

impl Engine {
    /// Each merged prefix's round: counts its failed and healthy rounds, acts when it has failed
    /// `fall_rounds` in a row (a rollback, or its failing vendors' hosts added to `disable`), and
    /// restores it when healthy for `rise_rounds` and past its hold.
    pub(super) fn decide_merges(
        &mut self,
        diagnoses: &[Diagnosis],
        a: &Analysis,
        now: DateTime<Utc>,
        disable: &mut Disables,
        events: &mut Vec<Event>,
    ) {
        for i in 0..self.merges.len() {
            let r = read(&self.merges[i].info, diagnoses, a, &self.policy);
            let s = &mut self.merges[i].m;
            s.failing = if r.failing() { s.failing + 1 } else { 0 };
            s.healthy = if r.healthy(&self.policy) {
                s.healthy + 1
            } else {
                0
            };
            if r.failing() && s.rolled_back {
                s.hold_until = Some(self.policy.hold_end(now, 1));
            }
            let acted = s.rolled_back || !s.held_vendors.is_empty();
            if !acted && s.failing >= self.policy.fall_rounds {
                self.act(i, &r, a, now, disable, events);
            } else if acted && s.healthy >= self.policy.rise_rounds {
                self.restore_merge(i, a, now, events);
            }
        }
    }

    fn act(
        &mut self,
        i: usize,
        r: &PrefixRound,
        a: &Analysis,
        now: DateTime<Utc>,
        disable: &mut Disables,
        events: &mut Vec<Event>,
    ) {
        let MergeState { info, m: s } = &mut self.merges[i];
        match choose(self.policy.path_fault, r) {
            Action::Rollback => {
                s.rolled_back = true;
                s.hold_until = Some(self.policy.hold_end(now, 1));
                let on = if r.everywhere {
                    "every vendor".to_string()
                } else {
                    names(&r.vendors)
                };
                let detail = format!(
                    "prefix {} fails on {on} while its original domain {} serves: merge rolled back (rate 0), clients load {} URLs from {} again",
                    info.prefix, info.host, info.prefix, info.host
                );
                let event =
                    Event::about_prefix(now, &info.prefix, Reason::MergeRollback, detail, a);
                events.push(event);
            }
            Action::LeaveVendors => {
                s.held_vendors = r.vendors.clone();
                for (k, h) in self.hosts.iter().enumerate() {
                    if h.enabled && s.held_vendors.contains(&h.info.vendor) {
                        disable.entry(k).or_insert(Reason::PrefixVendor);
                    }
                }
            }
            Action::Raise => {}
        }
    }

    /// A prefix healthy again: its vendors may come back (by the rise rule, their own hold), and
    /// its merge is restored once its hold has passed.
    fn restore_merge(
        &mut self,
        i: usize,
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        let MergeState { info, m: s } = &mut self.merges[i];
        s.held_vendors.clear();
        if s.rolled_back && s.hold_until.is_none_or(|t| now >= t) {
            s.rolled_back = false;
            s.hold_until = None;
            let detail = format!(
                "prefix {} healthy on the unified hosts again, hold elapsed: merge restored (its configured rate)",
                info.prefix
            );
            let event = Event::about_prefix(now, &info.prefix, Reason::MergeRestore, detail, a);
            events.push(event);
        }
    }

    /// Whether a merged prefix still holds `vendor`'s hosts out.
    pub(super) fn prefix_holds(&self, vendor: &str) -> bool {
        self.merges
            .iter()
            .any(|s| s.m.held_vendors.contains(vendor))
    }

    /// The prefixes whose merge is rolled back.
    pub(super) fn rolled_back(&self) -> BTreeSet<String> {
        self.merges
            .iter()
            .filter(|s| s.m.rolled_back)
            .map(|s| s.info.prefix.clone())
            .collect()
    }

    /// Marks the merges of `prefixes` rolled back (from the last published document: a prefix
    /// published with rate 0 that the config gives a rate).
    pub fn restore_rollbacks(&mut self, prefixes: &BTreeSet<String>) {
        for s in &mut self.merges {
            if prefixes.contains(&s.info.prefix) && !s.m.rolled_back {
                s.m.rolled_back = true;
                s.m.healthy = 0;
            }
        }
    }
}

fn names(vendors: &BTreeSet<String>) -> String {
    vendors.iter().cloned().collect::<Vec<_>>().join(" and ")
}
