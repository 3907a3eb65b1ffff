//! Decision-engine benchmark on simulated time (printed figures, not a timed test): the pure engine
//! fed rounds at a 10 s interval with the default policy, counting published version changes.
//!
//! 1. a month of noise: every result fails at random with probability 0.1 (and 0.2, 0.3 to show
//!    the margin) — target: zero flips at 0.1;
//! 2. the primary host failing 60 s, working 60 s, for 30 minutes in every region — target: at
//!    most 5 version changes for that host; and one edge of it flapping the same way (no flip).
//!
//! Usage: cargo run --release --example bench_engine

use std::net::IpAddr;

use cdnwatch::engine::{Engine, HostInfo, Observation, Policy, RegionRound, Round};
use cdnwatch::model::FailureClass;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;

const HOSTS: [(&str, &str); 3] = [
    ("cdn.shop.test", "alpha"),
    ("cdn-ss.shop.test", "alpha"),
    ("cdn-bak.shop.test", "beta"),
];
const PATHS: [&str; 3] = [
    "/image/probe.jpg",
    "/product/probe.json",
    "/community/probe.css",
];
const REGIONS: [&str; 3] = ["cn-east", "cn-north", "cn-south"];
const INTERVAL_S: i64 = 10;

/// One round; `fails(host, region, edge)` says whether a result fails.
fn round(mut fails: impl FnMut(&str, usize, u8) -> bool) -> Round {
    Round {
        regions: REGIONS
            .iter()
            .enumerate()
            .map(|(ri, region)| {
                let mut observations = Vec::new();
                for (host, vendor) in HOSTS {
                    let v = if vendor == "alpha" { 21 } else { 22 };
                    for path in PATHS {
                        for resolver in ["isp", "public"] {
                            for edge in 1..=2u8 {
                                let failed = fails(host, ri, edge);
                                observations.push(Observation {
                                    host: host.into(),
                                    path: path.into(),
                                    resolver: resolver.into(),
                                    edge: Some(
                                        format!("127.{v}.{}.{edge}", ri + 1)
                                            .parse::<IpAddr>()
                                            .unwrap(),
                                    ),
                                    class: failed.then_some(FailureClass::HttpTimeout),
                                    status: if failed { None } else { Some(200) },
                                    phase: failed.then_some(cdnwatch::model::Phase::Processing),
                                });
                            }
                        }
                    }
                }
                RegionRound {
                    region: region.to_string(),
                    control_ok: true,
                    observations,
                }
            })
            .collect(),
    }
}

fn engine(start: DateTime<Utc>) -> Engine {
    let hosts = HOSTS
        .iter()
        .map(|(h, v)| HostInfo {
            host: h.to_string(),
            vendor: v.to_string(),
        })
        .collect();
    Engine::new(Policy::default(), hosts, start)
}

/// Runs `rounds` rounds; returns (version changes, changes of `host`'s flag).
fn run(rounds: i64, host: &str, mut fails: impl FnMut(i64, &str, usize, u8) -> bool) -> (u32, u32) {
    let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let mut e = engine(start);
    let (mut versions, mut host_changes) = (0, 0);
    let mut enabled = true;
    for i in 0..rounds {
        let now = start + Duration::seconds(i * INTERVAL_S);
        let r = round(|h, region, edge| fails(i * INTERVAL_S, h, region, edge));
        let ev = e.evaluate(&r, &[], now);
        if ev.changed && ev.publishable {
            versions += 1;
        }
        let now_enabled = ev.hosts.get(host).is_none_or(|d| d.enabled);
        if now_enabled != enabled {
            host_changes += 1;
            enabled = now_enabled;
        }
    }
    (versions, host_changes)
}

fn main() {
    let month = 30 * 24 * 3600 / INTERVAL_S;
    for p in [0.1, 0.2, 0.3] {
        let mut rng = rand::rng();
        let t = std::time::Instant::now();
        let (versions, _) = run(month, "cdn.shop.test", |_, _, _, _| rng.random::<f64>() < p);
        println!(
            "BENCHENGINE noise p={p} rounds={month} (30 days at {INTERVAL_S} s) version_changes={versions} evaluate_us_per_round={:.1}{}",
            t.elapsed().as_secs_f64() * 1e6 / month as f64,
            if p == 0.1 { " (target: 0)" } else { "" }
        );
    }
    let half_hour = 30 * 60 / INTERVAL_S;
    let down = |t: i64| (t / 60) % 2 == 0;
    let (_, host_changes) = run(half_hour, "cdn.shop.test", |t, h, _, _| {
        h == "cdn.shop.test" && down(t)
    });
    println!(
        "BENCHENGINE flapping host=cdn.shop.test 60s down/60s up for 30 min: host_flag_changes={host_changes} (target <= 5)"
    );
    let (versions, _) = run(half_hour, "cdn.shop.test", |t, h, region, edge| {
        h == "cdn.shop.test" && region == 0 && edge == 1 && down(t)
    });
    println!(
        "BENCHENGINE flapping one edge of cdn.shop.test (cn-east) 60s down/60s up for 30 min: version_changes={versions} (expected 0: degraded)"
    );
}
