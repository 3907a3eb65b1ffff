//! The read side's queries against a store filled with probes of known outcomes.

// A test is a specification, read top to bottom: its length is the behaviour it pins down.
#![allow(clippy::too_many_lines)]

use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::{Event, Reason, RegionCounts};
use crate::model::{CertInfo, EdgeResult, Failure, FailureClass, Outcome, Phase};
use crate::period::{HOUR_MS, MINUTE_MS};
use crate::series::SeriesKey;
use crate::store::charts::BucketCache;
use crate::store::failures::PhaseCount;
use crate::store::periods::PeriodCache;
use crate::store::rollup::Table;
use crate::store::tallies::Tally;
use crate::store::{Agg, Record, Store};

const T0: i64 = 1_800_000_000_000; // a whole hour

fn http_502() -> Outcome {
    Outcome::new(FailureClass::HttpStatus, Some(502))
}

struct Probe<'a> {
    host: &'a str,
    region: &'a str,
    resolver: &'a str,
    edge: &'a str,
    failure: Option<(FailureClass, Phase, u16)>,
}

fn result(at_ms: i64, p: &Probe<'_>) -> EdgeResult {
    let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap();
    let failed = p.failure.is_some();
    EdgeResult {
        at,
        host: p.host.into(),
        path: "/image/probe.jpg".into(),
        region: p.region.into(),
        resolver: p.resolver.into(),
        edge_ip: Some(p.edge.parse().unwrap()),
        dns_ms: Some(0.5),
        connect_ms: Some(0.25),
        tls_ms: Some(1.0),
        first_byte_ms: Some(if failed { 3.0 } else { 0.75 }),
        transfer_ms: Some(0.1),
        total_ms: Some(if p.host == "a.test" { 2.6 } else { 40.0 }),
        status: Some(p.failure.map_or(200, |f| f.2)),
        body_bytes: 4096,
        cert: Some(CertInfo {
            not_after: at + chrono::Duration::days(if p.edge.ends_with(".2") { 5 } else { 60 }),
            not_before: at,
            issuer: "test".into(),
            subject: p.host.into(),
            verified: true,
        }),
        failure: p.failure.map(|(c, ph, _)| Failure::new(c, ph, "test")),
    }
}

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cdnwatch.db")).await.unwrap();
    (dir, store)
}

const HTTP_502: Option<(FailureClass, Phase, u16)> =
    Some((FailureClass::HttpStatus, Phase::Processing, 502));

/// Two hosts × two regions × two resolvers × two edges, every 30 s from T0 for `minutes`;
/// a.test fails with 502 in `east` during minutes 30..40.
async fn fill(store: &Store, minutes: i64) {
    let mut batch = Vec::new();
    for round in 0..minutes * 2 {
        let at = T0 + round * 30_000;
        for host in ["a.test", "b.test"] {
            for region in ["east", "west"] {
                for resolver in ["isp", "public"] {
                    for edge in ["127.21.1.1", "127.21.1.2"] {
                        let outage = host == "a.test"
                            && region == "east"
                            && (30 * MINUTE_MS..40 * MINUTE_MS).contains(&(at - T0));
                        let p = Probe {
                            host,
                            region,
                            resolver,
                            edge,
                            failure: if outage { HTTP_502 } else { None },
                        };
                        batch.push(Record {
                            prober: Arc::from("test"),
                            result: result(at, &p),
                        });
                    }
                }
            }
        }
    }
    store.write_batch(&batch).await.unwrap();
}

async fn roll_all(store: &Store, now: i64) {
    while store.roll_up(now).await.unwrap() != Default::default() {}
}

