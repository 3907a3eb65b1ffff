//! The report's sections on time and switching: the timeline (first failure, detection, switch,
//! recovery), what was switched, the other decisions. Pure.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::super::super::events::change_text;
use super::super::super::stamp;
use super::super::Incident;
use super::{QUIET_MS, and_list, extent};
use crate::engine::{Event, Reason};
use crate::period::HOUR_MS;

pub(super) fn version_text(version: Option<i64>) -> String {
    version
        .map(|v| format!(" (version {v})"))
        .unwrap_or_default()
}

/// Events that changed hosts the same way at the same time, with the same version and reason.
struct Move {
    at: i64,
    version: Option<i64>,
    enabled: bool,
    reason: Reason,
    hosts: Vec<String>,
}

/// Each event that disabled or enabled hosts, grouped by time: (at, version, "x and y disabled
/// (vendor_wide)").
pub(super) fn state_changes(i: &Incident) -> Vec<(i64, Option<i64>, String)> {
    let mut moves: Vec<Move> = Vec::new();
    for (e, v) in i.events.iter().filter(|(e, _)| e.new_enabled.is_some()) {
        let m = Move {
            at: e.at.timestamp_millis(),
            version: *v,
            enabled: e.new_enabled == Some(true),
            reason: e.reason,
            hosts: vec![e.host.clone().unwrap_or_default()],
        };
        match moves.iter_mut().find(|g| {
            (g.at, g.version, g.enabled, g.reason) == (m.at, m.version, m.enabled, m.reason)
        }) {
            Some(g) => g.hosts.extend(m.hosts),
            None => moves.push(m),
        }
    }
    moves
        .into_iter()
        .map(|m| {
            let verb = if m.enabled { "enabled" } else { "disabled" };
            let text = format!("{} {verb} ({})", and_list(&m.hosts), m.reason.as_str());
            (m.at, m.version, text)
        })
        .collect()
}

pub(super) fn timeline(out: &mut String, i: &Incident) {
    let _ = writeln!(out, "\nWhen (UTC)");
    let (_, _, first, last) = extent(i);
    let line = |out: &mut String, what: &str, text: String| {
        let _ = writeln!(out, "  {what:<15} {text}");
    };
    if let Some(f) = first {
        line(
            out,
            "first failure",
            format!("{} (first {} with failures)", stamp(f), period_word(i)),
        );
    }
    let detected = i
        .events
        .iter()
        .find(|(e, _)| !matches!(e.reason, Reason::Rise | Reason::ColdStart));
    if let Some((e, _)) = detected {
        line(
            out,
            "detected",
            format!(
                "{} {}: {}",
                stamp(e.at.timestamp_millis()),
                e.reason.as_str(),
                e.detail
            ),
        );
    }
    if let Some((at, v, text)) = state_changes(i).into_iter().next() {
        line(
            out,
            "switched",
            format!("{}{}: {text}", stamp(at), version_text(v)),
        );
    }
    if let Some(l) = last {
        line(
            out,
            "last failure",
            format!(
                "{} (end of the last {} with failures)",
                stamp(l),
                period_word(i)
            ),
        );
    }
    line(out, "recovered", recovery(i, last));
}

fn period_word(i: &Incident) -> &'static str {
    if i.period_ms >= HOUR_MS {
        "hour"
    } else {
        "minute"
    }
}

/// When it recovered: the event that re-enabled the last host disabled in the window, or the end
/// of the failures when nothing was switched.
fn recovery(i: &Incident, last_failure: Option<i64>) -> String {
    let mut down: BTreeSet<String> = BTreeSet::new();
    let mut back = None;
    for (e, v) in &i.events {
        let Some(host) = &e.host else { continue };
        match e.new_enabled {
            Some(false) => {
                down.insert(host.clone());
            }
            Some(true) if down.remove(host) && down.is_empty() => {
                back = Some((e.at.timestamp_millis(), *v, host.clone(), e.reason));
            }
            _ => {}
        }
    }
    if !down.is_empty() {
        let names: Vec<String> = down.into_iter().collect();
        return format!(
            "not by the end of the window: {} still disabled",
            and_list(&names)
        );
    }
    if let Some((at, v, host, reason)) = back {
        return format!(
            "{}{}: {host} enabled again ({})",
            stamp(at),
            version_text(v),
            reason.as_str()
        );
    }
    match last_failure {
        Some(l) if l <= i.until_ms - QUIET_MS => {
            format!("failures stopped after {} (nothing was switched)", stamp(l))
        }
        Some(_) => "still failing at the end of the window".into(),
        None => "nothing failed".into(),
    }
}

pub(super) fn switched(out: &mut String, i: &Incident) {
    let changes: Vec<&(Event, Option<i64>)> = i
        .events
        .iter()
        .filter(|(e, _)| e.new_enabled.is_some())
        .collect();
    if changes.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nWhat was switched");
    for (e, v) in changes {
        let _ = writeln!(
            out,
            "  {}  {:<11} {:<26} {:<20} {:<12} {}",
            stamp(e.at.timestamp_millis()),
            v.map(|v| format!("version {v}"))
                .unwrap_or_else(|| "no version".into()),
            e.host.as_deref().unwrap_or("all hosts"),
            change_text(e),
            e.reason.as_str(),
            e.detail
        );
    }
}

pub(super) fn decisions(out: &mut String, i: &Incident) {
    let others: Vec<&(Event, Option<i64>)> = i
        .events
        .iter()
        .filter(|(e, _)| e.new_enabled.is_none())
        .collect();
    if others.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nOther decisions and refusals");
    for (e, _) in others {
        let _ = writeln!(
            out,
            "  {}  {:<12} {:<26} {}",
            stamp(e.at.timestamp_millis()),
            e.reason.as_str(),
            e.host.as_deref().unwrap_or("all hosts"),
            e.detail
        );
    }
}
