//! An Alertmanager-style webhook: the payload Alertmanager's own webhook receiver sends (version
//! 4: `groupKey`, `status`, `receiver`, `groupLabels`, `commonLabels`, `commonAnnotations`,
//! `externalURL`, `truncatedAlerts`, one alert per notice), so whatever consumes Alertmanager's
//! webhooks consumes ours. An alert's labels: `alertname` (`CdnwatchIncident`), `incident`,
//! `scope` (its kind), `severity`, `host`, `vendor`, `region`, `class` (lists joined by commas,
//! empty ones left out); its annotations the texts, in the configured language.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::text::{self, Line};
use super::{Answer, Batch, excerpt};
use crate::config::Language;
use crate::notify::{Change, Notice};

use crate::notify::alertmanager::ALERT_NAME as ALERTNAME;
/// Alertmanager's "not ended" time.
const NOT_ENDED: &str = "0001-01-01T00:00:00Z";

type Labels = BTreeMap<&'static str, String>;

/// The body.
pub(super) fn body(batch: &Batch<'_>, language: Language) -> Value {
    let alerts: Vec<(Labels, Labels, Value)> =
        batch.notices.iter().map(|n| alert(n, language)).collect();
    let firing = batch.notices.iter().any(|n| n.change != Change::Resolved);
    let external = batch.notices.first().map(external_url).unwrap_or_default();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{ALERTNAME}\"}}"),
        "truncatedAlerts": batch.folded,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": "cdnwatch",
        "groupLabels": { "alertname": ALERTNAME },
        "commonLabels": common(alerts.iter().map(|a| &a.0)),
        "commonAnnotations": common(alerts.iter().map(|a| &a.1)),
        "externalURL": external,
        "alerts": alerts.into_iter().map(|a| a.2).collect::<Vec<_>>(),
    })
}

/// One notice's labels, annotations and alert.
fn alert(n: &Notice, language: Language) -> (Labels, Labels, Value) {
    let labels = labels(n);
    let annotations = annotations(n, language);
    let resolved = n.change == Change::Resolved;
    let ends = match n.resolved_at {
        Some(at) if resolved => at.to_rfc3339(),
        _ => NOT_ENDED.into(),
    };
    let alert = json!({
        "status": if resolved { "resolved" } else { "firing" },
        "labels": labels,
        "annotations": annotations,
        "startsAt": n.opened_at.to_rfc3339(),
        "endsAt": ends,
        "generatorURL": n.link,
        "fingerprint": fingerprint(n.incident),
    });
    (labels, annotations, alert)
}

/// A notice's annotations, in `language`: `summary` (its first line), `description` (the other
/// lines), `change`, `dashboard` (its page) and `version` when known.
pub fn annotations(n: &Notice, language: Language) -> BTreeMap<&'static str, String> {
    let mut annotations = Labels::new();
    let mut description = Vec::new();
    for line in text::lines(n, language) {
        match line {
            Line::Head(h) => {
                annotations.insert("summary", h);
            }
            Line::Field(label, value) => description.push(format!("{label}: {value}")),
            Line::Link(..) => {}
        }
    }
    annotations.insert("description", description.join("\n"));
    annotations.insert("change", n.change.as_str().into());
    annotations.insert("dashboard", n.link.clone());
    if let Some(v) = n.version {
        annotations.insert("version", v.to_string());
    }
    annotations
}

/// An incident's labels: the same as Alertmanager is pushed ([`crate::notify::alertmanager::labels`]),
/// so a route written for one matches the other.
pub fn labels(n: &Notice) -> BTreeMap<&'static str, String> {
    crate::notify::alertmanager::labels(n)
}

/// One alert per incident, whatever its scope grows to: the first 16 hex digits of SHA-256 of
/// its number.
pub fn fingerprint(incident: i64) -> String {
    let digest = Sha256::digest(format!("cdnwatch incident {incident}"));
    hex::encode(&digest[..8])
}

/// The pairs every map holds alike.
fn common<'a>(mut maps: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = maps.next() else {
        return Labels::new();
    };
    let mut out = first.clone();
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

/// The dashboard's base: the incident link without its `/incidents/N`.
fn external_url(n: &Notice) -> String {
    let tail = format!("/incidents/{}", n.incident);
    n.link.strip_suffix(&tail).unwrap_or(&n.link).to_string()
}

/// 2xx is delivered; what is left after the retried statuses is refused.
pub(super) fn answer(status: u16, body: &[u8]) -> Answer {
    if (200..300).contains(&status) {
        Answer::Delivered
    } else {
        Answer::Refused {
            why: format!("HTTP {status}: {}", excerpt(body)),
        }
    }
}
