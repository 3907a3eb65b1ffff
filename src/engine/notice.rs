//! Events that flip no host: one for each diagnosed scope when it begins (a path broken at the
//! origin, a region's probe network down, a part of the CDN failing), raised once per change and
//! not again while the scope holds. None of them takes a host out: the rules decide that.

use chrono::{DateTime, Utc};

use super::diagnosis::{Diagnosis, FaultScope};
use super::evidence::Analysis;
use super::{Engine, Event, Reason};

impl Engine {
    /// Raises an event for each newly diagnosed scope, and remembers the round's scopes.
    pub(super) fn note_diagnoses(
        &mut self,
        diagnoses: &[Diagnosis],
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        for d in diagnoses
            .iter()
            .filter(|d| !self.diagnosed.contains(&d.scope))
        {
            events.push(event_of(d, a, now));
        }
        self.diagnosed = diagnoses.iter().map(|d| d.scope.clone()).collect();
    }
}

/// The event that says `d` began.
fn event_of(d: &Diagnosis, a: &Analysis, now: DateTime<Utc>) -> Event {
    match &d.scope {
        FaultScope::Origin { path } => {
            let detail = format!(
                "path {path} fails on every vendor while other paths work: an origin fault, no host is flipped"
            );
            Event::about_path(now, path, Reason::OriginFault, detail, a)
        }
        FaultScope::ProbeNetwork { .. } => {
            let detail = format!("{d}: our own probing fails there, its results do not vote");
            Event::about_scope(now, Reason::ProbeNetwork, detail, d)
        }
        _ => Event::about_scope(now, Reason::Degraded, d.to_string(), d),
    }
}