#[tokio::test]
async fn the_newest_probe_of_each_series_is_counted_per_cell_and_outcome() {
    let (_d, store) = open().await;
    fill(&store, 2).await;
    let last = T0 + 3 * 30_000;
    let failing = Probe {
        host: "a.test",
        region: "east",
        resolver: "isp",
        edge: "127.21.1.1",
        failure: HTTP_502,
    };
    let rec = |at, p: &Probe<'_>| Record {
        prober: Arc::from("test"),
        result: result(at, p),
    };
    store
        .write_batch(&[
            rec(last + 30_000, &failing),
            rec(
                last + 30_000,
                &Probe {
                    edge: "127.21.1.2",
                    failure: None,
                    ..failing
                },
            ),
        ])
        .await
        .unwrap();
    let groups = store.newest_groups(T0).await.unwrap();
    let east_a: Vec<_> = groups
        .iter()
        .filter(|g| g.host == "a.test" && g.region == "east")
        .collect();
    let failed = east_a.iter().find(|g| g.outcome.is_some()).unwrap();
    let outcome = failed.outcome.unwrap();
    assert_eq!(outcome.class.as_str(), "http_status");
    assert_eq!(outcome.status, Some(502));
    assert_eq!(failed.count, 1, "only the newest probe of the isp series");
    let ok: u64 = east_a
        .iter()
        .filter(|g| g.outcome.is_none())
        .map(|g| g.count)
        .sum();
    assert_eq!(ok, 3, "its other edge, and both edges of the public series");
    assert_eq!(failed.newest_at_ms, last + 30_000);
    let soonest =
        chrono::DateTime::from_timestamp_millis(last).unwrap() + chrono::Duration::days(5);
    assert_eq!(
        groups
            .iter()
            .filter(|g| g.host == "b.test")
            .filter_map(|g| g.cert_not_after_s)
            .min(),
        Some(soonest.timestamp())
    );
    assert!(
        store.newest_groups(last + 31_000).await.unwrap().is_empty(),
        "stale probes are left out"
    );
    let rows = store.newest_probes("a.test", T0).await.unwrap();
    assert_eq!(rows.len(), 8, "2 regions × 2 resolvers × 2 edges");
    let row = rows.iter().find(|r| r.failure.is_some()).unwrap();
    assert_eq!(
        (row.series.region.as_str(), row.series.resolver.as_str()),
        ("east", "isp")
    );
    assert_eq!(row.phases_us[3], Some(3_000));
    assert_eq!(row.phase.map(Phase::as_str), Some("processing"));
}

#[tokio::test]
async fn period_sums_of_packed_histograms_equal_the_rows_merged_one_by_one() {
    let (_d, store) = open().await;
    fill(&store, 60).await;
    roll_all(&store, T0 + 62 * MINUTE_MS).await;
    let sums = store
        .period_sums(Table::Minute, T0, T0 + 60 * MINUTE_MS)
        .await
        .unwrap();
    assert_eq!(sums.len(), 60 * 2, "a row per minute per (host, path)");
    let a35: Vec<_> = sums
        .iter()
        .filter(|s| s.host == "a.test" && s.start_ms == T0 + 35 * MINUTE_MS)
        .collect();
    assert_eq!(
        a35[0].tally,
        Tally {
            count: 16,
            failures: 8
        }
    );
    let mut one_by_one = Agg::default();
    for region in ["east", "west"] {
        for resolver in ["isp", "public"] {
            let key = SeriesKey {
                host: "a.test".into(),
                path: "/image/probe.jpg".into(),
                region: region.into(),
                resolver: resolver.into(),
            };
            for row in store
                .rollups(&key, false, T0 + 35 * MINUTE_MS, T0 + 36 * MINUTE_MS)
                .await
                .unwrap()
            {
                one_by_one.merge(&row.agg);
            }
        }
    }
    assert_eq!(a35[0].total, one_by_one.hists[5]);
    assert_eq!(a35[0].total.count(), 8, "successes only");
}

#[tokio::test]
async fn the_period_cache_gives_the_same_sums_as_reading_the_window_whole() {
    let (_d, store) = open().await;
    fill(&store, 120).await;
    roll_all(&store, T0 + 122 * MINUTE_MS).await;
    let cache = PeriodCache::default();
    let direct = |from, to| {
        let store = store.clone();
        async move {
            let mut out: HashMap<(String, String), (Tally, u64)> = HashMap::new();
            for p in store.period_sums(Table::Minute, from, to).await.unwrap() {
                let e = out.entry((p.host, p.path)).or_default();
                e.0.add(p.tally);
                e.1 += p.total.count();
            }
            out
        }
    };
    for (from, to) in [(0, 60), (5, 65), (30, 90), (31, 91), (60, 120), (0, 120)] {
        let (from, to) = (T0 + from * MINUTE_MS, T0 + to * MINUTE_MS);
        let cached = cache.sums(&store, Table::Minute, from, to).await.unwrap();
        let want = direct(from, to).await;
        assert_eq!(cached.len(), want.len());
        for (k, s) in &cached {
            assert_eq!(
                (s.tally, s.total.count()),
                want[k],
                "{k:?} in [{from}, {to})"
            );
        }
    }
    // Requests at once, each reading what it misses, still count every period once.
    let (a, b) = tokio::join!(
        cache.sums(
            &store,
            Table::Minute,
            T0 + 60 * MINUTE_MS,
            T0 + 119 * MINUTE_MS
        ),
        cache.sums(
            &store,
            Table::Minute,
            T0 + 61 * MINUTE_MS,
            T0 + 120 * MINUTE_MS
        ),
    );
    for (got, (from, to)) in [(a.unwrap(), (60, 119)), (b.unwrap(), (61, 120))] {
        let want = direct(T0 + from * MINUTE_MS, T0 + to * MINUTE_MS).await;
        for (k, s) in &got {
            assert_eq!(
                (s.tally, s.total.count()),
                want[k],
                "{k:?} in [{from}, {to})"
            );
        }
    }
    let hours = cache
        .sums(&store, Table::Hour, T0, T0 + 2 * HOUR_MS)
        .await
        .unwrap();
    let a = &hours[&("a.test".to_string(), "/image/probe.jpg".to_string())];
    assert_eq!(
        a.tally,
        Tally {
            count: 1920,
            failures: 80
        }
    );
}

