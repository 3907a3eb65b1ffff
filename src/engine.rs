//! The decision engine: from one round of evidence, the engine's state, the policy and `now`, decides
//! which hosts clients may use. Pure: (evidence, state, policy, now) → decisions and events. No I/O,
//! no clock reads (`now` is given), no randomness; the decider owns the loop and everything around it.
//!
//! The rules and their anchors (the README explains each): a region round fails when ≥ 60 % of its
//! valid results fail; a region is unhealthy after 3 failed rounds in a row (HAProxy/Route 53 `fall 3`)
//! or ≥ 50 % failed rounds over the last 6; a host is disabled when a majority quorum of valid regions
//! is unhealthy (Cloudflare/NS1 majority quorums); it comes back after 3 ok rounds in the quorum and a
//! hold that grows with each consecutive disable (Envoy's ejection backoff), capped at the article's
//! reviveProbeInterval, and that runs from the host's last failed round (a stabilization window, as
//! Kubernetes' autoscaler has), so a flapping host stays out instead of costing two versions a flap;
//! when the engine's own view is cut off it keeps the last good state (Traffic Monitor). Guards run
//! after the candidate decisions.
//!
//! Layout: `policy` the thresholds; `evidence` what a round says; `history` what the engine
//! remembers per host and region; `guards` the quorum rule, freeze, vendor-wide and fail-open;
//! `rise` holds and coming back; `overrides` what operators force; `step` each host's outcome
//! committed; `memory` the state that decides the next flip, as data to keep across a restart; `diagnosis` the smallest scopes that explain a round's failures; `merge` what a broken merged path prefix makes it do (roll back, leave a vendor, raise); `notice` the events
//! raised when a diagnosed scope begins; `event` what is said about it all, with
//! the failed results it carries (`sample`). Dependencies between them go one way (a test in
//! `import_cycles.rs` keeps it so): `step` → `guards` → `overrides`, `event` → `diagnosis` → `evidence` → `sample`.

mod diagnosis;
mod event;
mod evidence;
mod guards;
mod history;
mod memory;
mod merge;
mod notice;
mod overrides;
pub mod policy;
mod rise;
mod sample;
mod step;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use diagnosis::{ClassCount, Diagnosis, FaultScope};
pub use event::{Event, Reason};
pub use evidence::{Observation, RegionCounts, RegionRound, Round, RoundVerdict};
pub use memory::Memory;
pub use merge::{MergeInfo, MergeMemory};
pub use overrides::{Override, OverrideKind};
pub use policy::PathFault;
pub use policy::Policy;
pub use sample::{Sample, SampleParseError};

use history::{HostState, Recording};
use merge::MergeState;

/// A host the engine decides about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The host's domain.
    pub host: String,
    /// The vendor serving it.
    pub vendor: String,
}

/// The engine's verdict on one host after an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostDecision {
    /// Whether clients may use the host.
    pub enabled: bool,
    /// Why it is disabled (or was kept enabled by a guard or an override).
    pub reason: Option<Reason>,
}

/// What one evaluation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Every host's verdict, by domain.
    pub hosts: BTreeMap<String, HostDecision>,
    /// True when some host's enabled flag changed: a new version must be published.
    pub changed: bool,
    /// False while frozen or before the first full round in enough regions (publish nothing),
    /// unless an override changed a host then: what an operator forces is always published.
    pub publishable: bool,
    /// What was decided or refused, in order.
    pub events: Vec<Event>,
    /// The smallest scopes that explain this round's failures.
    pub diagnoses: Vec<Diagnosis>,
    /// The merged path prefixes whose merge is rolled back: published with rate 0.
    pub rolled_back: BTreeSet<String>,
}

/// The engine: its policy and its memory of past rounds.
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Policy,
    hosts: Vec<HostState>,
    warmed_up: bool,
    frozen: bool,
    /// The scopes diagnosed in the last round (an event is raised when one begins).
    diagnosed: BTreeSet<FaultScope>,
    /// The merged path prefixes and what the engine knows of each.
    merges: Vec<MergeState>,
}

impl Engine {
    /// A cold engine: every host enabled, nothing publishable until a full round in enough regions.
    pub fn new(policy: Policy, hosts: Vec<HostInfo>, now: DateTime<Utc>) -> Engine {
        Engine {
            policy,
            hosts: hosts.into_iter().map(|h| HostState::new(h, now)).collect(),
            warmed_up: false,
            frozen: false,
            diagnosed: BTreeSet::new(),
            merges: Vec::new(),
        }
    }

