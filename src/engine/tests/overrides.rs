//! The engine against manual overrides: they win until they expire, apply while frozen, never
//! disable every host, and hand a host back as its evidence says.

use super::*;

fn ov(host: &str, kind: OverrideKind, expires: i64) -> Override {
    Override {
        host: host.into(),
        kind,
        reason: "maintenance".into(),
        actor: "alice".into(),
        expires_at: t(expires),
    }
}

#[test]
fn overrides_win_until_they_expire_and_can_never_disable_every_host() {
    let mut en = engine();
    let e = en.evaluate(
        &round(ok, &[]),
        &[ov("cdn", OverrideKind::ForceDisable, 100)],
        t(0),
    );
    assert_eq!(enabled(&e), [false, true, true]);
    assert_eq!(e.events[0].reason, Reason::Override);
    assert_eq!(e.events[0].detail, "force_disable by alice: maintenance");
    // Force enable holds against a failing vendor.
    let force_on = [ov("cdn", OverrideKind::ForceEnable, 1000)];
    let mut last = None;
    for i in 1..5 {
        last = Some(en.evaluate(&round(alpha_502, &[]), &force_on, t(i * 10)));
    }
    assert_eq!(enabled(&last.unwrap()), [true, false, true]);
    // Every host forced down: one is kept.
    let all = [
        ov("cdn", OverrideKind::ForceDisable, 1000),
        ov("cdn-ss", OverrideKind::ForceDisable, 1000),
        ov("cdn-bak", OverrideKind::ForceDisable, 1000),
    ];
    let e = en.evaluate(&round(ok, &[]), &all, t(60));
    assert_eq!(enabled(&e).iter().filter(|x| **x).count(), 1);
    assert!(e.events.iter().any(|ev| ev.reason == Reason::FailOpen));
}

#[test]
fn a_healthy_host_comes_back_at_the_first_evaluation_after_its_force_disable_ends() {
    let mut en = engine();
    let off = [ov("cdn", OverrideKind::ForceDisable, 15)];
    let e = en.evaluate(&round(ok, &[]), &off, t(0));
    assert_eq!(enabled(&e), [false, true, true]);
    let e = en.evaluate(&round(ok, &[]), &off, t(10));
    assert_eq!(
        enabled(&e),
        [false, true, true],
        "held while the override lasts"
    );
    // Expired (or cleared: the store no longer lists it): no rise rounds, no hold — the backoff
    // is for hosts the engine took out itself.
    let e = en.evaluate(&round(ok, &[]), &[], t(20));
    assert_eq!(enabled(&e), [true, true, true]);
    assert!(e.changed && e.publishable);
    assert!(e.events.iter().any(|ev| ev.reason == Reason::Rise));
    // … and the forced disable did not count toward a later hold.
    assert_eq!(en.memory().hosts["cdn"].consecutive_disables, 0);
}

#[test]
fn a_host_still_failing_when_its_force_disable_ends_stays_out_for_a_hold() {
    let mut en = engine();
    let off = [ov("cdn", OverrideKind::ForceDisable, 35)];
    for i in 0..4 {
        en.evaluate(&round(alpha_502, &[]), &off, t(i * 10));
    }
    let e = en.evaluate(&round(alpha_502, &[]), &[], t(40));
    assert!(!e.hosts["cdn"].enabled);
    assert_eq!(e.hosts["cdn"].reason, Some(Reason::QuorumFall));
    assert_eq!(en.memory().hosts["cdn"].hold_until, Some(t(100)));
}

#[test]
fn overrides_apply_and_are_publishable_while_frozen_and_before_the_first_full_round() {
    let mut en = engine();
    // Before warm-up: only one region valid.
    let off = [ov("cdn", OverrideKind::ForceDisable, 1000)];
    let e = en.evaluate(&round(ok, &["north", "south"]), &off, t(0));
    assert_eq!(enabled(&e), [false, true, true]);
    assert!(
        e.changed && e.publishable,
        "an override is published before warm-up"
    );
    // No change: nothing to publish while frozen.
    let e = en.evaluate(&round(ok, &["north", "south"]), &off, t(10));
    assert!(!e.changed && !e.publishable);
    // Frozen after a full round: a force_enable applies; every host forced down keeps one.
    en.evaluate(&round(ok, &[]), &off, t(20));
    let all = [
        ov("cdn", OverrideKind::ForceDisable, 1000),
        ov("cdn-ss", OverrideKind::ForceDisable, 1000),
        ov("cdn-bak", OverrideKind::ForceDisable, 1000),
    ];
    let e = en.evaluate(&round(everything_502, &["east", "north"]), &all, t(30));
    assert!(e.publishable);
    assert_eq!(enabled(&e).iter().filter(|x| **x).count(), 1);
    assert!(e.events.iter().any(|ev| ev.reason == Reason::FailOpen));
    assert!(e.events.iter().any(|ev| ev.reason == Reason::Freeze));
}

#[test]
fn observe_only_records_what_the_engine_would_do_but_keeps_the_host() {
    let mut en = engine();
    let watch = [
        ov("cdn", OverrideKind::ObserveOnly, 1000),
        ov("cdn-ss", OverrideKind::ObserveOnly, 1000),
    ];
    let mut last = None;
    for i in 0..3 {
        last = Some(en.evaluate(&round(alpha_502, &[]), &watch, t(i * 10)));
    }
    let e = last.unwrap();
    assert_eq!(enabled(&e), [true, true, true]);
    assert!(e.events.iter().any(|ev| ev.detail.contains("observe only")));
}

#[test]
fn an_override_event_names_its_kind_in_its_one_spelling_and_keeps_the_operators_words() {
    let mut en = engine();
    let mut o = ov("cdn", OverrideKind::ForceDisable, 100);
    o.actor = "Alice".into();
    o.reason = "CDN-42: Edge pool drained".into();
    let e = en.evaluate(&round(ok, &[]), &[o], t(0));
    assert_eq!(
        e.events[0].detail,
        "force_disable by Alice: CDN-42: Edge pool drained"
    );
}
