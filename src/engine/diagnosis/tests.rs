use std::collections::BTreeSet;

use super::super::tests::{Fault, engine, round, t};
use super::attribute::prefix_of;
use super::*;
use crate::engine::{Evaluation, Reason};
use crate::model::{FailureClass as F, Phase};

type Hit = Option<(F, Option<u16>)>;

fn evaluate(fault: Fault, invalid: &[&str]) -> Evaluation {
    engine().evaluate(&round(fault, invalid), &[], t(0))
}

fn scopes(e: &Evaluation) -> Vec<String> {
    e.diagnoses.iter().map(|d| d.scope.to_string()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn alpha(host: &str) -> bool {
    host == "cdn" || host == "cdn-ss"
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn both_edges_of_a_vendor_in_one_region_are_that_vendor_in_that_region_once() {
    fn both_edges(host: &str, _: &str, region: &str, _: &str, edge: u8) -> Hit {
        (alpha(host) && region == "east" && edge <= 2).then_some((F::HttpStatus, Some(502)))
    }
    let e = evaluate(both_edges, &[]);
    assert_eq!(scopes(&e), ["alpha in east"]);
    let d = &e.diagnoses[0];
    assert_eq!(
        d.scope,
        FaultScope::RegionVendor {
            region: "east".into(),
            vendor: "alpha".into()
        }
    );
    // 2 hosts × 3 paths × 2 resolvers × 2 edges, every one failed.
    assert_eq!((d.failed(), d.total()), (24, 24));
    assert_eq!(d.hosts, set(&["cdn", "cdn-ss"]));
    assert_eq!(d.edges, [ip("127.21.1.1"), ip("127.21.1.2")].into());
    assert_eq!(d.regions.keys().collect::<Vec<_>>(), ["east"]);
    assert_eq!(d.resolvers.len(), 2);
    assert_eq!(d.paths.len(), 3);
    let class = d.classes.as_slice();
    assert_eq!(class.len(), 1);
    assert_eq!(
        (class[0].outcome.to_string(), class[0].phase, class[0].count),
        ("http_status 502".into(), Some(Phase::Processing), 24)
    );
    let degraded: Vec<_> = e
        .events
        .iter()
        .filter(|ev| ev.reason == Reason::Degraded)
        .collect();
    assert_eq!(degraded.len(), 1, "one event, not one per edge per host");
    assert_eq!(degraded[0].host, None, "it touches two hosts");
    assert_eq!(
        degraded[0].detail,
        "alpha in east fails: http_status 502 in processing, 24 of 24 results, on cdn and cdn-ss"
    );
    assert_eq!(degraded[0].evidence["east"].failed, 24);
    assert!(!degraded[0].samples.is_empty());
}

#[test]
fn every_region_of_a_vendor_is_the_vendor() {
    fn all_alpha(host: &str, _: &str, _: &str, _: &str, _: u8) -> Hit {
        alpha(host).then_some((F::TcpRefused, None))
    }
    let e = evaluate(all_alpha, &[]);
    assert_eq!(scopes(&e), ["vendor alpha in every region"]);
    let d = &e.diagnoses[0];
    assert_eq!(d.regions.len(), 3);
    assert_eq!(d.classes[0].phase, Some(Phase::Connect));
    assert_eq!(d.classes[0].outcome.to_string(), "tcp_refused");
}

#[test]
fn one_dead_edge_on_two_hosts_of_a_vendor_is_one_edge() {
    fn edge_one(host: &str, _: &str, region: &str, _: &str, edge: u8) -> Hit {
        (alpha(host) && region == "east" && edge == 1).then_some((F::TcpRefused, None))
    }
    let e = evaluate(edge_one, &[]);
    assert_eq!(scopes(&e), ["edge 127.21.1.1 (east)"]);
    assert_eq!(e.diagnoses[0].hosts, set(&["cdn", "cdn-ss"]));
    assert_eq!((e.diagnoses[0].failed(), e.diagnoses[0].total()), (12, 12));
}

#[test]
fn a_resolver_failing_for_every_host_is_one_resolver() {
    fn isp(_: &str, _: &str, region: &str, resolver: &str, _: u8) -> Hit {
        (region == "north" && resolver == "isp").then_some((F::DnsTimeout, None))
    }
    let e = evaluate(isp, &[]);
    assert_eq!(scopes(&e), ["resolver north/isp"]);
    let d = &e.diagnoses[0];
    assert_eq!(d.hosts, set(&["cdn", "cdn-bak", "cdn-ss"]));
    assert_eq!(d.resolvers, [("north".into(), "isp".into())].into());
    assert_eq!(d.classes[0].phase, Some(Phase::Resolve));
}

#[test]
fn a_prefix_broken_on_one_vendor_is_that_prefix_on_that_vendor_not_a_degraded_host() {
    fn image(host: &str, path: &str, _: &str, _: &str, _: u8) -> Hit {
        (alpha(host) && path.starts_with("/image/")).then_some((F::HttpStatus, Some(502)))
    }
    let e = evaluate(image, &[]);
    assert_eq!(scopes(&e), ["prefix /image on alpha"]);
    let d = &e.diagnoses[0];
    assert_eq!(d.paths, set(&["/image/p.jpg"]));
    assert_eq!(d.regions.len(), 3);
    assert_eq!(d.hosts, set(&["cdn", "cdn-ss"]));
    let degraded = e.events.iter().filter(|ev| ev.reason == Reason::Degraded);
    assert_eq!(degraded.count(), 1);
}

#[test]
fn a_path_failing_on_every_vendor_is_the_origin_only() {
    fn product(_: &str, path: &str, _: &str, _: &str, _: u8) -> Hit {
        path.starts_with("/product")
            .then_some((F::HttpStatus, Some(504)))
    }
    let e = evaluate(product, &[]);
    assert_eq!(scopes(&e), ["path /product/p.json on every vendor"]);
    let reasons: Vec<Reason> = e.events.iter().map(|ev| ev.reason).collect();
    assert_eq!(reasons, [Reason::OriginFault]);
}

#[test]
fn a_region_whose_control_targets_fail_is_its_probe_network_not_the_cdn() {
    fn south_down(_: &str, _: &str, region: &str, _: &str, _: u8) -> Hit {
        (region == "south").then_some((F::TcpTimeout, None))
    }
    let e = evaluate(south_down, &["south"]);
    assert_eq!(scopes(&e), ["the probe network of south"]);
    assert_eq!(e.diagnoses[0].failed(), e.diagnoses[0].total());
    let ev: Vec<_> = e
        .events
        .iter()
        .filter(|ev| ev.reason == Reason::ProbeNetwork)
        .collect();
    assert_eq!(ev.len(), 1);
    assert!(ev[0].detail.contains("do not vote"), "{}", ev[0].detail);
}

#[test]
fn failures_no_whole_scope_explains_are_left_undiagnosed() {
    fn flaky(host: &str, path: &str, region: &str, resolver: &str, edge: u8) -> Hit {
        (alpha(host)
            && region == "east"
            && resolver == "isp"
            && edge == 1
            && path != "/image/p.jpg")
            .then_some((F::HttpTimeout, None))
    }
    assert!(evaluate(flaky, &[]).diagnoses.is_empty());
}

#[test]
fn a_scope_is_raised_once_while_it_holds_and_again_when_it_widens() {
    fn edge_one(host: &str, _: &str, region: &str, _: &str, edge: u8) -> Hit {
        (alpha(host) && region == "east" && edge == 1).then_some((F::TcpRefused, None))
    }
    fn both(host: &str, _: &str, region: &str, _: &str, _: u8) -> Hit {
        (alpha(host) && region == "east").then_some((F::TcpRefused, None))
    }
    let mut en = engine();
    let mut details = Vec::new();
    for (i, fault) in [edge_one as Fault, edge_one, edge_one, both, both]
        .iter()
        .enumerate()
    {
        let e = en.evaluate(&round(*fault, &[]), &[], t(i as i64 * 10));
        details.extend(
            e.events
                .into_iter()
                .filter(|ev| ev.reason == Reason::Degraded)
                .map(|ev| ev.detail),
        );
    }
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(details[0].starts_with("edge 127.21.1.1 (east) fails"));
    assert!(details[1].starts_with("alpha in east fails"));
}

#[test]
fn every_scope_reads_as_on_call_says_it() {
    let s = |scope: FaultScope| (scope.kind(), scope.to_string());
    let east = || "cn-east".to_string();
    let alpha = || "alpha".to_string();
    assert_eq!(
        [
            s(FaultScope::Edge {
                region: east(),
                edge: ip("127.21.1.1")
            }),
            s(FaultScope::Resolver {
                region: east(),
                resolver: "isp".into()
            }),
            s(FaultScope::RegionVendor {
                region: east(),
                vendor: alpha()
            }),
            s(FaultScope::Vendor { vendor: alpha() }),
            s(FaultScope::PrefixVendor {
                prefix: "/image".into(),
                vendor: alpha()
            }),
            s(FaultScope::Origin {
                path: "/product/probe.json".into()
            }),
            s(FaultScope::ProbeNetwork { region: east() }),
        ],
        [
            ("edge", "edge 127.21.1.1 (cn-east)".to_string()),
            ("resolver", "resolver cn-east/isp".into()),
            ("region_vendor", "alpha in cn-east".into()),
            ("vendor", "vendor alpha in every region".into()),
            ("prefix_vendor", "prefix /image on alpha".into()),
            ("origin", "path /product/probe.json on every vendor".into()),
            ("probe_network", "the probe network of cn-east".into()),
        ]
    );
}

#[test]
fn a_prefix_is_the_first_path_segment() {
    assert_eq!(prefix_of("/image/probe.jpg"), "/image");
    assert_eq!(prefix_of("/image/a/b.jpg"), "/image");
    assert_eq!(prefix_of("/probe.jpg"), "/probe.jpg");
    assert_eq!(prefix_of("/"), "/");
    assert_eq!(prefix_of(""), "");
}
