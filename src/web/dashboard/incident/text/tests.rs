// A test is a specification, read top to bottom: its length is the behaviour it pins down.
#![allow(clippy::too_many_lines)]

use super::*;
use crate::engine::RegionCounts;
use crate::engine::{Event, Reason};
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
        incident: None,
        prefix: None,
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
