use std::time::Duration;

use super::*;
use crate::model::FailureClass as F;

mod confirm;
mod merges;
mod overrides;

const HOSTS: [(&str, &str); 3] = [("cdn", "alpha"), ("cdn-ss", "alpha"), ("cdn-bak", "beta")];
const PATHS: [&str; 3] = ["/image/p.jpg", "/product/p.json", "/community/p.css"];
const REGIONS: [&str; 3] = ["east", "north", "south"];

pub(super) type Fault = fn(&str, &str, &str, &str, u8) -> Option<(F, Option<u16>)>;

/// The phase a class is met in, near enough for these rounds.
fn phase_of(class: F) -> crate::model::Phase {
    use crate::model::Phase;
    match class {
        c if c.is_dns() => Phase::Resolve,
        F::TcpRefused | F::TcpTimeout | F::TcpError => Phase::Connect,
        F::ContentMismatch | F::BodyTooLarge => Phase::Transfer,
        _ => Phase::Processing,
    }
}

pub(super) fn ok(_: &str, _: &str, _: &str, _: &str, _: u8) -> Option<(F, Option<u16>)> {
    None
}

/// A round: every host × path × region × resolver (isp, public) × edge (1, 2); `invalid` regions'
/// control targets fail.
pub(super) fn round(fault: Fault, invalid: &[&str]) -> Round {
    let regions = REGIONS
        .iter()
        .enumerate()
        .map(|(ri, region)| {
            let mut observations = Vec::new();
            for (host, vendor) in HOSTS {
                for path in PATHS {
                    for resolver in ["isp", "public"] {
                        for edge in 1..=2u8 {
                            let v = if vendor == "alpha" { 21 } else { 22 };
                            let ip: IpAddr = format!("127.{v}.{}.{edge}", ri + 1).parse().unwrap();
                            let f = fault(host, path, region, resolver, edge);
                            observations.push(Observation {
                                host: host.into(),
                                path: path.into(),
                                resolver: resolver.into(),
                                edge: Some(ip),
                                class: f.map(|x| x.0),
                                status: f.and_then(|x| x.1).or(Some(200)),
                                phase: f.map(|x| phase_of(x.0)),
                                confirmations: 0,
                            });
                        }
                    }
                }
            }
            RegionRound {
                region: region.to_string(),
                control_ok: !invalid.contains(region),
                observations,
            }
        })
        .collect();
    Round { regions }
}

use std::net::IpAddr;

pub(super) fn engine() -> Engine {
    let hosts = HOSTS
        .iter()
        .map(|(h, v)| HostInfo {
            host: h.to_string(),
            vendor: v.to_string(),
        })
        .collect();
    Engine::new(Policy::default(), hosts, t(0))
}

pub(super) fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
}

fn enabled(e: &Evaluation) -> Vec<bool> {
    HOSTS.iter().map(|(h, _)| e.hosts[*h].enabled).collect()
}

fn alpha_502(host: &str, _: &str, _: &str, _: &str, _: u8) -> Option<(F, Option<u16>)> {
    host.starts_with("cdn")
        .then_some(())
        .filter(|_| host != "cdn-bak")
        .map(|_| (F::HttpStatus, Some(502)))
}

fn everything_502(_: &str, _: &str, _: &str, _: &str, _: u8) -> Option<(F, Option<u16>)> {
    Some((F::HttpStatus, Some(502)))
}

fn reasons(e: &Evaluation) -> Vec<(Option<String>, Reason)> {
    e.events
        .iter()
        .map(|ev| (ev.host.clone(), ev.reason))
        .collect()
}

