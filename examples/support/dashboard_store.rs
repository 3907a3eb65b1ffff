//! The dashboard benchmark's store beyond the shared shape: a scenario of faults, a day of minute
//! rollups and the latest raw results made from it, and a month of decisions and versions.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use cdnwatch::config::{
    Config, Host, MergedHost, Method, ProbePath, Region, ResolverConfig, Scheme, Transport, Vendor,
};
use cdnwatch::engine::{Event, Reason, RegionCounts, Sample};
use cdnwatch::model::{CertInfo, EdgeResult, Failure, FailureClass, HostRole, Outcome, Phase};
use cdnwatch::publish::{Content, PublishReason, Publisher};
use cdnwatch::store::rollup::Table;
use cdnwatch::store::{Agg, RawTimes, Record, Store};

use super::bench_data::{
    self, HOSTS, HOUR_MS, PATH, REGIONS, RESOLVERS, host_name, key, region_name,
};

const MINUTE_MS: i64 = 60_000;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;
/// Probe interval of the simulated service, and how far back raw results go.
const INTERVAL_MS: i64 = 30_000;
const RAW_MS: i64 = 30 * MINUTE_MS;
/// Minute rollup rows per import transaction.
const IMPORT_ROWS: usize = 30_000;

/// The benchmark's config: the store's hosts, regions and resolvers.
pub(crate) fn config() -> Config {
    let resolver = |region: usize, i: usize, name: &str| ResolverConfig {
        name: name.into(),
        transport: if i < 2 {
            Transport::Udp(SocketAddr::from((
                [127, 53, region as u8 + 1, i as u8 + 1],
                53,
            )))
        } else {
            Transport::Doh("https://127.0.0.1/dns-query".parse().expect("an https URL"))
        },
    };
    Config {
        vendors: ["alpha", "beta"]
            .map(|name| Vendor {
                name: name.into(),
                ca_file: None,
                system_roots: true,
            })
            .to_vec(),
        hosts: (0..HOSTS)
            .map(|h| Host {
                domain: host_name(h),
                vendor: vendor_of(h).into(),
                role: [
                    HostRole::Primary,
                    HostRole::SameVendorBackup,
                    HostRole::OtherVendorBackup,
                ][h % 3],
                scheme: Scheme::Https,
                port: None,
                rate: 1.0,
                paths: vec![ProbePath {
                    path: PATH.into(),
                    method: Method::Get,
                    accept_status: vec![200],
                    check: None,
                }],
            })
            .collect(),
        merged_hosts: vec![MergedHost {
            host: "image.shop.test".into(),
            path_prefix: "/image".into(),
            rate: 1.0,
            vendor: None,
        }],
        regions: (0..REGIONS)
            .map(|r| Region {
                name: region_name(r),
                client_subnet: None,
                control_targets: vec![SocketAddr::from(([127, 99, r as u8 + 1, 1], 9000))],
                resolvers: RESOLVERS
                    .iter()
                    .enumerate()
                    .map(|(i, n)| resolver(r, i, n))
                    .collect(),
            })
            .collect(),
        ..Config::default()
    }
}

fn vendor_of(host: usize) -> &'static str {
    if host.is_multiple_of(2) {
        "alpha"
    } else {
        "beta"
    }
}

/// What the simulated probes meet: a recovered 502 outage on cdn3 (100 to 40 minutes ago), a refusing
/// edge for cdn5 in region-04 (the last 20 minutes), a stale resolver for cdn10 in region-02 (the
/// last hour), and one probe in 400 timing out anywhere.
struct Scenario {
    now_ms: i64,
}

struct Probe {
    edge: String,
    failure: Option<(FailureClass, Phase, Option<u16>)>,
}

impl Scenario {
    fn probe(&self, host: usize, region: usize, resolver: usize, edge: usize, at: i64) -> Probe {
        let ago = self.now_ms - at;
        let stale = host == 10 && region == 2 && resolver == 1 && edge == 1 && ago < HOUR_MS;
        let octet = if stale { 9 } else { edge + 1 };
        let vendor = 21 + host % 2;
        let edge_ip = format!("127.{vendor}.{}.{octet}", region + 1);
        let noise =
            (host * 7919 + region * 104_729 + resolver * 31 + edge + (at / INTERVAL_MS) as usize)
                .is_multiple_of(400);
        let failure = if host == 3 && (40 * MINUTE_MS..100 * MINUTE_MS).contains(&ago) {
            Some((FailureClass::HttpStatus, Phase::Processing, Some(502)))
        } else if (host == 5 && region == 4 && ago < 20 * MINUTE_MS) || stale {
            Some((FailureClass::TcpRefused, Phase::Connect, None))
        } else if noise {
            Some((FailureClass::HttpTimeout, Phase::Processing, None))
        } else {
            None
        };
        Probe {
            edge: edge_ip,
            failure,
        }
    }