    /// The same engine deciding about these merged path prefixes too (README: "A broken path
    /// prefix").
    pub fn with_merges(mut self, merges: Vec<MergeInfo>) -> Engine {
        self.merges = merges
            .into_iter()
            .map(|info| MergeState {
                info,
                m: MergeMemory::default(),
            })
            .collect();
        self
    }

    /// Starts from a known state (the last published document) instead of all-enabled. A host
    /// whose flag this changes loses its remembered reason (the document is what clients saw).
    pub fn restore(&mut self, enabled: &BTreeMap<String, bool>) {
        for h in &mut self.hosts {
            if let Some(e) = enabled.get(&h.info.host) {
                if h.enabled != *e {
                    h.reason = None;
                }
                h.enabled = *e;
            }
        }
    }

    /// The policy the engine decides by.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Evaluates one round. `overrides` are all known overrides; expired ones are ignored.
    pub fn evaluate(
        &mut self,
        round: &Round,
        overrides: &[Override],
        now: DateTime<Utc>,
    ) -> Evaluation {
        self.evaluate_as(round, overrides, now, Recording::Round)
    }

    /// Evaluates the confirmations that came in since the last round (`round` is the latest
    /// results, as for [`Engine::evaluate`]): a region's confirmed failures amend its newest
    /// round instead of adding one, so they can complete a fall between two intervals while
    /// nothing else (an ok round, the window) moves faster.
    pub fn evaluate_confirmations(
        &mut self,
        round: &Round,
        overrides: &[Override],
        now: DateTime<Utc>,
    ) -> Evaluation {
        self.evaluate_as(round, overrides, now, Recording::Amend)
    }

    fn evaluate_as(
        &mut self,
        round: &Round,
        overrides: &[Override],
        now: DateTime<Utc>,
        how: Recording,
    ) -> Evaluation {
        let mut events = Vec::new();
        let a = evidence::analyse(round, &self.hosts_info(), &self.policy);
        let diagnoses = diagnosis::diagnose(round, &self.hosts_info(), &a);
        self.note_diagnoses(&diagnoses, &a, now, &mut events);
        let before: Vec<bool> = self.hosts.iter().map(|h| h.enabled).collect();
        if self.freeze(&a, now, &mut events) {
            // The freeze (and the warm-up before the first full round, which is a freeze too)
            // stops the engine's own changes only: on-call needs overrides most exactly when the
            // engine's view is cut off, so they apply, fail-open still guards them, and what they
            // change is published.
            self.apply_overrides(overrides, &a, now, &mut events);
            self.guard_fail_open(overrides, &a, now, &mut events);
            return self.result(before, true, events, diagnoses);
        }
        let amended = self.record_rounds(&a, how);
        self.warmed_up = true; // this round is (at least) the first full one in enough regions
        let quorum = self.policy.quorum(a.valid_regions.len());
        self.release_cleared(overrides, &a, quorum, now, &mut events);
        let mut disable = self.quorum_disables(&a, quorum);
        self.widen_vendor_wide(&mut disable, &a, quorum);
        if how == Recording::Round {
            // A prefix's failed rounds are counted once per interval: confirmations between two
            // intervals amend the hosts' newest round only.
            self.decide_merges(&diagnoses, &a, now, &mut disable, &mut events);
        }
        let only = (how == Recording::Amend).then_some(amended.as_slice());
        self.extend_holds(&a, now, only);
        let rise = self.rise_candidates(&a, quorum, now);
        self.apply(&disable, &rise, overrides, &a, now, &mut events);
        self.guard_fail_open(overrides, &a, now, &mut events);
        self.decay(now);
        self.result(before, false, events, diagnoses)
    }

    fn hosts_info(&self) -> Vec<HostInfo> {
        self.hosts.iter().map(|h| h.info.clone()).collect()
    }

    /// The evaluation's outcome. A frozen one is publishable only when an override changed a host
    /// (nothing else may change while frozen); otherwise once warmed up.
    fn result(
        &self,
        before: Vec<bool>,
        frozen: bool,
        events: Vec<Event>,
        diagnoses: Vec<Diagnosis>,
    ) -> Evaluation {
        let changed = self.hosts.iter().zip(before).any(|(h, b)| h.enabled != b);
        let publishable = if frozen { changed } else { self.warmed_up };
        let hosts = self.hosts.iter().map(|h| {
            let decision = HostDecision {
                enabled: h.enabled,
                reason: h.reason,
            };
            (h.info.host.clone(), decision)
        });
        Evaluation {
            hosts: hosts.collect(),
            changed,
            publishable,
            events,
            diagnoses,
            rolled_back: self.rolled_back(),
        }
    }
}

#[cfg(test)]
mod tests;
