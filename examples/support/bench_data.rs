//! The benchmark store's shape, shared by `bench_store` and `bench_dashboard`: 50 hosts × 20
//! regions × 3 resolvers = 3,000 probe series of one path each, with hour rollups imported in bulk
//! (months of history in seconds).
#![allow(dead_code)]

use cdnwatch::model::{FailureClass, Outcome};
use cdnwatch::series::SeriesKey;
use cdnwatch::store::rollup::Table;
use cdnwatch::store::{Agg, RawTimes, Store};

pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const HOSTS: usize = 50;
pub(crate) const REGIONS: usize = 20;
pub(crate) const RESOLVERS: [&str; 3] = ["isp", "public", "doh"];
pub(crate) const PATH: &str = "/image/probe.jpg";
/// Hour rows per import transaction.
const IMPORT_ROWS: usize = 30_000;

pub(crate) fn host_name(host: usize) -> String {
    format!("cdn{host}.shop.test")
}

pub(crate) fn region_name(region: usize) -> String {
    format!("region-{region:02}")
}

pub(crate) fn key(host: usize, region: usize, resolver: &str) -> SeriesKey {
    SeriesKey {
        host: host_name(host),
        path: PATH.into(),
        region: region_name(region),
        resolver: resolver.into(),
    }
}

/// Every series key, host-major.
pub(crate) fn all_keys() -> Vec<SeriesKey> {
    let mut out = Vec::with_capacity(HOSTS * REGIONS * RESOLVERS.len());
    for host in 0..HOSTS {
        for region in 0..REGIONS {
            for resolver in RESOLVERS {
                out.push(key(host, region, resolver));
            }
        }
    }
    out
}

/// One hour of one series probed every 10 s: 360 probes, one in twenty a 502.
pub(crate) fn hour_agg() -> Agg {
    let mut agg = Agg::default();
    for i in 0..360u64 {
        agg.add(RawTimes {
            phases_us: [
                Some(400 + i as i64),
                Some(200),
                Some(1000),
                Some(600),
                Some(100),
                Some(2300),
            ],
            outcome: (i % 20 == 0).then_some(Outcome::new(FailureClass::HttpStatus, Some(502))),
        });
    }
    agg
}

/// Imports `hours` hour rows per series, from `start_ms` (a whole hour) on, through the store's
/// import path.
pub(crate) async fn import_hours(store: &Store, start_ms: i64, hours: i64) {
    let agg = hour_agg();
    let keys = all_keys();
    let mut rows = Vec::with_capacity(IMPORT_ROWS + keys.len());
    for hour in 0..hours {
        for k in &keys {
            rows.push((k.clone(), start_ms + hour * HOUR_MS, agg.clone()));
        }
        if rows.len() >= IMPORT_ROWS {
            store.import_rollups(Table::Hour, &rows).await.unwrap();
            rows.clear();
        }
    }
    store.import_rollups(Table::Hour, &rows).await.unwrap();
}