#[test]
fn a_vendor_wide_outage_disables_both_alpha_hosts_in_one_evaluation_after_three_rounds() {
    let mut en = engine();
    for i in 0..2 {
        let e = en.evaluate(&round(alpha_502, &[]), &[], t(i * 10));
        assert!(!e.changed, "round {i} must not flip yet");
        assert!(e.publishable);
    }
    let e = en.evaluate(&round(alpha_502, &[]), &[], t(20));
    assert!(e.changed);
    assert_eq!(enabled(&e), [false, false, true]);
    assert_eq!(e.hosts["cdn"].reason, Some(Reason::VendorWide));
    assert_eq!(e.hosts["cdn-ss"].reason, Some(Reason::VendorWide));
    let ev = &e.events[0];
    assert_eq!((ev.old_enabled, ev.new_enabled), (Some(true), Some(false)));
    assert_eq!(
        ev.evidence["east"],
        RegionCounts {
            ok: 0,
            failed: 12,
            invalid: false
        }
    );
    assert!(
        ev.samples[0]
            .to_string()
            .starts_with("cdn east/isp 127.21.1.1 /image/p.jpg http_status 502"),
        "{:?}",
        ev.samples
    );
}

#[test]
fn a_recovered_host_comes_back_after_three_ok_rounds_and_the_hold() {
    let mut en = engine();
    for i in 0..3 {
        en.evaluate(&round(alpha_502, &[]), &[], t(i * 10));
    }
    // Disabled at t=20 with a hold of 60 s: three ok rounds by t=50, but back only at t=80.
    for s in [30, 40, 50, 60, 70] {
        let e = en.evaluate(&round(ok, &[]), &[], t(s));
        assert_eq!(enabled(&e), [false, false, true], "at t={s}");
    }
    let e = en.evaluate(&round(ok, &[]), &[], t(80));
    assert_eq!(enabled(&e), [true, true, true]);
    assert!(reasons(&e).contains(&(Some("cdn".into()), Reason::Rise)));
}

#[test]
fn the_hold_grows_with_consecutive_disables_and_is_capped() {
    let p = Policy::default();
    assert_eq!(p.hold(1), Duration::from_secs(60));
    assert_eq!(p.hold(3), Duration::from_secs(180));
    assert_eq!(p.hold(50), Duration::from_secs(600));
    let mut en = engine();
    let mut now = 0;
    let flap = |en: &mut Engine, bad: bool, now: &mut i64| {
        *now += 10;
        en.evaluate(&round(if bad { alpha_502 } else { ok }, &[]), &[], t(*now))
    };
    for _ in 0..3 {
        flap(&mut en, true, &mut now);
    }
    // Back after the first hold (60 s) …
    let mut back_after = 0;
    while !flap(&mut en, false, &mut now).hosts["cdn"].enabled {
        back_after += 10;
    }
    assert_eq!(back_after, 50);
    for _ in 0..3 {
        flap(&mut en, true, &mut now);
    }
    // … and after 120 s the second time.
    let mut back_after = 0;
    while !flap(&mut en, false, &mut now).hosts["cdn"].enabled {
        back_after += 10;
    }
    assert_eq!(back_after, 110);
}

#[test]
fn a_disabled_host_that_fails_again_during_its_hold_waits_a_whole_hold_from_that_failure() {
    let mut en = engine();
    for i in 0..3 {
        en.evaluate(&round(alpha_502, &[]), &[], t(i * 10));
    }
    // Disabled at t=20 (hold 60 s); ok rounds, then one more failed round at t=60 while out.
    for s in [30, 40, 50] {
        en.evaluate(&round(ok, &[]), &[], t(s));
    }
    en.evaluate(&round(alpha_502, &[]), &[], t(60));
    // Without the failure it would be back at t=80; now the hold runs from t=60 to t=120.
    for s in [70, 80, 90, 100, 110] {
        let e = en.evaluate(&round(ok, &[]), &[], t(s));
        assert_eq!(enabled(&e), [false, false, true], "at t={s}");
    }
    let e = en.evaluate(&round(ok, &[]), &[], t(120));
    assert_eq!(enabled(&e), [true, true, true]);
}

#[test]
fn alternating_failures_trip_the_ratio_rule_but_not_the_fall_rule() {
    fn primary_502(host: &str, _: &str, _: &str, _: &str, _: u8) -> Option<(F, Option<u16>)> {
        (host == "cdn").then_some((F::HttpStatus, Some(502)))
    }
    let mut en = engine();
    for i in 0..5 {
        let f = if i % 2 == 0 { primary_502 } else { ok };
        let e = en.evaluate(&round(f, &[]), &[], t(i * 10));
        assert!(
            e.hosts["cdn"].enabled,
            "round {i}: fewer than six rounds, never three failures in a row"
        );
    }
    // Sixth round (ok): three of the last six failed = 50 %.
    let e = en.evaluate(&round(ok, &[]), &[], t(50));
    assert_eq!(enabled(&e), [false, true, true]);
    assert_eq!(e.hosts["cdn"].reason, Some(Reason::Ratio));
}