    /// Phase times in µs: a daily wave on DNS and first byte, a little spread per host and region.
    fn phases_us(&self, host: usize, region: usize, at: i64, failed: bool) -> [Option<i64>; 6] {
        let wave = ((at % DAY_MS) as f64 / DAY_MS as f64 * std::f64::consts::TAU).sin();
        let dns = 400 + (150.0 * wave) as i64 + host as i64 * 3;
        let connect = 200 + region as i64 * 5;
        let tls = 900 + region as i64 * 10;
        let first_byte = 600 + (300.0 * (1.0 + wave)) as i64;
        let transfer = 100 + (at / INTERVAL_MS % 7) * 20;
        if failed {
            return [Some(dns), Some(connect), None, None, None, None];
        }
        let total = dns + connect + tls + first_byte + transfer;
        [
            Some(dns),
            Some(connect),
            Some(tls),
            Some(first_byte),
            Some(transfer),
            Some(total),
        ]
    }

    fn minute_agg(&self, host: usize, region: usize, resolver: usize, start: i64) -> Agg {
        let mut agg = Agg::default();
        for round in 0..(MINUTE_MS / INTERVAL_MS) {
            let at = start + round * INTERVAL_MS;
            for edge in 0..2 {
                let p = self.probe(host, region, resolver, edge, at);
                agg.add(RawTimes {
                    phases_us: self.phases_us(host, region, at, p.failure.is_some()),
                    outcome: p.failure.map(|f| Outcome::new(f.0, f.2.or(Some(200)))),
                });
            }
        }
        agg
    }

    fn result(
        &self,
        host: usize,
        region: usize,
        resolver: usize,
        edge: usize,
        at: i64,
    ) -> EdgeResult {
        let p = self.probe(host, region, resolver, edge, at);
        let ms = |us: Option<i64>| us.map(|v| v as f64 / 1000.0);
        let ph = self.phases_us(host, region, at, p.failure.is_some());
        let when = chrono::DateTime::from_timestamp_millis(at).unwrap();
        let days = if host == 7 { 9 } else { 80 };
        EdgeResult {
            at: when,
            host: host_name(host),
            path: PATH.into(),
            region: region_name(region),
            resolver: RESOLVERS[resolver].into(),
            edge_ip: Some(p.edge.parse().unwrap()),
            dns_ms: ms(ph[0]),
            connect_ms: ms(ph[1]),
            tls_ms: ms(ph[2]),
            first_byte_ms: ms(ph[3]),
            transfer_ms: ms(ph[4]),
            total_ms: ms(ph[5]),
            status: p.failure.map_or(Some(200), |f| f.2),
            body_bytes: 4096,
            cert: ph[2].map(|_| CertInfo {
                not_after: when + chrono::Duration::days(days),
                not_before: when - chrono::Duration::days(10),
                issuer: "bench CA".into(),
                subject: host_name(host),
                verified: true,
            }),
            failure: p.failure.map(|(class, phase, status)| {
                let detail =
                    status.map_or_else(|| class.as_str().to_string(), |s| format!("status {s}"));
                Failure::new(class, phase, detail)
            }),
        }
    }
}

/// The newest raw result in the store, if any (Unix ms).
pub(crate) async fn newest_result(store: &Store) -> Option<i64> {
    store
        .newest_groups(0)
        .await
        .unwrap()
        .iter()
        .map(|g| g.newest_at_ms)
        .max()
}

