//! The decision engine: from one round of evidence, the engine's state, the policy and `now`, decides
//! which hosts clients may use. Pure logic: no I/O, no clock reads, no randomness.
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

mod evidence;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use evidence::{Observation, RegionRound, Round, RoundVerdict};

/// The policy: every threshold of the rules above. Defaults in [`Policy::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// A region round fails when at least this share of its valid results fail. Default 0.6.
    pub round_fail_ratio: f64,
    /// A region is unhealthy after this many failed rounds in a row (`quorum_fall`). Default 3.
    pub fall_rounds: usize,
    /// … or when at least `window_fail_ratio` of the last `window_rounds` failed (`ratio`). Defaults 6, 0.5.
    pub window_rounds: usize,
    pub window_fail_ratio: f64,
    /// Fewest unhealthy regions that can disable a host (the quorum is max(this, half the valid
    /// regions)); also the fewest valid regions below which the engine freezes. Default 2.
    pub min_quorum: usize,
    /// Ok rounds in a row, in a quorum of regions, before a host comes back (`rise`). Default 3.
    pub rise_rounds: usize,
    /// Hold after a disable: this × consecutive disables … Default 60 s.
    pub hold_base_ms: u64,
    /// … capped here (the article's reviveProbeInterval). Default 600 s.
    pub hold_cap_ms: u64,
    /// While a host stays enabled, its consecutive-disable count drops by one per this long. Default 600 s.
    pub hold_decay_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            round_fail_ratio: 0.6,
            fall_rounds: 3,
            window_rounds: 6,
            window_fail_ratio: 0.5,
            min_quorum: 2,
            rise_rounds: 3,
            hold_base_ms: 60_000,
            hold_cap_ms: 600_000,
            hold_decay_ms: 600_000,
        }
    }
}

impl Policy {
    /// Regions needed to disable (or to revive): max(min_quorum, half the valid regions, rounded up).
    pub fn quorum(&self, valid_regions: usize) -> usize {
        self.min_quorum.max(valid_regions.div_ceil(2))
    }

    fn hold(&self, consecutive_disables: u32) -> Duration {
        let ms = self
            .hold_base_ms
            .saturating_mul(u64::from(consecutive_disables))
            .min(self.hold_cap_ms);
        Duration::from_millis(ms)
    }
}

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
    /// One edge or one resolver fails while the rest of the host is fine.
    Degraded,
    /// Not enough evidence yet since start.
    ColdStart,
}

impl Reason {
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
            Reason::ColdStart => "cold_start",
        }
    }
}

/// What an operator forced on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    ForceDisable,
    ForceEnable,
    ObserveOnly,
}

impl OverrideKind {
    pub const ALL: [OverrideKind; 3] = [
        OverrideKind::ForceDisable,
        OverrideKind::ForceEnable,
        OverrideKind::ObserveOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OverrideKind::ForceDisable => "force_disable",
            OverrideKind::ForceEnable => "force_enable",
            OverrideKind::ObserveOnly => "observe_only",
        }
    }

    pub fn parse(s: &str) -> Option<OverrideKind> {
        OverrideKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A manual override, in force until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub host: String,
    pub kind: OverrideKind,
    pub reason: String,
    pub actor: String,
    pub expires_at: DateTime<Utc>,
}

/// A host the engine decides about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub host: String,
    pub vendor: String,
}

/// Evidence counts of one region in an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionCounts {
    pub ok: u32,
    pub failed: u32,
    /// The region's control targets failed: its round did not vote.
    pub invalid: bool,
}

/// One decision or refusal, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub host: Option<String>,
    /// Enabled before and after (`None` when the event changed no host).
    pub old_enabled: Option<bool>,
    pub new_enabled: Option<bool>,
    pub reason: Reason,
    pub detail: String,
    /// Per region, for the host (or for all hosts when `host` is empty).
    pub evidence: BTreeMap<String, RegionCounts>,
    /// A few failed results, as `region/resolver edge path class`.
    pub samples: Vec<String>,
}

/// The engine's verdict on one host after an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostDecision {
    pub enabled: bool,
    /// Why it is disabled (or was kept enabled by a guard or an override).
    pub reason: Option<Reason>,
}

