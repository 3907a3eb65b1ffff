use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::engine::{Diagnosis, Event, RegionCounts};
use crate::model::{FailureClass, Outcome, Phase};

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
}

fn cx(s: i64) -> Context {
    Context {
        now: t(s),
        counts_round: true,
        rise_rounds: 3,
        quorum: 2,
        reopen_within: Duration::seconds(600),
    }
}

fn edge(region: &str, ip: &str) -> FaultScope {
    FaultScope::Edge {
        region: region.into(),
        edge: ip.parse().unwrap(),
    }
}

fn region_vendor(region: &str, vendor: &str) -> FaultScope {
    FaultScope::RegionVendor {
        region: region.into(),
        vendor: vendor.into(),
    }
}

fn vendor(vendor: &str) -> FaultScope {
    FaultScope::Vendor {
        vendor: vendor.into(),
    }
}

/// A diagnosis of `scope` on `hosts`, failing in `regions` with 502s.
fn diagnosis(scope: FaultScope, hosts: &[&str], regions: &[&str]) -> Diagnosis {
    let edges: BTreeSet<IpAddr> = match &scope {
        FaultScope::Edge { edge, .. } => [*edge].into(),
        _ => BTreeSet::new(),
    };
    Diagnosis {
        scope,
        classes: vec![ClassCount {
            outcome: Outcome::new(FailureClass::HttpStatus, Some(502)),
            phase: Some(Phase::Processing),
            count: 4,
        }],
        regions: regions
            .iter()
            .map(|r| {
                let counts = RegionCounts {
                    ok: 0,
                    failed: 4,
                    invalid: false,
                };
                (r.to_string(), counts)
            })
            .collect::<BTreeMap<_, _>>(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        paths: ["/a.png".to_string()].into(),
        resolvers: BTreeSet::new(),
        edges,
        samples: Vec::new(),
    }
}

fn flip(s: i64, host: &str, enabled: bool, reason: Reason) -> Event {
    Event {
        at: t(s),
        host: Some(host.into()),
        old_enabled: Some(!enabled),
        new_enabled: Some(enabled),
        reason,
        detail: String::new(),
        evidence: BTreeMap::new(),
        samples: Vec::new(),
        incident: None,
        prefix: None,
    }
}

fn open(tr: &Tracker) -> Vec<(i64, String)> {
    tr.incidents()
        .filter(|i| i.state == IncidentState::Open)
        .map(|i| (i.id, i.scope.to_string()))
        .collect()
}

#[test]
fn every_scope_kind_is_listed_once() {
    let scopes = [
        edge("east", "127.0.0.1"),
        FaultScope::Resolver {
            region: "east".into(),
            resolver: "isp".into(),
        },
        region_vendor("east", "alpha"),
        vendor("alpha"),
        FaultScope::PrefixVendor {
            prefix: "/image".into(),
            vendor: "alpha".into(),
        },
        FaultScope::Origin {
            path: "/image/a.jpg".into(),
        },
        FaultScope::ProbeNetwork {
            region: "east".into(),
        },
    ];
    let kinds: Vec<&str> = scopes.iter().map(FaultScope::kind).collect();
    assert_eq!(kinds, FaultScope::KINDS);
}

#[test]
fn two_edges_then_their_region_then_the_vendor_are_one_incident() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let e1 = diagnosis(edge("east", "127.21.1.1"), &["cdn"], &["east"]);
    tr.observe(std::slice::from_ref(&e1), &[], cx(0));
    assert_eq!(open(&tr), [(1, "edge 127.21.1.1 (east)".into())]);
    // Both edges now: the region on the vendor, same incident, widened.
    let rv = diagnosis(
        region_vendor("east", "alpha"),
        &["cdn", "cdn-ss"],
        &["east"],
    );
    tr.observe(&[rv], &[], cx(10));
    let v = diagnosis(vendor("alpha"), &["cdn", "cdn-ss"], &["east", "west"]);
    tr.observe(&[v], &[], cx(20));
    assert_eq!(open(&tr), [(1, "vendor alpha in every region".into())]);
    let i = tr.get(1).unwrap();
    assert_eq!(i.regions, ["east".to_string(), "west".into()].into());
    let what: Vec<&Happening> = i.timeline.iter().map(|e| &e.what).collect();
    assert!(matches!(what[0], Happening::Opened { .. }));
    assert!(
        matches!(
            what[1],
            Happening::Decided(Decision::Refused {
                refusal: Refusal::BelowQuorum,
                ..
            })
        ),
        "one edge in one region of a quorum of two: {what:?}"
    );
    assert!(matches!(what[2], Happening::Widened { .. }));
    assert!(matches!(what[3], Happening::Widened { .. }));
}