#[test]
fn one_blackholed_region_does_not_vote_and_nothing_flips() {
    // The blackholed region's own network is down: its control targets and the CDN both fail there.
    fn east_dead(_: &str, _: &str, region: &str, _: &str, _: u8) -> Option<(F, Option<u16>)> {
        (region == "east").then_some((F::TcpTimeout, None))
    }
    let mut en = engine();
    for i in 0..8 {
        let e = en.evaluate(&round(east_dead, &["east"]), &[], t(i * 10));
        assert!(!e.changed);
        assert!(e.publishable);
    }
}

#[test]
fn two_of_three_regions_blackholed_freezes_with_one_event() {
    let mut en = engine();
    en.evaluate(&round(ok, &[]), &[], t(0));
    let mut freezes = 0;
    for i in 1..8 {
        let e = en.evaluate(&round(everything_502, &["east", "north"]), &[], t(i * 10));
        assert!(!e.changed);
        assert!(!e.publishable);
        freezes += e
            .events
            .iter()
            .filter(|ev| ev.reason == Reason::Freeze)
            .count();
    }
    assert_eq!(freezes, 1, "the freeze is recorded once when it begins");
}

#[test]
fn nothing_is_publishable_before_a_full_round_in_two_regions() {
    let mut en = engine();
    let e = en.evaluate(&round(ok, &["north", "south"]), &[], t(0));
    assert!(!e.publishable);
    let e = en.evaluate(&round(ok, &["south"]), &[], t(10));
    assert!(e.publishable);
    assert_eq!(enabled(&e), [true, true, true]);
}

#[test]
fn when_every_host_fails_the_best_one_stays_enabled_and_fail_open_is_raised() {
    // cdn-bak fails a little less: it is the one kept.
    fn mostly_502(
        host: &str,
        _: &str,
        _: &str,
        resolver: &str,
        edge: u8,
    ) -> Option<(F, Option<u16>)> {
        (host != "cdn-bak" || resolver == "isp" || edge == 1).then_some((F::HttpStatus, Some(502)))
    }
    let mut en = engine();
    let mut last = None;
    for i in 0..3 {
        last = Some(en.evaluate(&round(mostly_502, &[]), &[], t(i * 10)));
    }
    let e = last.unwrap();
    assert_eq!(enabled(&e), [false, false, true]);
    assert_eq!(e.hosts["cdn-bak"].reason, Some(Reason::FailOpen));
    assert!(reasons(&e).contains(&(Some("cdn-bak".into()), Reason::FailOpen)));
}

#[test]
fn a_path_broken_at_the_origin_flips_nothing_and_raises_one_origin_event() {
    fn product_broken(_: &str, path: &str, _: &str, _: &str, _: u8) -> Option<(F, Option<u16>)> {
        path.starts_with("/product")
            .then_some((F::HttpStatus, Some(504)))
    }
    let mut en = engine();
    let mut origin = 0;
    for i in 0..8 {
        let e = en.evaluate(&round(product_broken, &[]), &[], t(i * 10));
        assert!(!e.changed);
        origin += e
            .events
            .iter()
            .filter(|ev| ev.reason == Reason::OriginFault)
            .count();
    }
    assert_eq!(origin, 1);
}

