//! The incident report's text: a pure function of an [`Incident`], tested below.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::super::events::change_text;
use super::super::stamp;
use super::Incident;
use crate::engine::{Event, Reason};
use crate::model::Outcome;
use crate::period::{HOUR_MS, MINUTE_MS};

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
pub fn render(i: &Incident) -> String {
    let mut out = String::new();
    header(&mut out, i);
    if i.periods.is_empty() && i.events.is_empty() {
        out.push_str("\nNo probe failed and the engine decided nothing in this window.\n");
        return out;
    }
    summary(&mut out, i);
    what_failed(&mut out, i);
    where_failed(&mut out, i);
    timeline(&mut out, i);
    switched(&mut out, i);
    decisions(&mut out, i);
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

fn version_text(version: Option<i64>) -> String {
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
fn state_changes(i: &Incident) -> Vec<(i64, Option<i64>, String)> {
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

fn timeline(out: &mut String, i: &Incident) {
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

fn switched(out: &mut String, i: &Incident) {
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

fn decisions(out: &mut String, i: &Incident) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RegionCounts;
    use crate::model::{FailureClass, Phase};
    use crate::store::failures::{FailurePeriod, PhaseCount};
    use crate::store::tallies::Tally;

    const T0: i64 = 1_800_000_000_000; // 2027-01-15 08:00:00 UTC
    const MIN: i64 = 60_000;

    fn period(minute: i64, host: &str, region: &str, class: &str, n: u64) -> FailurePeriod {
        FailurePeriod {
            start_ms: T0 + minute * MIN,
            host: host.into(),
            region: region.into(),
            failures: n,
            by_class: [(Outcome::parse_key(class).unwrap(), n)].into(),
        }
    }

    fn event(sec: i64, host: &str, new: Option<bool>, reason: Reason, detail: &str) -> Event {
        Event {
            at: chrono::DateTime::from_timestamp_millis(T0 + sec * 1000).unwrap(),
            host: Some(host.into()),
            old_enabled: new.map(|n| !n),
            new_enabled: new,
            reason,
            detail: detail.into(),
            evidence: [("cn-east".to_string(), RegionCounts::default())].into(),
            samples: vec![],
        }
    }

    fn outage() -> Incident {
        let mut periods = Vec::new();
        for m in 12..20 {
            for region in ["cn-east", "cn-north"] {
                periods.push(period(m, "cdn.shop.test", region, "http_status:502", 12));
            }
        }
        periods.push(period(13, "cdn-ss.shop.test", "cn-east", "tcp_refused", 2));
        Incident {
            host: Some("cdn.shop.test".into()),
            since_ms: T0,
            until_ms: T0 + 60 * MIN,
            generated_ms: T0 + 61 * MIN,
            periods,
            period_ms: MIN,
            totals: Tally {
                count: 7_200,
                failures: 194,
            },
            phases: vec![PhaseCount {
                outcome: Outcome::new(FailureClass::HttpStatus, Some(502)),
                phase: Some(Phase::Processing),
                count: 192,
            }],
            events: vec![
                (
                    event(
                        12 * 60 + 40,
                        "cdn.shop.test",
                        None,
                        Reason::Degraded,
                        "edge 127.21.1.1 (cn-east) fails",
                    ),
                    None,
                ),
                (
                    event(
                        13 * 60 + 5,
                        "cdn.shop.test",
                        Some(false),
                        Reason::VendorWide,
                        "unhealthy in a quorum of regions (vendor_wide)",
                    ),
                    Some(8),
                ),
                (
                    event(
                        13 * 60 + 5,
                        "cdn-ss.shop.test",
                        Some(false),
                        Reason::VendorWide,
                        "unhealthy",
                    ),
                    Some(8),
                ),
                (
                    event(
                        25 * 60 + 10,
                        "cdn.shop.test",
                        Some(true),
                        Reason::Rise,
                        "healthy again",
                    ),
                    Some(9),
                ),
                (
                    event(
                        25 * 60 + 10,
                        "cdn-ss.shop.test",
                        Some(true),
                        Reason::Rise,
                        "healthy again",
                    ),
                    Some(9),
                ),
            ],
            vendors: [("cdn.shop.test".to_string(), "alpha".to_string())].into(),
        }
    }

    #[test]
    fn a_report_names_the_host_class_phase_regions_and_the_times() {
        let text = render(&outage());
        for want in [
            "Scope:     cdn.shop.test (vendor alpha)",
            "Window:    2027-01-15 08:00:00 UTC to 2027-01-15 09:00:00 UTC",
            "194 of 7,200 probes failed (2.7 %) on cdn-ss.shop.test and cdn.shop.test in cn-east and cn-north, from 2027-01-15 08:12:00 UTC to 2027-01-15 08:20:00 UTC; mostly http_status 502 in processing.",
            "cdn.shop.test and cdn-ss.shop.test disabled (vendor_wide) at 2027-01-15 08:13:05 UTC (version 8).",
            "http_status 502                   192 probes  in processing",
            "tcp_refused                         2 probes  phase unknown",
            "first failure   2027-01-15 08:12:00 UTC (first minute with failures)",
            "detected        2027-01-15 08:12:40 UTC degraded: edge 127.21.1.1 (cn-east) fails",
            "switched        2027-01-15 08:13:05 UTC (version 8): cdn.shop.test and cdn-ss.shop.test disabled (vendor_wide)",
            "last failure    2027-01-15 08:20:00 UTC",
            "recovered       2027-01-15 08:25:10 UTC (version 9): cdn-ss.shop.test enabled again (rise)",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        let where_line = text
            .lines()
            .find(|l| l.starts_with("  cdn.shop.test ") && l.contains("cn-north"))
            .unwrap();
        assert!(
            where_line.contains("96  2027-01-15 08:12:00 UTC to 2027-01-15 08:20:00 UTC"),
            "{where_line}"
        );
    }

    #[test]
    fn a_host_still_disabled_at_the_end_has_not_recovered() {
        let mut i = outage();
        i.events.truncate(3);
        let text = render(&i);
        assert!(
            text.contains("recovered       not by the end of the window: cdn-ss.shop.test and cdn.shop.test still disabled"),
            "{text}"
        );
    }

    #[test]
    fn failures_that_stopped_without_a_switch_say_so() {
        let mut i = outage();
        i.events.clear();
        let text = render(&i);
        assert!(text.contains("No host was disabled or enabled."), "{text}");
        assert!(
            text.contains("failures stopped after 2027-01-15 08:20:00 UTC (nothing was switched)"),
            "{text}"
        );
        assert!(!text.contains("What was switched"));
    }

    #[test]
    fn a_quiet_window_is_one_line() {
        let i = Incident {
            since_ms: T0,
            until_ms: T0 + MIN,
            generated_ms: T0 + MIN,
            period_ms: MIN,
            ..Incident::default()
        };
        let text = render(&i);
        assert!(text.contains("Scope:     all hosts"));
        assert!(text.ends_with("No probe failed and the engine decided nothing in this window.\n"));
    }

    #[test]
    fn many_regions_are_counted_not_listed() {
        let mut i = outage();
        for r in 0..6 {
            i.periods.push(period(
                30,
                "cdn.shop.test",
                &format!("r{r}"),
                "tcp_refused",
                1,
            ));
        }
        let text = render(&i);
        assert!(
            text.contains("on cdn-ss.shop.test and cdn.shop.test in 8 regions,"),
            "{text}"
        );
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