#[test]
fn it_resolves_after_rise_rounds_clean_rounds_and_not_before() {
    let mut tr = Tracker::new(Vec::new(), 1);
    tr.observe(
        &[diagnosis(vendor("alpha"), &["cdn"], &["east", "west"])],
        &[],
        cx(0),
    );
    tr.observe(&[], &[], cx(10));
    tr.observe(&[], &[], cx(20));
    assert_eq!(open(&tr).len(), 1, "two clean rounds of three");
    let o = tr.observe(&[], &[], cx(30));
    assert!(open(&tr).is_empty());
    assert!(o.changed.contains(&1));
    let i = tr.get(1).unwrap();
    assert_eq!(
        (i.state, i.resolved_at),
        (IncidentState::Resolved, Some(t(30)))
    );
}

#[test]
fn a_flapping_edge_is_one_incident_not_one_per_flap() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let d = diagnosis(edge("east", "127.21.1.1"), &["cdn"], &["east"]);
    let mut s = 0;
    for _ in 0..5 {
        // Fails one round, then passes four (resolving after three).
        tr.observe(std::slice::from_ref(&d), &[], cx(s));
        for _ in 0..4 {
            s += 10;
            tr.observe(&[], &[], cx(s));
        }
        s += 10;
    }
    let ids: Vec<i64> = tr.incidents().map(|i| i.id).collect();
    assert_eq!(ids, [1], "reopened each time, never a new one");
    let reopened = tr.get(1).unwrap().timeline.iter();
    let reopened = reopened.filter(|e| e.what == Happening::Reopened).count();
    assert_eq!(reopened, 4);
}

#[test]
fn confirmations_between_rounds_count_no_clean_round() {
    let mut tr = Tracker::new(Vec::new(), 1);
    tr.observe(
        &[diagnosis(vendor("alpha"), &["cdn"], &["east", "west"])],
        &[],
        cx(0),
    );
    for s in 1..=5 {
        let amend = Context {
            counts_round: false,
            ..cx(s)
        };
        tr.observe(&[], &[], amend);
    }
    assert_eq!(open(&tr).len(), 1);
    assert_eq!(tr.get(1).unwrap().clean_rounds, 0);
}

#[test]
fn the_same_scope_after_the_reopen_window_is_a_new_incident() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let d = diagnosis(edge("east", "127.21.1.1"), &["cdn"], &["east"]);
    tr.observe(std::slice::from_ref(&d), &[], cx(0));
    for s in [10, 20, 30] {
        tr.observe(&[], &[], cx(s));
    }
    tr.observe(&[d], &[], cx(30 + 601));
    assert_eq!(open(&tr), [(2, "edge 127.21.1.1 (east)".into())]);
}

#[test]
fn two_regions_of_one_vendor_merge_when_the_vendor_fails_everywhere() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let east = diagnosis(region_vendor("east", "alpha"), &["cdn"], &["east"]);
    let west = diagnosis(region_vendor("west", "alpha"), &["cdn"], &["west"]);
    tr.observe(&[east, west], &[], cx(0));
    assert_eq!(open(&tr).len(), 2, "two regions, two faults so far");
    let v = diagnosis(vendor("alpha"), &["cdn"], &["east", "west"]);
    let o = tr.observe(&[v], &[], cx(10));
    assert_eq!(open(&tr), [(1, "vendor alpha in every region".into())]);
    assert!(o.changed.contains(&2));
    let two = tr.get(2).unwrap();
    assert_eq!(two.state, IncidentState::Resolved);
    assert!(
        two.timeline
            .iter()
            .any(|e| e.what == Happening::MergedInto { incident: 1 })
    );
    assert_eq!(tr.get(1).unwrap().regions.len(), 2);
}

#[test]
fn a_resolver_and_an_edge_in_one_region_are_two_faults() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let resolver = FaultScope::Resolver {
        region: "east".into(),
        resolver: "isp".into(),
    };
    tr.observe(
        &[
            diagnosis(resolver, &["cdn"], &["east"]),
            diagnosis(edge("east", "127.21.1.1"), &["cdn"], &["east"]),
        ],
        &[],
        cx(0),
    );
    assert_eq!(open(&tr).len(), 2);
}

