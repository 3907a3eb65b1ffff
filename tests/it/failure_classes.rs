//! Every failure class, produced by a real lab fault over loopback (DNS over UDP, TCP, TLS with the
//! lab's CA, HTTP), and classified with the right phase; scopes and ratios (timing accuracy: `phase_timing`).

use std::net::{IpAddr, Ipv4Addr};

use crate::harness::{TestLab, classes};
use cdnwatch::model::{FailureClass as C, Phase};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_healthy_lab_passes_every_probe_from_every_region_through_every_resolver() {
    let s = TestLab::spawn().await;
    for region in ["cn-east", "cn-north", "cn-south"] {
        for resolver in ["isp", "public"] {
            for host in ["cdn.shop.test", "cdn-ss.shop.test", "cdn-bak.shop.test"] {
                for path in [
                    "/image/probe.jpg",
                    "/product/probe.json",
                    "/community/probe.css",
                ] {
                    let r = s.probe(host, path, region, resolver).await;
                    assert_eq!(
                        r.results.len(),
                        2,
                        "{host}{path} {region}/{resolver}: {r:?}"
                    );
                    for e in &r.results {
                        assert!(e.ok(), "{host}{path} {region}/{resolver}: {:?}", e.failure);
                        assert_eq!(e.status, Some(200));
                        let cert = e.cert.as_ref().expect("certificate recorded");
                        assert!(cert.verified);
                        assert!(
                            (363..=365).contains(&cert.days_left(chrono::Utc::now())),
                            "{cert:?}"
                        );
                    }
                }
            }
        }
    }
    // Each region's resolvers answer with that region's own edges, behind the vendor's CNAME.
    let r = s
        .probe(
            "cdn-bak.shop.test",
            "/image/probe.jpg",
            "cn-north",
            "public",
        )
        .await;
    let answer = r.dns.answer.as_ref().unwrap();
    assert_eq!(answer.cname_chain, ["cdn-bak.shop.test.beta-cdn.test"]);
    assert_eq!(answer.ips, [ip("127.22.2.1"), ip("127.22.2.2")]);
    s.shutdown().await;
}

#[tokio::test]
async fn no_answer_is_cached_between_probes() {
    let s = TestLab::spawn().await;
    let before = s.lab.dns_queries();
    for _ in 0..3 {
        assert!(s.probe_primary().await.results.iter().all(|e| e.ok()));
    }
    assert_eq!(
        s.lab.dns_queries() - before,
        3,
        "each probe asks the resolver itself"
    );
    s.shutdown().await;
}

struct Case {
    fault: &'static str,
    path: &'static str,
    class: C,
    phase: Phase,
}

const fn case(fault: &'static str, class: C, phase: Phase) -> Case {
    Case {
        fault,
        path: "/image/probe.jpg",
        class,
        phase,
    }
}

