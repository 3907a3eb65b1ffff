//! The engine's memory as data: what decides the next flip (each host's per-region rounds, its
//! hold, its consecutive disables, its reason), taken out of a running engine and put back into a
//! new one, so a restart or a config change does not forget a running hold. Data only: the caller
//! stores it (`store::engine_state`) and says whether it is still fresh.
//!
//! Each merged prefix's state (a rollback, the vendors it holds out, its hold) is kept too.
//!
//! Left out on purpose: the scopes diagnosed last round (they only keep an event from being
//! raised twice; forgetting them raises it once more), the confirmations the newest round stood on
//! (the next round's results carry them again) and whether the engine was frozen (the next
//! round says so again).

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::history::{HostState, RegionHistory};
use super::{Engine, MergeMemory, Reason};

/// What the engine remembers, by host domain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Each host's memory, by domain.
    pub hosts: BTreeMap<String, HostMemory>,
    /// Whether the engine had had a full round in enough regions.
    pub warmed_up: bool,
    /// Each merged path prefix's memory (a rollback, the vendors it holds out), by prefix; kept
    /// whether fresh or not, so a restart does not undo a rollback.
    #[serde(default)]
    pub merges: BTreeMap<String, MergeMemory>,
}

/// One host's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostMemory {
    /// Whether clients may use it.
    pub enabled: bool,
    /// Why it is out (or kept in).
    pub reason: Option<Reason>,
    /// Per region, its recent rounds, oldest first (true = failed).
    pub regions: BTreeMap<String, Vec<bool>>,
    /// Disables in a row (the hold grows with them).
    pub consecutive_disables: u32,
    /// When its hold ends.
    pub hold_until: Option<DateTime<Utc>>,
    /// When its count of consecutive disables last decayed.
    pub last_decay: DateTime<Utc>,
    /// Results and failures over its recent rounds.
    pub recent: Vec<(u32, u32)>,
}

impl HostMemory {
    fn of(h: &HostState) -> HostMemory {
        HostMemory {
            enabled: h.enabled,
            reason: h.reason,
            regions: h
                .regions
                .iter()
                .map(|(r, hist)| (r.clone(), hist.rounds().iter().copied().collect()))
                .collect(),
            consecutive_disables: h.consecutive_disables,
            hold_until: h.hold_until,
            last_decay: h.last_decay,
            recent: h.recent.iter().copied().collect(),
        }
    }

    /// Puts this memory into `h`; the rounds only when `fresh`.
    fn into_state(self, h: &mut HostState, fresh: bool) {
        h.enabled = self.enabled;
        h.reason = self.reason;
        h.consecutive_disables = self.consecutive_disables;
        h.hold_until = self.hold_until;
        h.last_decay = self.last_decay;
        if fresh {
            h.regions = self
                .regions
                .into_iter()
                .map(|(r, rounds)| (r, RegionHistory::from_rounds(rounds)))
                .collect();
            h.recent = VecDeque::from(self.recent);
        }
    }
}

impl Engine {
    /// The engine's memory, to keep.
    pub fn memory(&self) -> Memory {
        Memory {
            hosts: self
                .hosts
                .iter()
                .map(|h| (h.info.host.clone(), HostMemory::of(h)))
                .collect(),
            warmed_up: self.warmed_up,
            merges: self
                .merges
                .iter()
                .map(|s| (s.info.prefix.clone(), s.m.clone()))
                .collect(),
        }
    }

    /// Takes back a kept memory. Hosts no longer configured are dropped, new ones start cold.
    /// A memory that is not `fresh` (kept longer ago than a few intervals) keeps its holds,
    /// consecutive disables and reasons — absolute times and counts that stay true — but not its
    /// rounds: "three failed rounds in a row" means nothing across a long stop, so the rules start
    /// counting again. Call [`Engine::restore`] after it: the published document has the last word
    /// on each host's flag.
    pub fn recall(&mut self, memory: Memory, fresh: bool) {
        let mut hosts = memory.hosts;
        for h in &mut self.hosts {
            if let Some(m) = hosts.remove(&h.info.host) {
                m.into_state(h, fresh);
            }
        }
        self.warmed_up = fresh && memory.warmed_up;
        let mut merges = memory.merges;
        for s in &mut self.merges {
            if let Some(mut m) = merges.remove(&s.info.prefix) {
                if !fresh {
                    (m.failing, m.healthy) = (0, 0);
                }
                s.m = m;
            }
        }
    }
}