/// A vendor failing everywhere, recovering: in a round where only some series still fail, the
/// diagnosis names a prefix or one resolver on its hosts. That is the same fault, not new ones.
#[test]
fn a_recovering_vendor_seen_through_a_prefix_or_a_resolver_stays_one_incident() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let hosts = ["cdn", "cdn-ss"];
    let v = diagnosis(vendor("alpha"), &hosts, &["east", "west"]);
    tr.observe(&[v], &[], cx(0));
    let prefix = |vendor: &str| FaultScope::PrefixVendor {
        prefix: "/image".into(),
        vendor: vendor.into(),
    };
    let resolver = |region: &str| FaultScope::Resolver {
        region: region.into(),
        resolver: "isp".into(),
    };
    tr.observe(
        &[
            diagnosis(prefix("alpha"), &hosts, &["east"]),
            diagnosis(resolver("west"), &["cdn-ss"], &["west"]),
        ],
        &[],
        cx(10),
    );
    let scope = [(1, "vendor alpha in every region".to_string())];
    assert_eq!(open(&tr), scope, "what it absorbs never becomes its scope");
    tr.observe(
        &[diagnosis(resolver("east"), &["cdn"], &["east"])],
        &[],
        cx(20),
    );
    assert_eq!(open(&tr), scope);
    // Not the vendor's: a resolver failing on another vendor's host too, in a region the incident
    // never failed in, and a prefix on another vendor.
    tr.observe(
        &[
            diagnosis(resolver("east"), &["cdn", "cdn-bak"], &["east"]),
            diagnosis(resolver("north"), &["cdn"], &["north"]),
            diagnosis(prefix("beta"), &["cdn-bak"], &["east"]),
        ],
        &[],
        cx(30),
    );
    assert_eq!(open(&tr).len(), 4, "{:?}", open(&tr));
}

/// A vendor's incident narrowed to one edge as the vendor recovers (its other edges answer
/// again first) still takes in the vendor's other failures of the next rounds: a prefix on it, a
/// resolver on its hosts, its other region.
#[test]
fn a_vendor_incident_narrowed_to_an_edge_still_takes_in_its_vendor() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let hosts = ["cdn", "cdn-ss"];
    tr.observe(
        &[diagnosis(vendor("alpha"), &hosts, &["east", "west"])],
        &[],
        cx(0),
    );
    tr.observe(
        &[diagnosis(
            edge("west", "127.21.2.2"),
            &["cdn-ss"],
            &["west"],
        )],
        &[],
        cx(10),
    );
    assert_eq!(open(&tr), [(1, "edge 127.21.2.2 (west)".into())]);
    let i = tr.get(1).unwrap();
    assert_eq!(i.widest, Some(vendor("alpha")));
    tr.observe(
        &[
            diagnosis(
                FaultScope::PrefixVendor {
                    prefix: "/image".into(),
                    vendor: "alpha".into(),
                },
                &hosts,
                &["east"],
            ),
            diagnosis(
                FaultScope::Resolver {
                    region: "east".into(),
                    resolver: "isp".into(),
                },
                &["cdn"],
                &["east"],
            ),
            diagnosis(region_vendor("east", "alpha"), &hosts, &["east"]),
        ],
        &[],
        cx(20),
    );
    assert_eq!(open(&tr), [(1, "alpha in east".into())]);
    assert_eq!(tr.get(1).unwrap().widest, Some(vendor("alpha")));
    tr.observe(
        &[diagnosis(vendor("alpha"), &hosts, &["east", "west"])],
        &[],
        cx(30),
    );
    assert_eq!(
        tr.get(1).unwrap().widest,
        None,
        "its scope is its widest again"
    );
    assert_eq!(tr.incidents().count(), 1);
}

#[test]
fn decisions_are_linked_and_take_the_version_they_published() {
    let mut tr = Tracker::new(Vec::new(), 7);
    let d = diagnosis(vendor("alpha"), &["cdn", "cdn-ss"], &["east", "west"]);
    tr.observe(std::slice::from_ref(&d), &[], cx(0));
    let events = [
        flip(10, "cdn", false, Reason::VendorWide),
        flip(10, "cdn-ss", false, Reason::VendorWide),
        flip(10, "other", false, Reason::QuorumFall),
    ];
    let o = tr.observe(&[d], &events, cx(10));
    assert_eq!(o.links, [Some(7), Some(7), None]);
    tr.published(&o, 42, t(10));
    let i = tr.get(7).unwrap();
    assert_eq!(i.versions(), [42].into());
    assert_eq!(i.decisions.len(), 2);
    // The host comes back after the incident resolved: still its decision.
    for s in [20, 30, 40] {
        tr.observe(&[], &[], cx(s));
    }
    let o = tr.observe(&[], &[flip(100, "cdn", true, Reason::Rise)], cx(100));
    assert_eq!(o.links, [Some(7)]);
    tr.published(&o, 43, t(100));
    assert_eq!(tr.get(7).unwrap().versions(), [42, 43].into());
}