/// What one evaluation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub hosts: BTreeMap<String, HostDecision>,
    /// True when some host's enabled flag changed: a new version must be published.
    pub changed: bool,
    /// False while frozen or before the first full round in enough regions: publish nothing.
    pub publishable: bool,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Default)]
struct RegionHistory {
    /// Newest last; true = failed round. Invalid rounds are not recorded.
    rounds: VecDeque<bool>,
}

impl RegionHistory {
    fn push(&mut self, failed: bool, keep: usize) {
        self.rounds.push_back(failed);
        while self.rounds.len() > keep {
            self.rounds.pop_front();
        }
    }

    fn tail_all(&self, n: usize, failed: bool) -> bool {
        self.rounds.len() >= n && self.rounds.iter().rev().take(n).all(|r| *r == failed)
    }

    /// `Some(reason)` when unhealthy by the policy.
    fn unhealthy(&self, p: &Policy) -> Option<Reason> {
        if self.tail_all(p.fall_rounds, true) {
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

#[derive(Debug, Clone)]
struct HostState {
    info: HostInfo,
    enabled: bool,
    reason: Option<Reason>,
    regions: BTreeMap<String, RegionHistory>,
    consecutive_disables: u32,
    hold_until: Option<DateTime<Utc>>,
    last_decay: DateTime<Utc>,
    /// Results and failures over the recent rounds, for choosing whom to keep when failing open.
    recent: VecDeque<(u32, u32)>,
    degraded: BTreeSet<String>,
}

impl HostState {
    fn success_ratio(&self) -> f64 {
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
}

/// The engine: its policy and its memory of past rounds.
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Policy,
    hosts: Vec<HostState>,
    warmed_up: bool,
    frozen: bool,
    origin_faults: BTreeSet<String>,
}

impl Engine {
    /// A cold engine: every host enabled, nothing publishable until a full round in enough regions.
    pub fn new(policy: Policy, hosts: Vec<HostInfo>, now: DateTime<Utc>) -> Engine {
        let hosts = hosts
            .into_iter()
            .map(|info| HostState {
                info,
                enabled: true,
                reason: None,
                regions: BTreeMap::new(),
                consecutive_disables: 0,
                hold_until: None,
                last_decay: now,
                recent: VecDeque::new(),
                degraded: BTreeSet::new(),
            })
            .collect();
        Engine {
            policy,
            hosts,
            warmed_up: false,
            frozen: false,
            origin_faults: BTreeSet::new(),
        }
    }

    /// Starts from a known state (the last published document) instead of all-enabled.
    pub fn restore(&mut self, enabled: &BTreeMap<String, bool>) {
        for h in &mut self.hosts {
            if let Some(e) = enabled.get(&h.info.host) {
                h.enabled = *e;
            }
        }
    }

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
        let mut events = Vec::new();
        let analysis = evidence::analyse(round, &self.hosts_info(), &self.policy);
        self.note_origin_faults(&analysis, now, &mut events);
        let valid_regions = analysis.valid_regions.len();
        let before: Vec<bool> = self.hosts.iter().map(|h| h.enabled).collect();

        if valid_regions < self.policy.min_quorum {
            if !self.frozen {
                events.push(global_event(now, Reason::Freeze, format!(
                    "only {valid_regions} region(s) have valid evidence (need {}): keeping the last state",
                    self.policy.min_quorum
                ), &analysis));
            }
            self.frozen = true;
            return self.result(before, false, events);
        }
        if self.frozen {
            self.frozen = false;
        }
        self.record_rounds(&analysis);
        self.note_degraded(&analysis, now, &mut events);
        if !self.warmed_up {
            self.warmed_up = true; // this round is the first full one in enough regions
        }
        let quorum = self.policy.quorum(valid_regions);
        let mut disable: Vec<(usize, Reason)> = Vec::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let unhealthy: Vec<Reason> = h
                .regions
                .iter()
                .filter(|(r, _)| analysis.valid_regions.contains(*r))
                .filter_map(|(_, hist)| hist.unhealthy(&self.policy))
                .collect();
            if h.enabled && unhealthy.len() >= quorum {
                let reason = if unhealthy.contains(&Reason::QuorumFall) {
                    Reason::QuorumFall
                } else {
                    Reason::Ratio
                };
                disable.push((i, reason));
            }
        }
        self.widen_vendor_wide(&mut disable, &analysis, quorum);
        self.extend_holds(&analysis, now);
        let rise = self.rise_candidates(&analysis, quorum, now);
        self.apply(&disable, &rise, overrides, &analysis, now, &mut events);
        self.guard_fail_open(overrides, &analysis, now, &mut events);
        self.decay(now);
        self.result(before, true, events)
    }

    fn hosts_info(&self) -> Vec<HostInfo> {
        self.hosts.iter().map(|h| h.info.clone()).collect()
    }

    fn result(&self, before: Vec<bool>, publishable: bool, events: Vec<Event>) -> Evaluation {
        let changed = self.hosts.iter().zip(before).any(|(h, b)| h.enabled != b);
        Evaluation {
            hosts: self
                .hosts
                .iter()
                .map(|h| {
                    (
                        h.info.host.clone(),
                        HostDecision {
                            enabled: h.enabled,
                            reason: h.reason,
                        },
                    )
                })
                .collect(),
            changed,
            publishable: publishable && self.warmed_up,
            events,
        }
    }

    fn record_rounds(&mut self, a: &evidence::Analysis) {
        let keep = self
            .policy
            .window_rounds
            .max(self.policy.fall_rounds)
            .max(self.policy.rise_rounds);
        for h in &mut self.hosts {
            let mut total = (0u32, 0u32);
            for (region, v) in a.verdicts.get(&h.info.host).into_iter().flatten() {
                if let RoundVerdict::Voted { ok, failed } = v {
                    let is_failed =
                        f64::from(*failed) >= self.policy.round_fail_ratio * f64::from(ok + failed);
                    h.regions
                        .entry(region.clone())
                        .or_default()
                        .push(is_failed, keep);
                    total = (total.0 + ok + failed, total.1 + failed);
                }
            }
            h.recent.push_back(total);
            while h.recent.len() > self.policy.window_rounds {
                h.recent.pop_front();
            }
        }
    }

    /// When a vendor loses one host this round and every other host of that vendor is failing too
    /// (unhealthy somewhere or failing this round in a quorum), all go in the same version.
    fn widen_vendor_wide(
        &self,
        disable: &mut Vec<(usize, Reason)>,
        a: &evidence::Analysis,
        quorum: usize,
    ) {
        let vendors: BTreeSet<&str> = disable
            .iter()
            .map(|(i, _)| self.hosts[*i].info.vendor.as_str())
            .collect();
        for vendor in vendors {
            let members: Vec<usize> = (0..self.hosts.len())
                .filter(|i| self.hosts[*i].info.vendor == vendor)
                .collect();
            if members.len() < 2 {
                continue;
            }
            let failing = |i: usize| {
                let h = &self.hosts[i];
                let failing_regions = h
                    .regions
                    .iter()
                    .filter(|(r, _)| a.valid_regions.contains(*r))
                    .filter(|(_, hist)| {
                        hist.unhealthy(&self.policy).is_some() || hist.tail_all(1, true)
                    })
                    .count();
                !h.enabled || disable.iter().any(|(j, _)| *j == i) || failing_regions >= quorum
            };
            if members.iter().all(|i| failing(*i)) {
                for i in members {
                    if !self.hosts[i].enabled {
                        continue;
                    }
                    match disable.iter_mut().find(|(j, _)| *j == i) {
                        Some(entry) => entry.1 = Reason::VendorWide,
                        None => disable.push((i, Reason::VendorWide)),
                    }
                }
            }
        }
    }

    /// A disabled host's hold runs from its last failed round, not from the disable: a host that
    /// keeps failing now and then (a flapping edge pool) must stay healthy for the whole hold before
    /// it comes back, so each flap does not cost two versions.
    fn extend_holds(&mut self, a: &evidence::Analysis, now: DateTime<Utc>) {
        for h in self
            .hosts
            .iter_mut()
            .filter(|h| !h.enabled && h.consecutive_disables > 0)
        {
            let failed_now = h
                .regions
                .iter()
                .filter(|(r, _)| a.valid_regions.contains(*r))
                .any(|(_, hist)| hist.tail_all(1, true));
            if failed_now {
                let hold = chrono::Duration::from_std(self.policy.hold(h.consecutive_disables))
                    .unwrap_or_default();
                h.hold_until = Some(h.hold_until.map_or(now + hold, |t| t.max(now + hold)));
            }
        }
    }

    fn rise_candidates(
        &self,
        a: &evidence::Analysis,
        quorum: usize,
        now: DateTime<Utc>,
    ) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|i| {
                let h = &self.hosts[*i];
                let healthy = h
                    .regions
                    .iter()
                    .filter(|(r, _)| a.valid_regions.contains(*r))
                    .filter(|(_, hist)| hist.tail_all(self.policy.rise_rounds, false))
                    .count();
                !h.enabled
                    && h.reason != Some(Reason::Override)
                    && healthy >= quorum
                    && h.hold_until.is_none_or(|t| now >= t)
            })
            .collect()
    }

    fn apply(
        &mut self,
        disable: &[(usize, Reason)],
        rise: &[usize],
        overrides: &[Override],
        a: &evidence::Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        for i in 0..self.hosts.len() {
            let host = self.hosts[i].info.host.clone();
            let ov = active_override(overrides, &host, now);
            let old = self.hosts[i].enabled;
            let (new, reason, detail) = match (
                ov.map(|o| o.kind),
                disable.iter().find(|(j, _)| *j == i),
                rise.contains(&i),
            ) {
                (Some(OverrideKind::ForceEnable), _, _) => {
                    (true, Some(Reason::Override), override_detail(ov))
                }
                (Some(OverrideKind::ForceDisable), _, _) => {
                    (false, Some(Reason::Override), override_detail(ov))
                }
                (Some(OverrideKind::ObserveOnly), Some((_, r)), _) => {
                    if old {
                        events.push(host_event(
                            now,
                            &host,
                            None,
                            None,
                            *r,
                            "observe only: the engine would disable this host".into(),
                            a,
                        ));
                    }
                    (old, self.hosts[i].reason, String::new())
                }
                (Some(OverrideKind::ObserveOnly), None, _) => {
                    (old, self.hosts[i].reason, String::new())
                }
                (None, Some((_, r)), _) => (
                    false,
                    Some(*r),
                    format!("unhealthy in a quorum of regions ({})", r.as_str()),
                ),
                (None, None, true) => (
                    true,
                    None,
                    "healthy again in a quorum of regions, hold elapsed".into(),
                ),
                (None, None, false) => {
                    // An expired or cleared override leaves the host to the engine: an override-disabled
                    // host comes back through the normal rise rule only (which skips hosts still
                    // marked as held down by an override, so the mark goes here).
                    let reason = if self.hosts[i].reason == Some(Reason::Override) {
                        None
                    } else {
                        self.hosts[i].reason
                    };
                    (old, reason, String::new())
                }
            };
            let h = &mut self.hosts[i];
            if new != old {
                let ev_reason = match (new, reason) {
                    (true, None) => Reason::Rise,
                    (_, Some(r)) => r,
                    (false, None) => Reason::QuorumFall,
                };
                if !new {
                    h.consecutive_disables += 1;
                    h.hold_until = Some(
                        now + chrono::Duration::from_std(self.policy.hold(h.consecutive_disables))
                            .unwrap_or_default(),
                    );
                }
                h.last_decay = now;
                events.push(host_event(
                    now,
                    &host,
                    Some(old),
                    Some(new),
                    ev_reason,
                    detail,
                    a,
                ));
            }
            h.enabled = new;
            h.reason = if new && reason != Some(Reason::Override) {
                None
            } else {
                reason
            };
        }
    }

    fn guard_fail_open(
        &mut self,
        overrides: &[Override],
        a: &evidence::Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        if self.hosts.is_empty() || self.hosts.iter().any(|h| h.enabled) {
            return;
        }
        // Prefer a host no operator forced down; among those, the best recent success.
        let forced = |h: &HostState| {
            active_override(overrides, &h.info.host, now)
                .is_some_and(|o| o.kind == OverrideKind::ForceDisable)
        };
        let keep = (0..self.hosts.len())
            .max_by(|x, y| {
                let (hx, hy) = (&self.hosts[*x], &self.hosts[*y]);
                (!forced(hx), hx.success_ratio(), std::cmp::Reverse(*x))
                    .partial_cmp(&(!forced(hy), hy.success_ratio(), std::cmp::Reverse(*y)))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .expect("at least one host");
        let h = &mut self.hosts[keep];
        h.enabled = true;
        h.reason = Some(Reason::FailOpen);
        let detail = format!(
            "every host would be disabled; keeping {} (recent success {:.0} %) so clients have a host",
            h.info.host,
            100.0 * h.success_ratio()
        );
        let host = h.info.host.clone();
        events.push(host_event(
            now,
            &host,
            Some(false),
            Some(true),
            Reason::FailOpen,
            detail,
            a,
        ));
    }

    fn decay(&mut self, now: DateTime<Utc>) {
        let step = chrono::Duration::milliseconds(self.policy.hold_decay_ms as i64);
        for h in &mut self.hosts {
            if h.enabled && h.consecutive_disables > 0 && now - h.last_decay >= step {
                h.consecutive_disables -= 1;
                h.last_decay = now;
            }
        }
    }

    fn note_origin_faults(
        &mut self,
        a: &evidence::Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        for path in a.origin_faults.difference(&self.origin_faults) {
            events.push(Event {
                at: now,
                host: None,
                old_enabled: None,
                new_enabled: None,
                reason: Reason::OriginFault,
                detail: format!("path {path} fails on every vendor while other paths work: an origin fault, no host is flipped"),
                evidence: a.path_counts.get(path).cloned().unwrap_or_default(),
                samples: a.samples.iter().filter(|s| s.contains(path.as_str())).take(5).cloned().collect(),
            });
        }
        self.origin_faults = a.origin_faults.clone();
    }

    fn note_degraded(
        &mut self,
        a: &evidence::Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        for h in &mut self.hosts {
            let current = a.degraded.get(&h.info.host).cloned().unwrap_or_default();
            for scope in current.difference(&h.degraded) {
                let detail = format!(
                    "{scope} fails while the rest of the host is fine: degraded, not disabled"
                );
                events.push(host_event(
                    now,
                    &h.info.host,
                    None,
                    None,
                    Reason::Degraded,
                    detail,
                    a,
                ));
            }
            h.degraded = current;
        }
    }
}

fn active_override<'a>(
    overrides: &'a [Override],
    host: &str,
    now: DateTime<Utc>,
) -> Option<&'a Override> {
    // The newest of them wins.
    overrides
        .iter()
        .rev()
        .find(|o| o.host == host && o.expires_at > now)
}

