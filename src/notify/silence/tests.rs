use chrono::TimeZone;

use super::*;
use crate::config::Severity;
use crate::engine::FaultScope;
use crate::notify::Change;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn notice(vendors: &[&str], hosts: &[&str], decision: Option<Decision>) -> Notice {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Notice {
        incident: 1,
        seq: 0,
        change: Change::Opened,
        at: DateTime::UNIX_EPOCH,
        scope: FaultScope::Vendor {
            vendor: vendors.first().unwrap_or(&"alpha").to_string(),
        },
        severity: Severity::Critical,
        classes: Vec::new(),
        hosts: strings(hosts),
        vendors: strings(vendors),
        regions: vec!["cn-east".into(), "cn-north".into()],
        decision,
        version: None,
        opened_at: DateTime::UNIX_EPOCH,
        resolved_at: None,
        link: "/incidents/1".into(),
    }
}

fn silence(m: Matchers, expires_at: Option<DateTime<Utc>>, every: Option<Recurrence>) -> Silence {
    Silence {
        id: 1,
        matchers: m,
        reason: "planned".into(),
        actor: "alice".into(),
        created_at: DateTime::UNIX_EPOCH,
        expires_at,
        every,
    }
}

fn vendor(v: &str) -> Matchers {
    Matchers {
        vendor: Some(v.into()),
        ..Matchers::default()
    }
}

fn weekly(day: &str, start: &str, minutes: i64) -> Recurrence {
    Recurrence::parse(&RecurrenceWire {
        weekly: WeeklyWire {
            day: day.into(),
            start: start.into(),
            minutes,
        },
    })
    .unwrap()
}

#[test]
fn every_matcher_given_must_hold_and_the_notice_must_lie_wholly_inside() {
    let alpha = notice(&["alpha"], &["a.test", "b.test"], None);
    assert!(vendor("alpha").matches(&alpha));
    assert!(!vendor("beta").matches(&alpha));
    let both = notice(&["alpha", "beta"], &["a.test", "c.test"], None);
    assert!(
        !vendor("alpha").matches(&both),
        "it spreads beyond the silence"
    );
    let host = Matchers {
        host: Some("a.test".into()),
        ..Matchers::default()
    };
    assert!(!host.matches(&alpha), "b.test is not silenced");
    assert!(host.matches(&notice(&["alpha"], &["a.test"], None)));
    let scoped = Matchers {
        scope: Some("edge".into()),
        ..vendor("alpha")
    };
    assert!(!scoped.matches(&alpha), "a vendor scope is not an edge");
    let scoped = Matchers {
        scope: Some("vendor".into()),
        ..vendor("alpha")
    };
    assert!(scoped.matches(&alpha));
    let region = Matchers {
        region: Some("cn-east".into()),
        ..Matchers::default()
    };
    assert!(!region.matches(&alpha), "it fails in cn-north too");
    assert!(Matchers::default().is_empty());
}

#[test]
fn a_silence_ends_at_its_expiry() {
    let end = at(2025, 3, 1, 12, 0);
    let s = silence(vendor("alpha"), Some(end), None);
    let n = notice(&["alpha"], &["a.test"], None);
    assert!(
        muting(
            std::slice::from_ref(&s),
            &n,
            end - chrono::Duration::seconds(1)
        )
        .is_some()
    );
    assert!(muting(std::slice::from_ref(&s), &n, end).is_none());
}

#[test]
fn a_fail_open_is_never_muted() {
    let s = silence(vendor("alpha"), None, None);
    let fail_open = Decision::Refused {
        refusal: Refusal::FailOpen,
        host: Some("a.test".into()),
    };
    let n = notice(&["alpha"], &["a.test"], Some(fail_open));
    assert!(is_fail_open(&n));
    assert!(muting(std::slice::from_ref(&s), &n, at(2025, 3, 1, 0, 0)).is_none());
    let kept = Decision::Flip {
        host: "a.test".into(),
        enabled: true,
        reason: crate::engine::Reason::FailOpen,
        version: Some(2),
    };
    let n = notice(&["alpha"], &["a.test"], Some(kept));
    assert!(muting(std::slice::from_ref(&s), &n, at(2025, 3, 1, 0, 0)).is_none());
    let freeze = Decision::Refused {
        refusal: Refusal::Freeze,
        host: None,
    };
    let n = notice(&["alpha"], &["a.test"], Some(freeze));
    assert!(muting(std::slice::from_ref(&s), &n, at(2025, 3, 1, 0, 0)).is_some());
}

#[test]
fn a_weekly_window_runs_across_midnight() {
    // 2025-03-01 is a Saturday.
    let w = weekly("sat", "23:00", 120);
    assert!(!w.covers(at(2025, 3, 1, 22, 59)));
    assert!(w.covers(at(2025, 3, 1, 23, 0)));
    assert!(w.covers(at(2025, 3, 2, 0, 59)));
    assert!(!w.covers(at(2025, 3, 2, 1, 0)));
    assert!(w.covers(at(2025, 3, 8, 23, 30)), "and again a week later");
    assert!(!w.covers(at(2025, 3, 5, 23, 30)), "not on a Wednesday");
}

#[test]
fn a_weekly_window_runs_across_the_week_end() {
    // Sunday 23:30 for 90 minutes: into Monday 01:00 (2025-03-02 is a Sunday).
    let w = weekly("sun", "23:30", 90);
    assert!(w.covers(at(2025, 3, 2, 23, 45)));
    assert!(w.covers(at(2025, 3, 3, 0, 30)));
    assert!(!w.covers(at(2025, 3, 3, 1, 0)));
    assert!(!w.covers(at(2025, 3, 2, 23, 29)));
    let s = silence(vendor("alpha"), None, Some(w));
    assert!(s.in_effect(at(2025, 3, 3, 0, 59)));
    assert!(!s.in_effect(at(2025, 3, 4, 0, 30)));
}

#[test]
fn a_bad_recurrence_is_named_by_its_field() {
    let parse = |day: &str, start: &str, minutes: i64| {
        Recurrence::parse(&RecurrenceWire {
            weekly: WeeklyWire {
                day: day.into(),
                start: start.into(),
                minutes,
            },
        })
        .unwrap_err()
        .field
    };
    assert_eq!(parse("funday", "02:00", 60), "every.weekly.day");
    assert_eq!(parse("sun", "24:00", 60), "every.weekly.start");
    assert_eq!(parse("sun", "2:00", 60), "every.weekly.start");
    assert_eq!(parse("sun", "02:00", 0), "every.weekly.minutes");
    assert_eq!(
        parse("sun", "02:00", i64::from(WEEK_MINUTES)),
        "every.weekly.minutes"
    );
    let w = weekly("sun", "02:05", 120);
    assert_eq!(w.wire().weekly.start, "02:05");
    assert_eq!(w.to_string(), "every sun from 02:05 UTC for 120 min");
}
