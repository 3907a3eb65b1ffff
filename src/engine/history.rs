//! The engine's memory of each host: per region, its recent rounds (failed or not), and the host's
//! own standing (enabled, why, holds). It records rounds and answers questions
//! about them; it decides nothing.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};

use super::evidence::Analysis;
use super::{Engine, HostInfo, Policy, Reason, RoundVerdict};

/// One region's recent rounds for one host.
#[derive(Debug, Clone, Default)]
pub(super) struct RegionHistory {
    /// Newest last; true = failed round. Invalid rounds are not recorded.
    rounds: VecDeque<bool>,
    /// The failed confirmations the newest round stands on (0 unless it failed).
    confirmed: u32,
}

impl RegionHistory {
    /// A history of these rounds, oldest first.
    pub(super) fn from_rounds(rounds: Vec<bool>) -> RegionHistory {
        RegionHistory {
            rounds: VecDeque::from(rounds),
            confirmed: 0,
        }
    }

    /// The rounds, oldest first.
    pub(super) fn rounds(&self) -> &VecDeque<bool> {
        &self.rounds
    }

    /// Records a round standing on `confirmed` failed confirmations, keeping the newest `keep`.
    pub(super) fn push(&mut self, failed: bool, confirmed: u32, keep: usize) {
        self.rounds.push_back(failed);
        self.confirmed = if failed { confirmed } else { 0 };
        while self.rounds.len() > keep {
            self.rounds.pop_front();
        }
    }

    /// Confirmations that came in between two rounds: the newest round becomes a failed one
    /// standing on `confirmed` of them (a first round when there is none). An ok round is never
    /// added this way, so coming back still takes `rise_rounds` whole rounds.
    pub(super) fn amend(&mut self, confirmed: u32, keep: usize) {
        match self.rounds.back_mut() {
            Some(newest) => {
                *newest = true;
                self.confirmed = self.confirmed.max(confirmed);
            }
            None => self.push(true, confirmed, keep),
        }
    }

    /// Whether the newest `n` rounds all have `failed` as their outcome.
    pub(super) fn tail_all(&self, n: usize, failed: bool) -> bool {
        self.rounds.len() >= n && self.rounds.iter().rev().take(n).all(|r| *r == failed)
    }

    /// `Some(reason)` when unhealthy by the policy. The newest round's failed confirmations count
    /// as failed rounds in a row too: `fall_rounds` of them are a fall without waiting for as many
    /// intervals.
    pub(super) fn unhealthy(&self, p: &Policy) -> Option<Reason> {
        let confirmed = self.tail_all(1, true) && self.confirmed as usize >= p.fall_rounds;
        if confirmed || self.tail_all(p.fall_rounds, true) {
            return Some(Reason::QuorumFall);
        }
        let window: Vec<bool> = self
            .rounds
            .iter()
            .rev()
            .take(p.window_rounds)
            .copied()
            .collect();
        let failed = window.iter().filter(|f| **f).count();
        (window.len() >= p.window_rounds
            && failed as f64 >= p.window_fail_ratio * window.len() as f64)
            .then_some(Reason::Ratio)
    }
}

/// What the engine knows about one host.
#[derive(Debug, Clone)]
pub(super) struct HostState {
    pub(super) info: HostInfo,
    pub(super) enabled: bool,
    pub(super) reason: Option<Reason>,
    pub(super) regions: BTreeMap<String, RegionHistory>,
    pub(super) consecutive_disables: u32,
    pub(super) hold_until: Option<DateTime<Utc>>,
    pub(super) last_decay: DateTime<Utc>,
    /// Results and failures over the recent rounds, for choosing whom to keep when failing open.
    pub(super) recent: VecDeque<(u32, u32)>,
}

impl HostState {
    /// A host as a cold engine sees it: enabled, with no history.
    pub(super) fn new(info: HostInfo, now: DateTime<Utc>) -> HostState {
        HostState {
            info,
            enabled: true,
            reason: None,
            regions: BTreeMap::new(),
            consecutive_disables: 0,
            hold_until: None,
            last_decay: now,
            recent: VecDeque::new(),
        }
    }

    /// The histories of the regions that vote this round.
    pub(super) fn voting<'a>(
        &'a self,
        a: &'a Analysis,
    ) -> impl Iterator<Item = &'a RegionHistory> + 'a {
        self.regions
            .iter()
            .filter(|(r, _)| a.valid_regions.contains(*r))
            .map(|(_, hist)| hist)
    }

    /// `Some(reason)` when unhealthy in at least `quorum` of this round's voting regions:
    /// `quorum_fall` when any of them fell by failed rounds in a row, else `ratio`.
    pub(super) fn quorum_unhealthy(
        &self,
        a: &Analysis,
        p: &Policy,
        quorum: usize,
    ) -> Option<Reason> {
        let unhealthy: Vec<Reason> = self
            .voting(a)
            .filter_map(|hist| hist.unhealthy(p))
            .collect();
        (unhealthy.len() >= quorum).then(|| {
            if unhealthy.contains(&Reason::QuorumFall) {
                Reason::QuorumFall
            } else {
                Reason::Ratio
            }
        })
    }

    /// The share of ok results over the recent rounds (1 with none).
    pub(super) fn success_ratio(&self) -> f64 {
        let (n, failed) = self
            .recent
            .iter()
            .fold((0u32, 0u32), |a, r| (a.0 + r.0, a.1 + r.1));
        if n == 0 {
            1.0
        } else {
            f64::from(n - failed) / f64::from(n)
        }
    }

    /// Records this round's verdict in every region that voted for this host; `Amend` records
    /// only confirmed failures, into the newest round (see [`RegionHistory::amend`]), and says
    /// whether it did.
    fn record(
        &mut self,
        verdicts: Option<&BTreeMap<String, RoundVerdict>>,
        p: &Policy,
        how: Recording,
    ) -> bool {
        let (mut total, mut amended) = ((0u32, 0u32), false);
        for (region, v) in verdicts.into_iter().flatten() {
            let RoundVerdict::Voted {
                ok,
                failed,
                confirmed,
            } = v
            else {
                continue;
            };
            let is_failed = f64::from(*failed) >= p.round_fail_ratio * f64::from(ok + failed);
            let hist = self.regions.entry(region.clone());
            match how {
                Recording::Round => hist
                    .or_default()
                    .push(is_failed, *confirmed, p.rounds_kept()),
                Recording::Amend if is_failed && *confirmed > 0 => {
                    hist.or_default().amend(*confirmed, p.rounds_kept());
                    amended = true;
                }
                Recording::Amend => {}
            }
            total = (total.0 + ok + failed, total.1 + failed);
        }
        if how == Recording::Amend {
            return amended; // the round's results were counted when it was recorded
        }
        self.recent.push_back(total);
        while self.recent.len() > p.window_rounds {
            self.recent.pop_front();
        }
        false
    }
}

/// How an evaluation records its round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recording {
    /// A new round (the interval's evaluation).
    Round,
    /// Confirmations between two rounds: into the newest round, failures only.
    Amend,
}

impl Engine {
    /// Records this round in every host's history; returns the hosts (by index) whose newest
    /// round confirmations amended.
    pub(super) fn record_rounds(&mut self, a: &Analysis, how: Recording) -> Vec<usize> {
        let mut amended = Vec::new();
        for (i, h) in self.hosts.iter_mut().enumerate() {
            if h.record(a.verdicts.get(&h.info.host), &self.policy, how) {
                amended.push(i);
            }
        }
        amended
    }
}
