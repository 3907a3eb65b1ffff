//! The engine's policy: the `[engine]` settings, every threshold of the rules, with their named
//! defaults and units. It holds no state and decides nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Default [`Policy::round_fail_ratio`]: a share of a region's valid results, 60 %.
pub const DEFAULT_ROUND_FAIL_RATIO: f64 = 0.6;
/// Default [`Policy::fall_rounds`]: failed rounds in a row, 3 (HAProxy/Route 53 `fall 3`).
pub const DEFAULT_FALL_ROUNDS: usize = 3;
/// Default [`Policy::window_rounds`]: rounds, 6.
pub const DEFAULT_WINDOW_ROUNDS: usize = 6;
/// Default [`Policy::window_fail_ratio`]: a share of the window's rounds, 50 %.
pub const DEFAULT_WINDOW_FAIL_RATIO: f64 = 0.5;
/// Default [`Policy::min_quorum`]: regions, 2.
pub const DEFAULT_MIN_QUORUM: usize = 2;
/// Default [`Policy::rise_rounds`]: ok rounds in a row, 3.
pub const DEFAULT_RISE_ROUNDS: usize = 3;
/// Default [`Policy::hold_base_ms`]: 60 s.
pub const DEFAULT_HOLD_BASE: Duration = Duration::from_secs(60);
/// Default [`Policy::hold_cap_ms`]: 600 s (the article's reviveProbeInterval).
pub const DEFAULT_HOLD_CAP: Duration = Duration::from_secs(600);
/// Default [`Policy::hold_decay_ms`]: 600 s.
pub const DEFAULT_HOLD_DECAY: Duration = Duration::from_secs(600);

/// What the engine does about a merged path prefix that fails on the unified hosts (README:
/// "A broken path prefix"; the article, section 6). Default [`PathFault::LeastTraffic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathFault {
    /// The move that shifts the least traffic and makes the prefix load again: the merge rolled
    /// back when its original domain serves, else the failing vendor's hosts left when another
    /// vendor serves the prefix, else only raised.
    #[default]
    LeastTraffic,
    /// Only ever roll the merge back (rate 0), when the original domain serves; else raise.
    RollbackMerge,
    /// Only ever leave the failing vendor's hosts, when another vendor serves the prefix; else raise.
    DisableVendor,
    /// Raise it; flip nothing.
    Raise,
}

impl PathFault {
    /// The one spelling, as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            PathFault::LeastTraffic => "least_traffic",
            PathFault::RollbackMerge => "rollback_merge",
            PathFault::DisableVendor => "disable_vendor",
            PathFault::Raise => "raise",
        }
    }
}

/// The policy: every threshold of the engine's rules, as the `[engine]` settings spell them.
/// Durations are whole milliseconds in the settings (`_ms`) and [`Duration`]s through the accessors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// A region round fails when at least this share (0–1) of its valid results fail.
    /// Default [`DEFAULT_ROUND_FAIL_RATIO`], 0.6.
    pub round_fail_ratio: f64,
    /// A region is unhealthy after this many failed rounds in a row (`quorum_fall`).
    /// Default [`DEFAULT_FALL_ROUNDS`], 3 rounds.
    pub fall_rounds: usize,
    /// … or when at least `window_fail_ratio` of the last this-many rounds failed (`ratio`).
    /// Default [`DEFAULT_WINDOW_ROUNDS`], 6 rounds.
    pub window_rounds: usize,
    /// The share (0–1) of the last `window_rounds` that must have failed for `ratio`.
    /// Default [`DEFAULT_WINDOW_FAIL_RATIO`], 0.5.
    pub window_fail_ratio: f64,
    /// Fewest unhealthy regions that can disable a host (the quorum is max(this, half the valid
    /// regions)); also the fewest valid regions below which the engine freezes.
    /// Default [`DEFAULT_MIN_QUORUM`], 2 regions.
    pub min_quorum: usize,
    /// Ok rounds in a row, in a quorum of regions, before a host comes back (`rise`).
    /// Default [`DEFAULT_RISE_ROUNDS`], 3 rounds.
    pub rise_rounds: usize,
    /// Hold after a disable: this × consecutive disables, in milliseconds.
    /// Default [`DEFAULT_HOLD_BASE`], 60 000 ms.
    pub hold_base_ms: u64,
    /// … capped here (the article's reviveProbeInterval), in milliseconds.
    /// Default [`DEFAULT_HOLD_CAP`], 600 000 ms.
    pub hold_cap_ms: u64,
    /// While a host stays enabled, its consecutive-disable count drops by one per this long, in
    /// milliseconds. Default [`DEFAULT_HOLD_DECAY`], 600 000 ms.
    pub hold_decay_ms: u64,
    /// What a broken merged path prefix makes the engine do. Default [`PathFault::LeastTraffic`].
    pub path_fault: PathFault,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            round_fail_ratio: DEFAULT_ROUND_FAIL_RATIO,
            fall_rounds: DEFAULT_FALL_ROUNDS,
            window_rounds: DEFAULT_WINDOW_ROUNDS,
            window_fail_ratio: DEFAULT_WINDOW_FAIL_RATIO,
            min_quorum: DEFAULT_MIN_QUORUM,
            rise_rounds: DEFAULT_RISE_ROUNDS,
            hold_base_ms: millis(DEFAULT_HOLD_BASE),
            hold_cap_ms: millis(DEFAULT_HOLD_CAP),
            hold_decay_ms: millis(DEFAULT_HOLD_DECAY),
            path_fault: PathFault::default(),
        }
    }
}

impl Policy {
    /// Regions needed to disable (or to revive): max(min_quorum, half the valid regions, rounded up).
    pub fn quorum(&self, valid_regions: usize) -> usize {
        self.min_quorum.max(valid_regions.div_ceil(2))
    }

    /// [`Policy::hold_decay_ms`] as a duration.
    pub fn hold_decay(&self) -> Duration {
        Duration::from_millis(self.hold_decay_ms)
    }

    /// The hold after the `consecutive_disables`-th disable in a row: base × count, capped.
    pub(super) fn hold(&self, consecutive_disables: u32) -> Duration {
        let ms = self
            .hold_base_ms
            .saturating_mul(u64::from(consecutive_disables))
            .min(self.hold_cap_ms);
        Duration::from_millis(ms)
    }

    /// When a hold that starts at `now` for the `consecutive_disables`-th disable in a row ends.
    pub(super) fn hold_end(&self, now: DateTime<Utc>, consecutive_disables: u32) -> DateTime<Utc> {
        now + span(self.hold(consecutive_disables))
    }

    /// How many rounds of history a region must keep for every rule to see what it needs.
    pub(super) fn rounds_kept(&self) -> usize {
        self.window_rounds
            .max(self.fall_rounds)
            .max(self.rise_rounds)
    }
}

/// A settings value in whole milliseconds.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A duration as a span of the clock; one beyond chrono's range counts as none.
pub fn span(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_default()
}
