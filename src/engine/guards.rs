//! The rules that take hosts out, and the guards around them: the quorum of unhealthy regions, the
//! freeze when too few regions can vote, the vendor-wide widening, and fail-open when every host
//! would be out. They read the history and the overrides; they never touch evidence themselves.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::evidence::Analysis;
use super::history::HostState;
use super::overrides::active_override;
use super::{Engine, Event, Override, OverrideKind, Reason};

/// The hosts (by index) the rules would disable this round, and why.
pub(super) type Disables = BTreeMap<usize, Reason>;

impl Engine {
    /// The freeze guard: when fewer than `min_quorum` regions have valid evidence nothing may
    /// change (Traffic Monitor keeps the last good state). Records the freeze once, when it begins;
    /// true while frozen.
    pub(super) fn freeze(
        &mut self,
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) -> bool {
        let valid_regions = a.valid_regions.len();
        if valid_regions >= self.policy.min_quorum {
            self.frozen = false;
            return false;
        }
        if !self.frozen {
            let detail = format!(
                "only {valid_regions} region(s) have valid evidence (need {}): keeping the last state",
                self.policy.min_quorum
            );
            events.push(Event::about_all(now, Reason::Freeze, detail, a));
        }
        self.frozen = true;
        true
    }

    /// Enabled hosts unhealthy in a quorum of voting regions: `quorum_fall` when any of those
    /// regions fell by failed rounds in a row, else `ratio`.
    pub(super) fn quorum_disables(&self, a: &Analysis, quorum: usize) -> Disables {
        let mut disable = Disables::new();
        for (i, h) in self.hosts.iter().enumerate().filter(|(_, h)| h.enabled) {
            if let Some(reason) = h.quorum_unhealthy(a, &self.policy, quorum) {
                disable.insert(i, reason);
            }
        }
        disable
    }

    /// When a vendor loses one host this round and every other host of that vendor is failing too
    /// (unhealthy somewhere or failing this round in a quorum), all go in the same version.
    pub(super) fn widen_vendor_wide(&self, disable: &mut Disables, a: &Analysis, quorum: usize) {
        let vendors: BTreeSet<&str> = disable
            .keys()
            .map(|i| self.hosts[*i].info.vendor.as_str())
            .collect();
        for vendor in vendors {
            let members: Vec<usize> = (0..self.hosts.len())
                .filter(|i| self.hosts[*i].info.vendor == vendor)
                .collect();
            if members.len() < 2
                || !members
                    .iter()
                    .all(|i| self.vendor_member_failing(*i, disable, a, quorum))
            {
                continue;
            }
            for i in members.into_iter().filter(|i| self.hosts[*i].enabled) {
                disable.insert(i, Reason::VendorWide);
            }
        }
    }

    /// Whether host `i` counts as failing for the vendor-wide rule: already out, about to go, or
    /// unhealthy or failing this round in a quorum of voting regions.
    fn vendor_member_failing(
        &self,
        i: usize,
        disable: &Disables,
        a: &Analysis,
        quorum: usize,
    ) -> bool {
        let h = &self.hosts[i];
        let failing_regions = h
            .voting(a)
            .filter(|hist| hist.unhealthy(&self.policy).is_some() || hist.tail_all(1, true))
            .count();
        !h.enabled || disable.contains_key(&i) || failing_regions >= quorum
    }

    /// The fail-open guard: when every host is out, the best one is kept so clients have a host —
    /// one no operator forced down if there is such, and among those the best recent success.
    pub(super) fn guard_fail_open(
        &mut self,
        overrides: &[Override],
        a: &Analysis,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) {
        if self.hosts.iter().any(|h| h.enabled) {
            return;
        }
        let forced = |h: &HostState| {
            active_override(overrides, &h.info.host, now)
                .is_some_and(|o| o.kind == OverrideKind::ForceDisable)
        };
        let rank = |i: usize| {
            let h = &self.hosts[i];
            (!forced(h), h.success_ratio(), Reverse(i))
        };
        let best = (0..self.hosts.len())
            .max_by(|x, y| rank(*x).partial_cmp(&rank(*y)).unwrap_or(Ordering::Equal));
        let Some(keep) = best else {
            return; // no hosts at all
        };
        let h = &mut self.hosts[keep];
        h.enabled = true;
        h.reason = Some(Reason::FailOpen);
        let detail = format!(
            "every host would be disabled; keeping {} (recent success {:.0} %) so clients have a host",
            h.info.host,
            100.0 * h.success_ratio()
        );
        let event = Event::about_host(now, &h.info.host, Reason::FailOpen, detail, a);
        events.push(event.flipping(false, true));
    }
}
