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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;
    use crate::engine::FaultScope;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn notice(
        change: Change,
        scope: FaultScope,
        regions: &[&str],
        resolved: Option<i64>,
    ) -> Notice {
        Notice {
            incident: 4,
            seq: 0,
            change,
            at: t(0),
            scope,
            severity: Severity::Critical,
            classes: Vec::new(),
            hosts: vec!["cdn.shop.test".into()],
            vendors: vec!["alpha".into()],
            regions: regions.iter().map(|r| r.to_string()).collect(),
            decision: None,
            version: Some(7),
            opened_at: t(0),
            resolved_at: resolved.map(t),
            link: "/incidents/4".into(),
        }
    }

    fn rv() -> FaultScope {
        FaultScope::RegionVendor {
            region: "cn-east".into(),
            vendor: "alpha".into(),
        }
    }

    fn vendor() -> FaultScope {
        FaultScope::Vendor {
            vendor: "alpha".into(),
        }
    }

    #[test]
    fn a_widened_incident_ends_its_old_label_set_and_fires_the_new_one() {
        let mut f = Firing::default();
        let pushed = f.apply(&[notice(Change::Opened, rv(), &["cn-east"], None)], t(1));
        assert_eq!(pushed.len(), 1);
        assert!(pushed[0].get("endsAt").is_none(), "firing: {:#}", pushed[0]);
        let wide = notice(Change::Widened, vendor(), &["cn-east", "cn-north"], None);
        let pushed = f.apply(&[wide], t(2));
        assert_eq!(pushed.len(), 2, "{pushed:#?}");
        assert_eq!(pushed[0]["labels"]["scope"], "region_vendor");
        assert_eq!(pushed[0]["endsAt"], t(2).to_rfc3339());
        assert_eq!(pushed[1]["labels"]["scope"], "vendor");
        assert_eq!(pushed[1]["labels"]["region"], "2 regions");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn a_resolution_ends_the_alert_and_a_later_decision_fires_nothing() {
        let mut f = Firing::default();
        f.apply(
            &[notice(Change::Opened, vendor(), &["cn-east"], None)],
            t(1),
        );
        let pushed = f.apply(
            &[notice(Change::Resolved, vendor(), &["cn-east"], Some(9))],
            t(10),
        );
        assert_eq!(pushed.len(), 1);
        assert_eq!(pushed[0]["endsAt"], t(9).to_rfc3339());
        assert!(f.is_empty());
        let late = notice(Change::Decided, vendor(), &["cn-east"], Some(9));
        assert!(
            f.apply(&[late], t(20)).is_empty(),
            "hosts back after their hold"
        );
        assert!(f.firing().is_empty());
    }
}