/// Fills the store up to `now`: hour rows imported before the last day, minute rows imported for
/// the last day up to 30 minutes ago, raw results since, then the real rollup path over them.
pub(crate) async fn fill(store: &Store, have: Option<i64>, now: i64) {
    let sc = Scenario { now_ms: now };
    let minutes_from = now - now % HOUR_MS - DAY_MS;
    let raw_from = now - now % MINUTE_MS - RAW_MS;
    let t = Instant::now();
    // The first whole hour and minute after what the store already holds.
    let next = |unit: i64| have.map(|h| h.div_euclid(unit) * unit + unit);
    let hours_from = next(HOUR_MS)
        .unwrap_or(i64::MIN)
        .max(minutes_from - 30 * DAY_MS);
    if hours_from < minutes_from {
        bench_data::import_hours(store, hours_from, (minutes_from - hours_from) / HOUR_MS).await;
    }
    let mut rows = Vec::with_capacity(IMPORT_ROWS + 3_000);
    let mut minute = next(MINUTE_MS).unwrap_or(i64::MIN).max(minutes_from);
    while minute < raw_from {
        for host in 0..HOSTS {
            for region in 0..REGIONS {
                for (i, resolver) in RESOLVERS.iter().enumerate() {
                    let agg = sc.minute_agg(host, region, i, minute);
                    rows.push((key(host, region, resolver), minute, agg));
                }
            }
        }
        if rows.len() >= IMPORT_ROWS {
            store.import_rollups(Table::Minute, &rows).await.unwrap();
            rows.clear();
        }
        minute += MINUTE_MS;
    }
    store.import_rollups(Table::Minute, &rows).await.unwrap();
    let prober: Arc<str> = Arc::from("bench");
    let mut at = have.map_or(raw_from, |h| raw_from.max(h + INTERVAL_MS));
    while at < now {
        let mut batch = Vec::with_capacity(6_000);
        for host in 0..HOSTS {
            for region in 0..REGIONS {
                for resolver in 0..RESOLVERS.len() {
                    for edge in 0..2 {
                        batch.push(Record {
                            prober: prober.clone(),
                            result: sc.result(host, region, resolver, edge, at + host as i64),
                        });
                    }
                }
            }
        }
        store.write_batch(&batch).await.unwrap();
        at += INTERVAL_MS;
    }
    while store.roll_up(now).await.unwrap() != Default::default() {}
    println!(
        "BENCHDASH fill from={} seconds={:.1}",
        have.map_or_else(
            || "scratch".to_string(),
            |h| format!("{}s ago", (now - h) / 1000)
        ),
        t.elapsed().as_secs_f64()
    );
}

fn event(at: i64, host: usize, change: Option<bool>, reason: Reason, detail: &str) -> Event {
    let evidence = (0..REGIONS)
        .map(|r| {
            let failed = u32::from(change == Some(false)) * 6;
            (
                region_name(r),
                RegionCounts {
                    ok: 6 - failed,
                    failed,
                    invalid: false,
                },
            )
        })
        .collect();
    Event {
        at: chrono::DateTime::from_timestamp_millis(at).unwrap(),
        host: Some(host_name(host)),
        old_enabled: change.map(|c| !c),
        new_enabled: change,
        reason,
        detail: detail.into(),
        evidence,
        samples: vec![Sample {
            host: host_name(host),
            region: region_name(0),
            resolver: "isp".into(),
            edge: Some(std::net::Ipv4Addr::new(127, 21, 1, 1).into()),
            path: PATH.into(),
            class: FailureClass::HttpStatus,
            status: Some(502),
        }],
        incident: None,
        prefix: None,
    }
}

/// A month of decisions: a degraded scope every 10 minutes, a host out and back every 3 hours (each
/// a published version), and the cdn3 outage of the scenario.
pub(crate) async fn history(publisher: &Publisher, store: &Store, config: &Config, now: i64) {
    let mut disabled: BTreeSet<String> = BTreeSet::new();
    let start = now - 30 * DAY_MS;
    let mut degraded = Vec::new();
    for (i, at) in (start..now).step_by(10 * MINUTE_MS as usize).enumerate() {
        degraded.push(event(at, i % HOSTS, None, Reason::Degraded, "edge 127.21.1.2 (region-01) fails while the rest of the host is fine: degraded, not disabled"));
    }
    store.record_events(&degraded).await.unwrap();
    for (i, at) in (start..now - 3 * HOUR_MS)
        .step_by(3 * HOUR_MS as usize)
        .enumerate()
    {
        let host = (i * 7) % HOSTS;
        for step in [
            (at, false, Reason::QuorumFall),
            (at + 40 * MINUTE_MS, true, Reason::Rise),
        ] {
            flip(publisher, config, &mut disabled, host, step, "bench").await;
        }
    }
    let outage = [
        (now - 97 * MINUTE_MS, false, Reason::QuorumFall),
        (now - 35 * MINUTE_MS, true, Reason::Rise),
    ];
    for step in outage {
        let why = "unhealthy in a quorum of regions (quorum_fall)";
        flip(publisher, config, &mut disabled, 3, step, why).await;
    }
}

/// Turns `host` on or off at `step`'s time for its reason, and publishes the version that makes.
async fn flip(
    publisher: &Publisher,
    config: &Config,
    disabled: &mut BTreeSet<String>,
    host: usize,
    (at, on, reason): (i64, bool, Reason),
    why: &str,
) {
    if on {
        disabled.remove(&host_name(host));
    } else {
        disabled.insert(host_name(host));
    }
    let ev = event(at, host, Some(on), reason, why);
    let d = disabled.clone();
    let content = Content::new(config, move |h| d.contains(h));
    let when = chrono::DateTime::from_timestamp_millis(at).unwrap();
    publisher
        .publish(&content, PublishReason::of(reason), &[ev], when)
        .await
        .unwrap();
}