#[tokio::test]
async fn a_hosts_chart_buckets_merge_its_series_rows_and_failure_classes() {
    let (_d, store) = open().await;
    fill(&store, 60).await;
    roll_all(&store, T0 + 62 * MINUTE_MS).await;
    let buckets = store
        .host_buckets(
            "a.test",
            Table::Minute,
            T0,
            T0 + 60 * MINUTE_MS,
            10 * MINUTE_MS,
        )
        .await
        .unwrap();
    assert_eq!(buckets.len(), 6);
    assert_eq!(buckets[3].start_ms, T0 + 30 * MINUTE_MS);
    assert_eq!((buckets[3].agg.count, buckets[3].agg.failures), (160, 80));
    assert_eq!(buckets[3].agg.by_class.get(&http_502()), Some(&80));
    assert!(buckets[2].agg.by_class.is_empty());
    let p50 = buckets[3].agg.hists[3].quantile_ms(0.5).unwrap();
    assert!((p50 - 0.75).abs() < 0.1 || (p50 - 3.0).abs() < 0.3, "{p50}");
    assert_eq!(buckets[0].agg.hists[5].count(), 160);
}

#[tokio::test]
async fn cached_chart_buckets_equal_the_buckets_read_whole_as_the_window_slides() {
    let (_d, store) = open().await;
    fill(&store, 120).await;
    roll_all(&store, T0 + 122 * MINUTE_MS).await;
    let cache = BucketCache::default();
    let done = T0 + 100 * MINUTE_MS; // as if minutes were rolled up to here only
    let step = 10 * MINUTE_MS;
    for (from, to) in [(0, 60), (0, 63), (10, 75), (10, 75), (20, 90), (60, 120)] {
        let (from, to) = (T0 + from * MINUTE_MS, T0 + to * MINUTE_MS);
        let cached = cache
            .buckets(&store, "a.test", Table::Minute, (from, to), step, done)
            .await
            .unwrap();
        let whole = store
            .host_buckets("a.test", Table::Minute, from, to, step)
            .await
            .unwrap();
        assert_eq!(cached, whole, "[{from}, {to})");
    }
}

#[tokio::test]
async fn chart_buckets_before_the_first_rollup_are_read_whole_and_kept_for_none() {
    let (_d, store) = open().await;
    fill(&store, 60).await;
    let cache = BucketCache::default();
    let window = (T0, T0 + 60 * MINUTE_MS);
    // Nothing rolled up yet: "done" is the smallest instant (it overflowed once).
    let cached = cache
        .buckets(
            &store,
            "a.test",
            Table::Minute,
            window,
            10 * MINUTE_MS,
            i64::MIN,
        )
        .await
        .unwrap();
    let whole = store
        .host_buckets("a.test", Table::Minute, window.0, window.1, 10 * MINUTE_MS)
        .await
        .unwrap();
    assert_eq!(cached, whole);
}

