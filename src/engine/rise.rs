//! Coming back: the hold after a disable (growing with each disable in a row, as Envoy's ejection
//! backoff, and running from the last failed round), its decay while a host stays in, and the rise
//! rule (ok rounds in a quorum of regions, hold elapsed), and the release of a host whose override
//! ended. It reads the history; it flips only a released host.

use chrono::{DateTime, Utc};

use super::evidence::Analysis;
use super::overrides::active_override;
use super::policy::span;
use super::{Engine, Event, Override, Reason};

impl Engine {
    /// A disabled host's hold runs from its last failed round, not from the disable: a host that
    /// keeps failing now and then (a flapping edge pool) must stay healthy for the whole hold before
    /// it comes back, so each flap does not cost two versions. Between two rounds only the hosts
    /// whose newest round confirmations just amended (`only`) fail anew.
    pub(super) fn extend_holds(
        &mut self,
        a: &Analysis,
        now: DateTime<Utc>,
        only: Option<&[usize]>,
    ) {
        for (_, h) in self.hosts.iter_mut().enumerate().filter(|(i, h)| {
            !h.enabled && h.consecutive_disables > 0 && only.is_none_or(|o| o.contains(i))
        }) {
            if h.voting(a).any(|hist| hist.tail_all(1, true)) {
                let until = self.policy.hold_end(now, h.consecutive_disables);
                h.hold_until = Some(h.hold_until.map_or(until, |t| t.max(until)));
            }
        }
    }

    /// A host an override held out, whose override ended (expired or cleared): the operator's word
    /// was all that kept it out, so it comes back at once when its evidence is healthy — not after
    /// `rise_rounds` and a hold, the backoff for hosts the engine itself took out. When it is
    /// unhealthy in a quorum the engine takes it over as its own disable: the hold starts now.
    pub(super) fn release_cleared(
        &mut self,
        overrides: &[Override],
        a: &Analysis,
        quorum: usize,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        let policy = &self.policy;
        for h in self.hosts.iter_mut().filter(|h| {
            !h.enabled
                && h.reason == Some(Reason::Override)
                && active_override(overrides, &h.info.host, now).is_none()
        }) {
            if let Some(reason) = h.quorum_unhealthy(a, policy, quorum) {
                h.reason = Some(reason);
                h.consecutive_disables += 1;
                h.hold_until = Some(policy.hold_end(now, h.consecutive_disables));
                continue;
            }
            h.enabled = true;
            h.reason = None;
            h.last_decay = now;
            let detail = "its override ended and it is healthy: back at once".to_string();
            let event = Event::about_host(now, &h.info.host, Reason::Rise, detail, a);
            events.push(event.flipping(false, true));
        }
    }

    /// Hosts (by index) that may come back: out by the engine's rules (not held by an override,
    /// nor by a merged prefix still failing on their vendor),
    /// healthy for `rise_rounds` in a quorum of voting regions, and past their hold.
    pub(super) fn rise_candidates(
        &self,
        a: &Analysis,
        quorum: usize,
        now: DateTime<Utc>,
    ) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|i| {
                let h = &self.hosts[*i];
                let healthy = h
                    .voting(a)
                    .filter(|hist| hist.tail_all(self.policy.rise_rounds, false))
                    .count();
                !h.enabled
                    && h.reason != Some(Reason::Override)
                    && !(h.reason == Some(Reason::PrefixVendor)
                        && self.prefix_holds(&h.info.vendor))
                    && healthy >= quorum
                    && h.hold_until.is_none_or(|t| now >= t)
            })
            .collect()
    }

    /// While a host stays enabled, its count of consecutive disables drops by one per
    /// `hold_decay_ms`.
    pub(super) fn decay(&mut self, now: DateTime<Utc>) {
        let step = span(self.policy.hold_decay());
        for h in &mut self.hosts {
            if h.enabled && h.consecutive_disables > 0 && now - h.last_decay >= step {
                h.consecutive_disables -= 1;
                h.last_decay = now;
            }
        }
    }
}
