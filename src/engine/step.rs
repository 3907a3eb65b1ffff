//! One round's outcome per host: what an override or the rules make of it (a [`Step`]), then the
//! step committed to the host's state with its event. It adds no rule of its own.

use chrono::{DateTime, Utc};

use super::evidence::Analysis;
use super::guards::Disables;
use super::history::HostState;
use super::overrides::active_override;
use super::{Engine, Event, Override, OverrideKind, Reason};

/// What one host becomes this round, before it is committed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Step {
    pub(super) enabled: bool,
    pub(super) reason: Option<Reason>,
    /// The event's text, when the step flips the host.
    pub(super) detail: String,
}

impl Step {
    /// The host stays as it is, reason and all.
    fn keep(h: &HostState) -> Step {
        Step {
            enabled: h.enabled,
            reason: h.reason,
            detail: String::new(),
        }
    }

    /// What override `o` makes of host `h` this round; `disable` is what the rules would do.
    /// Observe-only keeps the host and records what the engine would have done.
    fn by_override(
        o: &Override,
        h: &HostState,
        disable: Option<Reason>,
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) -> Step {
        match o.kind {
            OverrideKind::ForceEnable => Step::forced(o, true),
            OverrideKind::ForceDisable => Step::forced(o, false),
            OverrideKind::ObserveOnly => {
                if let (Some(r), true) = (disable, h.enabled) {
                    let detail = "observe only: the engine would disable this host".to_string();
                    events.push(Event::about_host(now, &h.info.host, r, detail, a));
                }
                Step::keep(h)
            }
        }
    }

    /// What a forcing override makes of a host: `enabled`, with the override's words.
    fn forced(o: &Override, enabled: bool) -> Step {
        Step {
            enabled,
            reason: Some(Reason::Override),
            detail: o.detail(),
        }
    }

    /// What the rules make of a host no override decides: out when a rule disables it, back when
    /// it may rise, else as it is.
    fn by_rules(h: &HostState, disable: Option<Reason>, rise: bool) -> Step {
        match (disable, rise) {
            (Some(Reason::PrefixVendor), _) => Step {
                enabled: false,
                reason: Some(Reason::PrefixVendor),
                detail: "a merged prefix fails on this vendor's hosts and on its original domain: left for the vendor that serves it".into(),
            },
            (Some(r), _) => Step {
                enabled: false,
                reason: Some(r),
                detail: format!("unhealthy in a quorum of regions ({})", r.as_str()),
            },
            (None, true) => Step {
                enabled: true,
                reason: None,
                detail: "healthy again in a quorum of regions, hold elapsed".into(),
            },
            (None, false) => Step::released(h),
        }
    }

    /// As it is, but an expired or cleared override leaves the host to the engine: an
    /// override-disabled host comes back through the normal rise rule only (which skips hosts still
    /// marked as held down by an override, so the mark goes here).
    fn released(h: &HostState) -> Step {
        Step {
            reason: h.reason.filter(|r| *r != Reason::Override),
            ..Step::keep(h)
        }
    }

    /// The reason an event about this step's flip carries.
    fn event_reason(&self) -> Reason {
        match (self.enabled, self.reason) {
            (_, Some(r)) => r,
            (true, None) => Reason::Rise,
            (false, None) => Reason::QuorumFall,
        }
    }
}

impl Engine {
    /// Decides and commits every host's step: an active override first, else the rules.
    pub(super) fn apply(
        &mut self,
        disable: &Disables,
        rise: &[usize],
        overrides: &[Override],
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        for i in 0..self.hosts.len() {
            let h = &self.hosts[i];
            let disable = disable.get(&i).copied();
            let step = match active_override(overrides, &h.info.host, now) {
                Some(o) => Step::by_override(o, h, disable, a, now, events),
                None => Step::by_rules(h, disable, rise.contains(&i)),
            };
            self.commit(i, step, a, now, events);
        }
    }

    /// Commits the active overrides' steps only, leaving every other host as it is (reason and
    /// all, so an override that ended meanwhile is released at the next full evaluation): what a
    /// frozen engine still does.
    pub(super) fn apply_overrides(
        &mut self,
        overrides: &[Override],
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        for i in 0..self.hosts.len() {
            let h = &self.hosts[i];
            if let Some(o) = active_override(overrides, &h.info.host, now) {
                let step = Step::by_override(o, h, None, a, now, events);
                self.commit(i, step, a, now, events);
            }
        }
    }

    /// Writes a step into host `i`'s state; a flip is an event, and a disable by the rules counts
    /// toward the hold (one an operator forced does not: the backoff is for hosts the engine itself
    /// took out).
    fn commit(
        &mut self,
        i: usize,
        step: Step,
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        let h = &mut self.hosts[i];
        let old = h.enabled;
        if step.enabled != old {
            if !step.enabled && step.reason != Some(Reason::Override) {
                h.consecutive_disables += 1;
                h.hold_until = Some(self.policy.hold_end(now, h.consecutive_disables));
            }
            h.last_decay = now;
            let event = Event::about_host(now, &h.info.host, step.event_reason(), step.detail, a);
            events.push(event.flipping(old, step.enabled));
        }
        h.enabled = step.enabled;
        h.reason = if step.enabled && step.reason != Some(Reason::Override) {
            None
        } else {
            step.reason
        };
    }
}
