//! Manual overrides: what an operator may force on a host, which override is in force, and what it
//! makes of the host this round. The rules never see a host an override decides.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::evidence::Analysis;
use super::history::HostState;
use super::step::Step;
use super::{Event, Reason};

/// What an operator forced on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    ForceDisable,
    ForceEnable,
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
    pub host: String,
    pub kind: OverrideKind,
    pub reason: String,
    pub actor: String,
    pub expires_at: DateTime<Utc>,
}

impl Override {
    /// What this override makes of host `h` this round; `disable` is what the rules would do.
    /// Observe-only keeps the host and records what the engine would have done.
    pub(super) fn step(
        &self,
        h: &HostState,
        disable: Option<Reason>,
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) -> Step {
        match self.kind {
            OverrideKind::ForceEnable => self.forced(true),
            OverrideKind::ForceDisable => self.forced(false),
            OverrideKind::ObserveOnly => {
                if let (Some(r), true) = (disable, h.enabled) {
                    let detail = "observe only: the engine would disable this host".to_string();
                    events.push(Event::about_host(now, &h.info.host, r, detail, a));
                }
                Step::keep(h)
            }
        }
    }

    fn forced(&self, enabled: bool) -> Step {
        Step {
            enabled,
            reason: Some(Reason::Override),
            detail: self.detail(),
        }
    }

    /// `force_disable by alice: maintenance`: the kind in its one spelling, the operator's own
    /// words as typed.
    fn detail(&self) -> String {
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
