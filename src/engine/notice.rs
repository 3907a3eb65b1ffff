//! Events that flip no host: a path broken at the origin, and a scope (an edge, a resolver) that
//! fails alone. Each is raised once, when it begins; neither takes a host out.

use chrono::{DateTime, Utc};

use super::evidence::Analysis;
use super::{Engine, Event, Reason};

impl Engine {
    /// Raises an event for each path newly failing on every vendor, and remembers the set.
    pub(super) fn note_origin_faults(
        &mut self,
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        for path in a.origin_faults.difference(&self.origin_faults) {
            let detail = format!(
                "path {path} fails on every vendor while other paths work: an origin fault, no host is flipped"
            );
            events.push(Event::about_path(now, path, Reason::OriginFault, detail, a));
        }
        self.origin_faults = a.origin_faults.clone();
    }

    /// Raises an event for each newly degraded scope of each host, and remembers the scopes.
    pub(super) fn note_degraded(
        &mut self,
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        for h in &mut self.hosts {
            let current = a.degraded.get(&h.info.host).cloned().unwrap_or_default();
            for scope in current.difference(&h.degraded) {
                let detail = format!(
                    "{scope} fails while the rest of the host is fine: degraded, not disabled"
                );
                events.push(Event::about_host(
                    now,
                    &h.info.host,
                    Reason::Degraded,
                    detail,
                    a,
                ));
            }
            h.degraded = current;
        }
    }
}
