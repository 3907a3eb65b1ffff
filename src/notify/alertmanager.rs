//! Alertmanager's v2 API (`POST /api/v2/alerts`): each open incident is one firing alert, pushed
//! again every `[notify] alertmanager_resend_ms` (Alertmanager resolves an alert it has not heard
//! of for its `resolve_timeout`); a resolution is pushed with `endsAt`. An alert is identified by
//! its labels, so when an incident's labels change (its scope widened) the old set is ended.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Change, Notice};

/// Alertmanager's `alertname` for every incident.
pub const ALERT_NAME: &str = "CdnwatchIncident";

/// An alert's labels: what Alertmanager groups, routes and identifies it by.
pub type Labels = BTreeMap<&'static str, String>;

/// The labels of `n`'s incident. A label holding many values says how many instead (a label is
/// an identity, not a list: the annotations list them).
pub fn labels(n: &Notice) -> Labels {
    let many = |items: &[String], one: &str, some: &str| match items {
        [] => None,
        [only] => Some(only.clone()),
        _ => Some(format!(
            "{} {}",
            items.len(),
            if items.len() == 1 { one } else { some }
        )),
    };
    let mut l = Labels::new();
    l.insert("alertname", ALERT_NAME.into());
    l.insert("incident", n.incident.to_string());
    l.insert("scope", n.scope.kind().into());
    l.insert("severity", n.severity.as_str().into());
    if let Some(h) = many(&n.hosts, "host", "hosts") {
        l.insert("host", h);
    }
    if !n.vendors.is_empty() {
        l.insert("vendor", n.vendors.join(","));
    }
    if let Some(r) = many(&n.regions, "region", "regions") {
        l.insert("region", r);
    }
    if let Some(c) = n.classes.first() {
        l.insert("class", c.outcome.class.as_str().into());
    }
    l
}

/// One alert: firing from the incident's opening, ended at `ends_at` when given.
pub fn alert(n: &Notice, labels: &Labels, ends_at: Option<DateTime<Utc>>) -> Value {
    let classes: Vec<String> = n.classes.iter().map(ToString::to_string).collect();
    let reason = match &n.decision {
        Some(d) => d.to_string(),
        None => format!("incident {}", n.change.as_str()),
    };
    let mut a = json!({
        "labels": labels,
        "annotations": {
            "summary": format!("{} fails: {}", n.scope, classes.join(", ")),
            "description": format!(
                "hosts: {}; regions: {}{}",
                n.hosts.join(", "),
                n.regions.join(", "),
                if n.about_probing() { "; our own probe network, not the CDN" } else { "" },
            ),
            "reason": reason,
            "version": n.version.map(|v| v.to_string()).unwrap_or_default(),
            "dashboard": n.link,
        },
        "startsAt": n.opened_at.to_rfc3339(),
        "generatorURL": n.link,
    });
    if let Some(end) = ends_at {
        a["endsAt"] = Value::String(end.to_rfc3339());
    }
    a
}

/// What one Alertmanager channel has told, so it can say it again and end what changed.
#[derive(Debug, Default)]
pub struct Firing {
    /// Per incident: its newest notice and the labels last pushed.
    open: BTreeMap<i64, (Notice, Labels)>,
}

impl Firing {
    /// Applies the channel's due notices; returns the alerts to push now: every firing one, and
    /// the ended ones (a resolution, or a label set an incident left) with `endsAt = now`.
    pub fn apply(&mut self, notices: &[Notice], now: DateTime<Utc>) -> Vec<Value> {
        let mut ended = Vec::new();
        for n in notices {
            let l = labels(n);
            // A decision after the incident resolved (its hosts back after their hold) fires
            // nothing again.
            if n.change != Change::Resolved && n.resolved_at.is_some() {
                continue;
            }
            if n.change == Change::Resolved {
                if let Some((_, old)) = self.open.remove(&n.incident)
                    && old != l
                {
                    ended.push(alert(n, &old, Some(now)));
                }
                ended.push(alert(n, &l, Some(n.resolved_at.unwrap_or(now))));
                continue;
            }
            if let Some((_, old)) = self.open.get(&n.incident)
                && *old != l
            {
                ended.push(alert(n, old, Some(now)));
            }
            self.open.insert(n.incident, (n.clone(), l));
        }
        ended.extend(self.firing());
        ended
    }

    /// Every firing alert, as pushed again on the resend timer.
    pub fn firing(&self) -> Vec<Value> {
        self.open.values().map(|(n, l)| alert(n, l, None)).collect()
    }

    /// How many incidents fire.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none fires.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// The v2 API's alerts URL under `base` (the channel's URL: Alertmanager's address).
pub fn alerts_url(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}
