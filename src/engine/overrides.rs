//! Manual overrides: what an operator may force on a host and which override is in force (what it
//! makes of the host this round is `step.rs`'s). The rules never see a host an override decides.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What an operator forced on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    /// Disable the host whatever the rules say (fail-open still keeps one host in).
    ForceDisable,
    /// Enable the host whatever the rules say.
    ForceEnable,
    /// Keep the host as it is; record what the engine would do.
    ObserveOnly,
}

impl OverrideKind {
    /// Every kind, in the order forms list them.
    pub const ALL: [OverrideKind; 3] = [
        OverrideKind::ForceDisable,
        OverrideKind::ForceEnable,
        OverrideKind::ObserveOnly,
    ];

    /// The one spelling, as in JSON, SQL, forms and event text.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideKind::ForceDisable => "force_disable",
            OverrideKind::ForceEnable => "force_enable",
            OverrideKind::ObserveOnly => "observe_only",
        }
    }

    /// The kind spelled `s`, if any.
    pub fn parse(s: &str) -> Option<OverrideKind> {
        OverrideKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A manual override, in force until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The host's domain.
    pub host: String,
    /// What is forced.
    pub kind: OverrideKind,
    /// The operator's reason, as typed.
    pub reason: String,
    /// Who set it.
    pub actor: String,
    /// When it stops being in force.
    pub expires_at: DateTime<Utc>,
}

impl Override {
    /// `force_disable by alice: maintenance`: the kind in its one spelling, the operator's own
    /// words as typed.
    pub(super) fn detail(&self) -> String {
        format!("{} by {}: {}", self.kind.as_str(), self.actor, self.reason)
    }
}

/// The override in force on `host` at `now`: the newest unexpired one.
pub(super) fn active_override<'a>(
    overrides: &'a [Override],
    host: &str,
    now: DateTime<Utc>,
) -> Option<&'a Override> {
    overrides
        .iter()
        .rev()
        .find(|o| o.host == host && o.expires_at > now)
}