fn override_detail(o: Option<&Override>) -> String {
    o.map(|o| format!("{:?} by {}: {}", o.kind, o.actor, o.reason).to_lowercase())
        .unwrap_or_default()
}

fn host_event(
    now: DateTime<Utc>,
    host: &str,
    old: Option<bool>,
    new: Option<bool>,
    reason: Reason,
    detail: String,
    a: &evidence::Analysis,
) -> Event {
    Event {
        at: now,
        host: Some(host.to_string()),
        old_enabled: old,
        new_enabled: new,
        reason,
        detail,
        evidence: a.host_counts.get(host).cloned().unwrap_or_default(),
        samples: a
            .samples
            .iter()
            .filter(|s| s.starts_with(&format!("{host} ")))
            .take(5)
            .cloned()
            .collect(),
    }
}

fn global_event(
    now: DateTime<Utc>,
    reason: Reason,
    detail: String,
    a: &evidence::Analysis,
) -> Event {
    let mut evidence = BTreeMap::new();
    for counts in a.host_counts.values() {
        for (region, c) in counts {
            let e: &mut RegionCounts = evidence.entry(region.clone()).or_default();
            e.ok += c.ok;
            e.failed += c.failed;
            e.invalid |= c.invalid;
        }
    }
    Event {
        at: now,
        host: None,
        old_enabled: None,
        new_enabled: None,
        reason,
        detail,
        evidence,
        samples: a.samples.iter().take(5).cloned().collect(),
    }
}

#[cfg(test)]
mod tests;