#[test]
fn a_freeze_is_a_refusal_on_every_open_incident_once() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let d = diagnosis(vendor("alpha"), &["cdn"], &["east", "west"]);
    let freeze = Event {
        host: None,
        old_enabled: None,
        new_enabled: None,
        reason: Reason::Freeze,
        ..flip(0, "x", false, Reason::Freeze)
    };
    tr.observe(
        std::slice::from_ref(&d),
        std::slice::from_ref(&freeze),
        cx(0),
    );
    tr.observe(&[d], &[freeze], cx(10));
    let refusals = tr.get(1).unwrap().decisions.clone();
    let freeze = Decision::Refused {
        refusal: Refusal::Freeze,
        host: None,
    };
    assert_eq!(refusals, [freeze]);
}

#[test]
fn a_kept_tracker_continues_its_incidents_and_numbers() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let d = diagnosis(vendor("alpha"), &["cdn"], &["east", "west"]);
    tr.observe(std::slice::from_ref(&d), &[], cx(0));
    let freeze = Event {
        host: None,
        old_enabled: None,
        new_enabled: None,
        ..flip(0, "x", false, Reason::Freeze)
    };
    let flips = [flip(0, "cdn", false, Reason::VendorWide), freeze];
    let o = tr.observe(std::slice::from_ref(&d), &flips, cx(5));
    tr.published(&o, 3, t(5));
    let kept: Vec<Incident> = tr.incidents().cloned().collect();
    assert!(kept[0].timeline.len() >= 3, "{:?}", kept[0].timeline);
    let text = serde_json::to_string(&kept).unwrap();
    let back: Vec<Incident> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, kept);
    let mut again = Tracker::new(back, 1);
    again.observe(&[d], &[], cx(10));
    assert_eq!(open(&again), [(1, "vendor alpha in every region".into())]);
    let other = diagnosis(FaultScope::ProbeNetwork { region: "x".into() }, &[], &["x"]);
    again.observe(&[other], &[], cx(20));
    assert!(
        again.get(2).is_some(),
        "the next number follows the kept ones"
    );
}

#[test]
fn entries_not_told_yet_are_never_cut() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let narrow = diagnosis(edge("east", "127.21.1.1"), &["cdn"], &["east"]);
    let wide = diagnosis(region_vendor("east", "alpha"), &["cdn"], &["east"]);
    for n in 0..300 {
        let d = if n % 2 == 0 { &narrow } else { &wide };
        tr.observe(std::slice::from_ref(d), &[], cx(n * 10));
    }
    let i = tr.get(1).unwrap();
    assert_eq!(i.timeline_dropped, 0, "nothing was told: nothing is cut");
    assert_eq!(i.timeline.len(), i.entries_ever());
    let mut i = i.clone();
    i.told = i.entries_ever() - 5;
    i.trim();
    assert_eq!(
        i.timeline.len(),
        TIMELINE_KEPT,
        "cut once told, the untold five kept"
    );
    assert_eq!(i.entries_from(i.told).count(), 5);
}

#[test]
fn a_long_timeline_keeps_its_beginning_and_its_end() {
    let mut tr = Tracker::new(Vec::new(), 1);
    let narrow = diagnosis(edge("east", "127.21.1.1"), &["cdn"], &["east"]);
    let wide = diagnosis(region_vendor("east", "alpha"), &["cdn"], &["east"]);
    for n in 0..300 {
        let d = if n % 2 == 0 { &narrow } else { &wide };
        tr.observe(std::slice::from_ref(d), &[], cx(n * 10));
        // Told after each round, as the decision loop does.
        let i = tr.get_mut(1).unwrap();
        i.told = i.entries_ever();
        i.trim();
    }
    let i = tr.get(1).unwrap();
    assert_eq!(i.timeline.len(), TIMELINE_KEPT);
    assert!(i.timeline_dropped > 0);
    assert!(matches!(i.timeline[0].what, Happening::Opened { .. }));
    assert_eq!(i.timeline.last().unwrap().at, t(2990));
}