#[tokio::test]
async fn every_failure_class_comes_from_a_lab_fault_and_is_classified_in_its_phase() {
    let cases = [
        case(r#"{"kind":"dns_timeout"}"#, C::DnsTimeout, Phase::Resolve),
        case(r#"{"kind":"dns_servfail"}"#, C::DnsServfail, Phase::Resolve),
        case(r#"{"kind":"dns_nxdomain"}"#, C::DnsNxdomain, Phase::Resolve),
        case(r#"{"kind":"dns_refused"}"#, C::DnsRefused, Phase::Resolve),
        case(r#"{"kind":"dns_empty"}"#, C::DnsNoAnswer, Phase::Resolve),
        case(r#"{"kind":"stale_dns"}"#, C::TcpRefused, Phase::Connect),
        case(
            r#"{"kind":"refuse","vendor":"alpha","region":"cn-east"}"#,
            C::TcpRefused,
            Phase::Connect,
        ),
        case(
            r#"{"kind":"blackhole","vendor":"alpha"}"#,
            C::TlsTimeout,
            Phase::Tls,
        ),
        case(r#"{"kind":"cert_expired"}"#, C::TlsCertExpired, Phase::Tls),
        case(
            r#"{"kind":"cert_not_yet_valid"}"#,
            C::TlsCertNotYetValid,
            Phase::Tls,
        ),
        case(
            r#"{"kind":"cert_wrong_name"}"#,
            C::TlsCertNameMismatch,
            Phase::Tls,
        ),
        case(
            r#"{"kind":"cert_untrusted"}"#,
            C::TlsCertUntrusted,
            Phase::Tls,
        ),
        case(r#"{"kind":"reset"}"#, C::ConnReset, Phase::Processing),
        case(
            r#"{"kind":"http_garbage","host":"cdn.shop.test"}"#,
            C::HttpProtocol,
            Phase::Processing,
        ),
        case(
            r#"{"kind":"http_status","status":502}"#,
            C::HttpStatus,
            Phase::Processing,
        ),
        case(
            r#"{"kind":"delay","ms":1500}"#,
            C::HttpTimeout,
            Phase::Processing,
        ),
        case(
            r#"{"kind":"blackhole","path_prefix":"/image"}"#,
            C::HttpTimeout,
            Phase::Processing,
        ),
        case(
            r#"{"kind":"slow_body","bytes_per_sec":1000}"#,
            C::HttpTimeout,
            Phase::Transfer,
        ),
        case(
            r#"{"kind":"wrong_content"}"#,
            C::ContentMismatch,
            Phase::Transfer,
        ),
        case(
            r#"{"kind":"endless_body"}"#,
            C::BodyTooLarge,
            Phase::Transfer,
        ),
        case(
            r#"{"kind":"huge_headers"}"#,
            C::HeadersTooLarge,
            Phase::Processing,
        ),
    ];
    // Half the test timeouts: eight of the cases wait for one, and loopback needs far less.
    let s = TestLab::spawn_with(|c| {
        let t = &mut c.probe.timeouts;
        (t.dns_ms, t.connect_ms, t.tls_ms) = (300, 400, 400);
        (t.first_byte_ms, t.transfer_ms) = (400, 750);
    })
    .await;
    let mut wrong = Vec::new();
    for c in &cases {
        s.fault(c.fault).await;
        let r = s.probe("cdn.shop.test", c.path, "cn-east", "isp").await;
        for e in &r.results {
            let got = e.failure.as_ref().map(|f| (f.class, f.phase));
            if got != Some((c.class, c.phase)) {
                wrong.push(format!(
                    "{}: expected {:?} in {:?}, got {:?}",
                    c.fault, c.class, c.phase, e.failure
                ));
            }
        }
        s.clear().await;
        // The lab is healthy again once the fault is gone.
        let again = s.probe_primary().await;
        assert!(
            again.results.iter().all(|e| e.ok()),
            "after {}: {:?}",
            c.fault,
            again.results
        );
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
    s.shutdown().await;
}

#[tokio::test]
async fn failures_name_their_edge_the_status_and_the_certificate() {
    let s = TestLab::spawn().await;
    s.fault(r#"{"kind":"http_status","status":504,"edge":"127.21.1.2"}"#)
        .await;
    let r = s.probe_primary().await;
    let by_edge: Vec<_> = r
        .results
        .iter()
        .map(|e| (e.edge_ip, e.status, e.failure_class()))
        .collect();
    assert_eq!(
        by_edge,
        [
            (Some(ip("127.21.1.1")), Some(200), None),
            (Some(ip("127.21.1.2")), Some(504), Some(C::HttpStatus))
        ]
    );
    s.clear().await;

    s.fault(r#"{"kind":"stale_dns","resolver":"public"}"#).await;
    let isp = s.probe_primary().await;
    let public = s
        .probe("cdn.shop.test", "/image/probe.jpg", "cn-east", "public")
        .await;
    assert_eq!(classes(&isp), [None, None]);
    assert_eq!(public.results.len(), 1);
    assert_eq!(
        public.results[0].edge_ip,
        Some(ip("127.21.1.9")),
        "the stale answer is the retired edge"
    );
    assert_eq!(public.results[0].failure_class(), Some(C::TcpRefused));
    s.clear().await;

    // An expired certificate is still read: its notAfter is in the past.
    s.fault(r#"{"kind":"cert_expired","host":"cdn.shop.test"}"#)
        .await;
    let r = s.probe_primary().await;
    let cert = r.results[0]
        .cert
        .as_ref()
        .expect("certificate read despite the failure");
    assert!(!cert.verified);
    assert!(cert.days_left(chrono::Utc::now()) < 0);
    s.clear().await;

    // A certificate expiring soon is not a failure, and its days are reported.
    s.fault(r#"{"kind":"cert_expiring","days":5,"host":"cdn.shop.test"}"#)
        .await;
    let r = s.probe_primary().await;
    for e in &r.results {
        assert!(e.ok(), "{:?}", e.failure);
        assert_eq!(e.cert.as_ref().unwrap().days_left(chrono::Utc::now()), 5);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_fault_hits_only_its_scope() {
    let s = TestLab::spawn().await;
    s.fault(r#"{"kind":"http_status","status":502,"vendor":"alpha","region":"cn-east","path_prefix":"/image"}"#).await;
    assert_eq!(
        classes(&s.probe_primary().await),
        [Some(C::HttpStatus), Some(C::HttpStatus)]
    );
    let other_region = s
        .probe("cdn.shop.test", "/image/probe.jpg", "cn-north", "isp")
        .await;
    let other_vendor = s
        .probe("cdn-bak.shop.test", "/image/probe.jpg", "cn-east", "isp")
        .await;
    let other_path = s
        .probe("cdn.shop.test", "/product/probe.json", "cn-east", "isp")
        .await;
    let same_vendor_backup = s
        .probe("cdn-ss.shop.test", "/image/probe.jpg", "cn-east", "public")
        .await;
    assert_eq!(classes(&other_region), [None, None]);
    assert_eq!(classes(&other_vendor), [None, None]);
    assert_eq!(classes(&other_path), [None, None]);
    assert_eq!(
        classes(&same_vendor_backup),
        [Some(C::HttpStatus), Some(C::HttpStatus)],
        "a vendor-wide fault"
    );
    s.clear().await;

    s.fault(r#"{"kind":"dns_servfail","host":"cdn-ss.shop.test","resolver":"isp"}"#)
        .await;
    assert_eq!(
        classes(
            &s.probe("cdn-ss.shop.test", "/image/probe.jpg", "cn-south", "isp")
                .await
        ),
        [Some(C::DnsServfail)]
    );
    assert_eq!(
        classes(
            &s.probe("cdn-ss.shop.test", "/image/probe.jpg", "cn-south", "public")
                .await
        ),
        [None, None]
    );
    assert_eq!(classes(&s.probe_primary().await), [None, None]);
    s.shutdown().await;
}

#[tokio::test]
async fn a_ratio_makes_a_fault_intermittent() {
    let s = TestLab::spawn().await;
    s.fault(r#"{"kind":"http_status","status":503,"host":"cdn.shop.test","ratio":0.5}"#)
        .await;
    let mut failed = 0;
    let mut total = 0;
    for _ in 0..30 {
        for class in classes(&s.probe_primary().await) {
            total += 1;
            failed += usize::from(class == Some(C::HttpStatus));
        }
    }
    // 60 draws at 0.5: outside 15..45 has a probability below 1e-4.
    assert!((15..=45).contains(&failed), "{failed} of {total} failed");
    s.shutdown().await;
}

#[tokio::test]
async fn a_refused_listener_comes_back_when_the_fault_is_lifted() {
    let s = TestLab::spawn().await;
    let id = s.fault(r#"{"kind":"refuse","edge":"127.22.3.1"}"#).await;
    let r = s
        .probe(
            "cdn-bak.shop.test",
            "/product/probe.json",
            "cn-south",
            "isp",
        )
        .await;
    assert_eq!(classes(&r), [Some(C::TcpRefused), None]);
    let resp = s
        .http
        .delete(format!("http://{}/faults/{id}", s.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // The listener is rebound by the lab's task: wait for it.
    let mut ok = false;
    for _ in 0..50 {
        let r = s
            .probe(
                "cdn-bak.shop.test",
                "/product/probe.json",
                "cn-south",
                "isp",
            )
            .await;
        if classes(&r) == [None, None] {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ok, "the edge listens again");
    s.shutdown().await;
}

#[tokio::test]
async fn the_fault_api_refuses_bad_faults_with_the_field_named() {
    let s = TestLab::spawn().await;
    let post = |body: &'static str| {
        let http = s.http.clone();
        let url = format!("http://{}/faults", s.api());
        async move {
            let resp = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    let (status, body) = post(r#"{"kind":"http_status"}"#).await;
    assert_eq!(status, 422);
    assert!(body.contains("`status` is required"), "{body}");
    let (status, body) = post(r#"{"kind":"reset","regoin":"cn-east"}"#).await;
    assert_eq!(status, 422);
    assert!(body.contains("unknown field `regoin`"), "{body}");
    let (status, body) = post(r#"{"kind":"meltdown"}"#).await;
    assert_eq!(status, 422);
    assert!(body.contains("meltdown"), "{body}");
    let (status, body) = post(r#"{"kind":"reset","region":"eu-west"}"#).await;
    assert_eq!(status, 422);
    assert!(body.contains("no region `eu-west`"), "{body}");
    let (status, _) = post("not json").await;
    assert_eq!(status, 400);

    let resp = s
        .http
        .delete(format!("http://{}/faults/99", s.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let id = s.fault(r#"{"kind":"delay","ms":5,"ratio":0.25}"#).await;
    let list: serde_json::Value = s
        .http
        .get(format!("http://{}/faults", s.api()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list,
        serde_json::json!([{"id": id, "kind": "delay", "ms": 5, "ratio": 0.25}])
    );

    let topo: serde_json::Value = s
        .http
        .get(format!("http://{}/", s.api()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        topo["regions"][1]["edges"]["beta"],
        serde_json::json!(["127.22.2.1", "127.22.2.2"])
    );
    assert_eq!(
        topo["edge_port"].as_u64(),
        Some(u64::from(s.lab.topology().edge_port))
    );
    let control: std::net::SocketAddr = topo["regions"][0]["control_target"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(control.ip(), IpAddr::V4(Ipv4Addr::new(127, 99, 1, 1)));
    s.shutdown().await;
}