#[test]
fn one_dead_edge_degrades_its_host_without_disabling_it() {
    fn edge_dead(host: &str, _: &str, region: &str, _: &str, edge: u8) -> Option<(F, Option<u16>)> {
        (host == "cdn" && region == "east" && edge == 2).then_some((F::TcpRefused, None))
    }
    let mut en = engine();
    let mut degraded = Vec::new();
    for i in 0..8 {
        let e = en.evaluate(&round(edge_dead, &[]), &[], t(i * 10));
        assert!(!e.changed);
        degraded.extend(
            e.events
                .into_iter()
                .filter(|ev| ev.reason == Reason::Degraded),
        );
    }
    assert_eq!(degraded.len(), 1);
    assert_eq!(degraded[0].host.as_deref(), Some("cdn"));
    assert!(
        degraded[0].detail.contains("edge 127.21.1.2 (east)"),
        "{}",
        degraded[0].detail
    );
}

#[test]
fn a_stale_resolver_is_reported_with_its_scope() {
    fn stale(host: &str, _: &str, region: &str, resolver: &str, _: u8) -> Option<(F, Option<u16>)> {
        (host == "cdn-bak" && region == "north" && resolver == "isp")
            .then_some((F::TcpRefused, None))
    }
    let mut en = engine();
    let e = en.evaluate(&round(stale, &[]), &[], t(0));
    let ev = e
        .events
        .iter()
        .find(|ev| ev.reason == Reason::Degraded)
        .expect("a degraded event");
    assert!(ev.detail.contains("resolver north/isp"), "{}", ev.detail);
}

#[test]
fn http_4xx_is_recorded_but_is_not_a_cdn_failure() {
    fn forbidden(_: &str, _: &str, _: &str, _: &str, _: u8) -> Option<(F, Option<u16>)> {
        Some((F::HttpStatus, Some(403)))
    }
    let mut en = engine();
    for i in 0..6 {
        let e = en.evaluate(&round(forbidden, &[]), &[], t(i * 10));
        assert!(!e.changed);
    }
}

#[test]
fn a_recalled_memory_keeps_a_running_hold_and_a_stale_one_keeps_the_hold_but_not_the_rounds() {
    let mut en = engine();
    // Disabled at t=20, hold 60 s (to t=80).
    for i in 0..3 {
        en.evaluate(&round(alpha_502, &[]), &[], t(i * 10));
    }
    let memory = en.memory();
    assert_eq!(memory.hosts["cdn"].hold_until, Some(t(80)));
    let text = serde_json::to_string(&memory).unwrap();
    let mut again = engine();
    again.recall(serde_json::from_str(&text).unwrap(), true);
    assert_eq!(again.memory(), memory, "the memory round-trips whole");
    let back = (3..20)
        .map(|i| (i, again.evaluate(&round(ok, &[]), &[], t(i * 10))))
        .find(|(_, e)| e.hosts["cdn"].enabled)
        .map(|(i, _)| i);
    assert_eq!(
        back,
        Some(8),
        "back at t=80, when the hold ends, not after three ok rounds"
    );
    // A stale memory: the hold and the reason stay, the rounds go.
    let mut stale = engine();
    stale.recall(memory, false);
    let m = stale.memory();
    assert_eq!(m.hosts["cdn"].hold_until, Some(t(80)));
    assert_eq!(m.hosts["cdn"].consecutive_disables, 1);
    assert!(!m.hosts["cdn"].enabled);
    assert!(m.hosts["cdn"].regions.is_empty());
}

#[test]
fn a_sample_is_stored_as_its_text_and_read_back_unchanged() {
    let sample = Sample {
        host: "cdn".into(),
        region: "east".into(),
        resolver: "isp".into(),
        edge: Some("127.21.1.1".parse().unwrap()),
        path: "/image/p.jpg".into(),
        class: F::HttpStatus,
        status: Some(502),
    };
    let json = serde_json::to_string(&vec![sample.clone()]).unwrap();
    assert_eq!(
        json,
        r#"["cdn east/isp 127.21.1.1 /image/p.jpg http_status 502"]"#
    );
    assert_eq!(
        serde_json::from_str::<Vec<Sample>>(&json).unwrap(),
        [sample]
    );
    for text in [
        "cdn north/public - /product/p.json tcp_refused",
        "cdn-bak south/isp 127.22.3.2 /a path with spaces dns_timeout",
    ] {
        let parsed: Sample = text.parse().unwrap();
        assert_eq!(parsed.to_string(), text);
    }
    assert!("cdn east/isp".parse::<Sample>().is_err());
}
