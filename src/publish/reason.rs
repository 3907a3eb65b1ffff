//! Why a version was made: a closed set with one spelling, stored in `versions.reason` and shown
//! in the version history as it always was. Data only.

use std::fmt;

use crate::engine::Reason;

/// Why a version was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublishReason {
    /// The first version, before the engine has evidence (`cold_start`).
    ColdStart,
    /// A round without a state change whose content changed: the config did (`config`).
    Config,
    /// The same content signed again before its signature lapsed (`resign`).
    Resign,
    /// The engine's reason for the state change that made the version (`quorum_fall`, `rise` …).
    Decision(Reason),
}

impl PublishReason {
    /// The reason of a version made by an engine decision; the engine's cold start is the
    /// version's.
    pub fn of(reason: Reason) -> PublishReason {
        match reason {
            Reason::ColdStart => PublishReason::ColdStart,
            other => PublishReason::Decision(other),
        }
    }

    /// The one spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PublishReason::ColdStart => "cold_start",
            PublishReason::Config => "config",
            PublishReason::Resign => "resign",
            PublishReason::Decision(r) => r.as_str(),
        }
    }

    /// Reads [`PublishReason::as_str`] back.
    pub fn parse(s: &str) -> Option<PublishReason> {
        match s {
            "cold_start" => Some(PublishReason::ColdStart),
            "config" => Some(PublishReason::Config),
            "resign" => Some(PublishReason::Resign),
            other => serde_json::from_value(serde_json::Value::String(other.to_string()))
                .ok()
                .map(PublishReason::Decision),
        }
    }
}

impl fmt::Display for PublishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_publish_reason_reads_back_from_its_one_spelling() {
        let all = [
            PublishReason::ColdStart,
            PublishReason::Config,
            PublishReason::Resign,
            PublishReason::of(Reason::QuorumFall),
            PublishReason::of(Reason::Rise),
            PublishReason::of(Reason::Override),
        ];
        for r in all {
            assert_eq!(PublishReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(PublishReason::of(Reason::ColdStart).as_str(), "cold_start");
        assert_eq!(PublishReason::parse("nonsense"), None);
    }
}
