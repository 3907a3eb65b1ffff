//! The incident report's text: a pure function of an [`Incident`], tested in `text/tests.rs`.
//! This file holds the summary and where and what failed; `timeline` the times and the switches.

mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::super::stamp;
use super::Incident;
use crate::model::Outcome;
use crate::period::MINUTE_MS;
use timeline::{state_changes, version_text};

/// Failures ending this long before the window's end count as stopped.
const QUIET_MS: i64 = 5 * MINUTE_MS;

fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn and_list<T: AsRef<str>>(items: &[T]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => format!(
            "{} and {}",
            init.iter()
                .map(|s| s.as_ref())
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

/// Up to four names listed, more counted: `cn-east and cn-north`, `20 regions`.
fn few(names: &[String], many: &str) -> String {
    if names.len() > 4 {
        format!("{} {many}", names.len())
    } else {
        and_list(names)
    }
}

/// The report.
pub(super) fn render(i: &Incident) -> String {
    let mut out = String::new();
    header(&mut out, i);
    if i.periods.is_empty() && i.events.is_empty() {
        out.push_str("\nNo probe failed and the engine decided nothing in this window.\n");
        return out;
    }
    summary(&mut out, i);
    what_failed(&mut out, i);
    where_failed(&mut out, i);
    timeline::timeline(&mut out, i);
    timeline::switched(&mut out, i);
    timeline::decisions(&mut out, i);
    out
}

fn header(out: &mut String, i: &Incident) {
    let scope = match &i.host {
        Some(h) => match i.vendors.get(h) {
            Some(v) => format!("{h} (vendor {v})"),
            None => h.clone(),
        },
        None => "all hosts".into(),
    };
    let _ = writeln!(out, "cdnwatch incident report");
    let _ = writeln!(out, "Scope:     {scope}");
    let _ = writeln!(
        out,
        "Window:    {} to {}",
        stamp(i.since_ms),
        stamp(i.until_ms)
    );
    let _ = writeln!(
        out,
        "Generated: {} from {} probe results and {} decision events",
        stamp(i.generated_ms),
        count(i.totals.count),
        i.events.len()
    );
}

/// Hosts and regions with failures, and the first and last failing period.
fn extent(i: &Incident) -> (Vec<String>, Vec<String>, Option<i64>, Option<i64>) {
    let hosts: BTreeSet<&String> = i.periods.iter().map(|p| &p.host).collect();
    let regions: BTreeSet<&String> = i.periods.iter().map(|p| &p.region).collect();
    // A period can stick out of the window: its times are kept within it.
    let first = i.periods.iter().map(|p| p.start_ms.max(i.since_ms)).min();
    let last = i
        .periods
        .iter()
        .map(|p| (p.start_ms + i.period_ms).min(i.until_ms))
        .max();
    (
        hosts.into_iter().cloned().collect(),
        regions.into_iter().cloned().collect(),
        first,
        last,
    )
}

/// Failures per outcome, most first.
fn by_class(i: &Incident) -> Vec<(Outcome, u64)> {
    let mut m: BTreeMap<Outcome, u64> = BTreeMap::new();
    for p in &i.periods {
        for (c, n) in &p.by_class {
            *m.entry(*c).or_default() += n;
        }
    }
    let mut v: Vec<(Outcome, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// The phases an outcome failed in, from the raw results (any status when it keeps none).
fn phases_of(i: &Incident, key: Outcome) -> Vec<String> {
    let set: BTreeSet<&str> = i
        .phases
        .iter()
        .filter(|p| {
            p.outcome.class == key.class && (key.status.is_none() || p.outcome.status == key.status)
        })
        .filter_map(|p| p.phase.map(|ph| ph.as_str()))
        .collect();
    set.into_iter().map(String::from).collect()
}

fn summary(out: &mut String, i: &Incident) {
    let _ = writeln!(out, "\nSummary");
    let (hosts, regions, first, last) = extent(i);
    let failed = i.periods.iter().map(|p| p.failures).sum::<u64>();
    if failed > 0 {
        let share = 100.0 * failed as f64 / i.totals.count.max(1) as f64;
        let main = by_class(i)
            .first()
            .map(|(c, _)| {
                let phases = phases_of(i, *c);
                match phases.is_empty() {
                    true => c.to_string(),
                    false => format!("{c} in {}", and_list(&phases)),
                }
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} of {} probes failed ({share:.1} %) on {} in {}, from {} to {}; mostly {main}.",
            count(failed),
            count(i.totals.count),
            few(&hosts, "hosts"),
            few(&regions, "regions"),
            first.map(stamp).unwrap_or_default(),
            last.map(stamp).unwrap_or_default(),
        );
    } else {
        let _ = writeln!(out, "  No probe failed in this window.");
    }
    let moves = state_changes(i);
    if moves.is_empty() {
        let _ = writeln!(out, "  No host was disabled or enabled.");
    }
    for (at, version, text) in moves {
        let _ = writeln!(out, "  {text} at {}{}.", stamp(at), version_text(version));
    }
}

fn what_failed(out: &mut String, i: &Incident) {
    let classes = by_class(i);
    if classes.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nWhat failed");
    for (c, n) in classes {
        let phases = phases_of(i, c);
        let phase = if phases.is_empty() {
            "phase unknown: its raw results are no longer kept".to_string()
        } else {
            format!("in {}", and_list(&phases))
        };
        let _ = writeln!(
            out,
            "  {:<26} {:>10} probes  {phase}",
            c.to_string(),
            count(n)
        );
    }
}

fn where_failed(out: &mut String, i: &Incident) {
    if i.periods.is_empty() {
        return;
    }
    let mut cells: BTreeMap<(&str, &str), (u64, i64, i64)> = BTreeMap::new();
    for p in &i.periods {
        let c = cells
            .entry((&p.host, &p.region))
            .or_insert((0, i64::MAX, i64::MIN));
        c.0 += p.failures;
        c.1 = c.1.min(p.start_ms.max(i.since_ms));
        c.2 = c.2.max((p.start_ms + i.period_ms).min(i.until_ms));
    }
    let _ = writeln!(out, "\nWhere (failed probes per host and region, UTC)");
    for ((host, region), (n, first, last)) in cells {
        let _ = writeln!(
            out,
            "  {host:<28} {region:<14} {:>10}  {} to {}",
            count(n),
            stamp(first),
            stamp(last)
        );
    }
}

#[cfg(test)]
mod tests;