#[tokio::test]
async fn failure_periods_name_host_region_and_class_and_count_everything_probed() {
    let (_d, store) = open().await;
    fill(&store, 60).await;
    roll_all(&store, T0 + 50 * MINUTE_MS).await;
    let (minutes_done, _) = store.watermarks().await.unwrap();
    let minutes_done = minutes_done.unwrap();
    assert_eq!(minutes_done, T0 + 49 * MINUTE_MS);
    let rolled = store
        .failure_periods(Some("a.test"), Table::Minute, T0, minutes_done)
        .await
        .unwrap();
    let total = store
        .rollup_tally(Some("a.test"), Table::Minute, T0, minutes_done)
        .await
        .unwrap();
    assert_eq!(rolled.len(), 10, "minutes 30..40 in east");
    assert!(
        rolled
            .iter()
            .all(|p| p.region == "east" && p.host == "a.test")
    );
    assert_eq!(rolled[0].start_ms, T0 + 30 * MINUTE_MS);
    assert_eq!(rolled[0].by_class.get(&http_502()), Some(&8));
    assert_eq!(
        total,
        Tally {
            count: 49 * 16,
            failures: 80
        }
    );
    let (raw, raw_total) = store
        .raw_failure_periods(None, minutes_done, T0 + 60 * MINUTE_MS)
        .await
        .unwrap();
    assert!(raw.is_empty());
    assert_eq!(raw_total.count, 11 * 32);
    let split = store
        .raw_tallies(
            T0 + 25 * MINUTE_MS,
            T0 + 35 * MINUTE_MS,
            T0 + 45 * MINUTE_MS,
        )
        .await
        .unwrap();
    let (_, _, before, after) = split.iter().find(|r| r.0 == "a.test").unwrap();
    assert_eq!(
        *before,
        Tally {
            count: 160,
            failures: 40
        }
    );
    assert_eq!(
        *after,
        Tally {
            count: 160,
            failures: 40
        }
    );
    let (raw, _) = store
        .raw_failure_periods(Some("a.test"), T0 + 30 * MINUTE_MS, T0 + 32 * MINUTE_MS)
        .await
        .unwrap();
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[1].by_class.get(&http_502()), Some(&8));
    let phases = store.failure_phases(None, T0, T0 + HOUR_MS).await.unwrap();
    assert_eq!(
        phases,
        vec![PhaseCount {
            outcome: Outcome::new(FailureClass::HttpStatus, Some(502)),
            phase: Some(Phase::Processing),
            count: 80
        }]
    );
}

#[tokio::test]
async fn edges_are_tallied_and_listed_per_region_and_resolver() {
    let (_d, store) = open().await;
    fill(&store, 40).await;
    let tallies = store
        .edge_tallies("a.test", T0 + 30 * MINUTE_MS, T0 + 40 * MINUTE_MS)
        .await
        .unwrap();
    assert_eq!(tallies.len(), 8);
    let (_, _, t) = tallies
        .iter()
        .find(|(k, e, _)| k.region == "east" && e.as_deref() == Some("127.21.1.2"))
        .unwrap();
    assert_eq!(
        *t,
        Tally {
            count: 20,
            failures: 20
        }
    );
    let served = store
        .served_edges("b.test", T0, T0 + HOUR_MS)
        .await
        .unwrap();
    assert_eq!(served.len(), 8);
    assert!(served.contains(&("west".into(), "public".into(), "127.21.1.2".into())));
}

fn event(at_ms: i64, host: &str, new: Option<bool>, reason: Reason) -> Event {
    Event {
        at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
        host: Some(host.into()),
        old_enabled: new.map(|n| !n),
        new_enabled: new,
        reason,
        detail: "test".into(),
        evidence: [("east".to_string(), RegionCounts::default())].into(),
        samples: vec![],
        incident: None,
        prefix: None,
    }
}

#[tokio::test]
async fn the_last_change_of_each_host_skips_events_that_changed_nothing() {
    let (_d, store) = open().await;
    store
        .record_events(&[
            event(T0, "a.test", Some(false), Reason::VendorWide),
            event(T0 + 1, "b.test", Some(false), Reason::QuorumFall),
            event(T0 + 2, "b.test", Some(true), Reason::Rise),
            event(T0 + 3, "a.test", None, Reason::Degraded),
        ])
        .await
        .unwrap();
    let hosts = ["a.test", "b.test", "c.test"].map(String::from);
    let changes = store.last_changes(&hosts).await.unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes["a.test"].0.reason, Reason::VendorWide);
    assert_eq!(changes["b.test"].0.reason, Reason::Rise);
    assert!(store.host_has_events("a.test").await.unwrap());
    assert!(!store.host_has_events("c.test").await.unwrap());
}
