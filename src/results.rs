//! The one way in for probe results: this process's scheduler and remote agents alike hand their
//! results to [`Results::accept`], which counts them on `/metrics`, keeps each series' newest round
//! for the decision loop, and queues them for the store. Nothing else feeds any of the three.
//!
//! What a result must be to **vote** (to be seen by the engine): its series — host, path, region
//! and resolver — is one the config in force probes, and its **slot** (when the schedule planned it,
//! on the service's clock: an agent's are re-stamped) is not older than two probe intervals when
//! the decision loop reads it (older rounds are ignored there, see [`LatestResults`]). Results
//! are aligned to their slot, not their actual start, so every region's round is the same round. A result
//! of a series the config does not have is still stored and counted, but never votes. A result of
//! an earlier slot never replaces a later one of the same series. Whether a region's own network works (its control
//! targets) comes in beside the results, through [`Results::accept_control`].
//!
//! Beside each series' newest round it counts the series' failed probes in a row: those after the
//! first are its failed **confirmations** (the scheduler probes a failed series again at once and
//! then every `confirm_interval_ms`), which the engine counts as rounds. When a series' count
//! reaches `[engine] fall_rounds` the decision loop is told ([`LatestResults::confirmed_fall`]) so
//! it need not wait for its next interval.
//!
//! This module decides nothing and does no I/O: a full store queue drops and counts the record, and
//! probing never waits on the database.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::config::{Config, LiveConfig};
use crate::metrics::{Metrics, Source};
use crate::model::{EdgeResult, Probed};
use crate::series::{SeriesKey, probe_failed};
use crate::store::writer::{Busy, Ingest};
use crate::store::{BatchKey, BatchStored, Record};

/// A series' newest probe: the slot it was planned for, its edge results, and the failed probes in
/// a row it ends (0 when it passed).
struct Newest {
    slot: DateTime<Utc>,
    results: Vec<EdgeResult>,
    failed_in_a_row: u32,
}

impl Newest {
    /// Failed confirmations: the failed probes in a row after the first.
    fn confirmations(&self) -> u32 {
        self.failed_in_a_row.saturating_sub(1)
    }
}

/// Every series' newest results and every region's latest control verdict: written by
/// [`Results::accept`], read by the decision loop and the pages.
#[derive(Default)]
pub struct LatestResults {
    by_series: Mutex<HashMap<SeriesKey, Newest>>,
    /// Per region, whether its control targets answered in the latest check, and when it ran (the
    /// dashboard shows a region whose own network is down as invalid, not as failing).
    control: Mutex<BTreeMap<String, (DateTime<Utc>, bool)>>,
    /// Series whose confirmations reached `fall_rounds`, counted, and the decision loop's wake-up.
    falls: AtomicU64,
    fell: Notify,
    /// Regions whose agent is down (or not heard yet): no valid evidence, whatever they last sent.
    unheard: Mutex<BTreeSet<String>>,
}

impl LatestResults {
    /// Keeps `results`, planned for `slot`, as the newest round of `key`, unless one of a later
    /// slot is already kept; returns the series' failed confirmations when it was kept.
    fn put(&self, key: SeriesKey, slot: DateTime<Utc>, results: Vec<EdgeResult>) -> Option<u32> {
        let mut by_series = self.by_series.lock().expect("latest results");
        let before = match by_series.get(&key) {
            Some(newest) if newest.slot > slot => return None,
            Some(newest) => newest.failed_in_a_row,
            None => 0,
        };
        let failed_in_a_row = if probe_failed(&results) {
            before + 1
        } else {
            0
        };
        let newest = Newest {
            slot,
            results,
            failed_in_a_row,
        };
        let confirmations = newest.confirmations();
        by_series.insert(key, newest);
        Some(confirmations)
    }

    /// Notes that a series' confirmations have just reached the fall: wakes the decision loop.
    fn note_fall(&self) {
        self.falls.fetch_add(1, Ordering::Relaxed);
        self.fell.notify_one();
    }

    /// Notified when a series' failed confirmations reach `fall_rounds` (the decision loop then
    /// evaluates the confirmations at once).
    pub fn confirmed_fall(&self) -> &Notify {
        &self.fell
    }

    /// How many times a series' failed confirmations have reached `fall_rounds` so far.
    pub fn confirmed_falls(&self) -> u64 {
        self.falls.load(Ordering::Relaxed)
    }

    /// Sets the regions whose agent is down or not heard yet (`fleet`): until it is back, such a
    /// region has no valid evidence — its control verdict is "failed" and it has no results —
    /// so it neither votes nor fails.
    pub fn set_unheard(&self, regions: BTreeSet<String>) {
        *self.unheard.lock().expect("unheard") = regions;
    }

    /// Whether `region`'s agent is down or not heard yet.
    pub fn unheard(&self, region: &str) -> bool {
        self.unheard.lock().expect("unheard").contains(region)
    }

    /// Whether `region`'s control targets answered in the latest check; `None` before the first.
    pub fn control_ok(&self, region: &str) -> Option<bool> {
        self.control
            .lock()
            .expect("control")
            .get(region)
            .map(|(_, ok)| *ok)
    }

    /// Whether `region`'s control targets answered in a check not older than `max_age` at `now`;
    /// `None` when there is no such check.
    pub fn fresh_control_ok(
        &self,
        region: &str,
        now: DateTime<Utc>,
        max_age: Duration,
    ) -> Option<bool> {
        if self.unheard(region) {
            return Some(false);
        }
        let max_age = chrono::Duration::from_std(max_age).unwrap_or_default();
        let control = self.control.lock().expect("control");
        let (at, ok) = control.get(region)?;
        (now - *at <= max_age).then_some(*ok)
    }

    fn put_control(&self, region: &str, at: DateTime<Utc>, ok: bool) {
        self.control
            .lock()
            .expect("control")
            .insert(region.to_string(), (at, ok));
    }

    /// Results whose slot is not older than `max_age` at `now`, by region, each with its series'
    /// failed confirmations. The slot, not the actual start, says which round a result is of: a
    /// probe that started late (a starved prober, an agent's queue) does not carry an old round's
    /// evidence into a new one.
    pub fn fresh_by_region(
        &self,
        now: DateTime<Utc>,
        max_age: Duration,
    ) -> BTreeMap<String, Vec<(EdgeResult, u32)>> {
        let max_age = chrono::Duration::from_std(max_age).unwrap_or_default();
        let mut out: BTreeMap<String, Vec<(EdgeResult, u32)>> = BTreeMap::new();
        let unheard = self.unheard.lock().expect("unheard").clone();
        for (key, newest) in self.by_series.lock().expect("latest results").iter() {
            if now - newest.slot <= max_age && !unheard.contains(&key.region) {
                let confirmations = newest.confirmations();
                out.entry(key.region.clone())
                    .or_default()
                    .extend(newest.results.iter().map(|r| (r.clone(), confirmations)));
            }
        }
        out
    }
}

/// What [`Results::accept`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Results queued for the store.
    pub queued: usize,
    /// Results the full store queue dropped (counted on `/metrics` as well).
    pub dropped: usize,
}

/// The handle every producer of results holds; cheap to clone.
#[derive(Clone)]
pub struct Results {
    ingest: Ingest,
    latest: Arc<LatestResults>,
    metrics: Metrics,
    config: LiveConfig,
}

impl Results {
    /// Results go to `ingest` (the store queue), `metrics`, and a new [`LatestResults`].
    pub fn new(ingest: Ingest, metrics: Metrics, config: LiveConfig) -> Results {
        Results {
            ingest,
            latest: Arc::default(),
            metrics,
            config,
        }
    }

    /// Every series' newest round, as the decision loop and the pages read it.
    pub fn latest(&self) -> &Arc<LatestResults> {
        &self.latest
    }

    /// Takes in the results of `prober` (this process's id, or an agent's), each with its slot: one
    /// probe's or a batch mixing series and probes. Every result is counted and queued for the
    /// store; each configured series' newest round (by slot) is kept for the engine.
    pub fn accept(&self, source: Source, prober: &Arc<str>, results: Vec<Probed>) -> Accepted {
        self.observe(source, &results);
        let mut accepted = Accepted::default();
        for probed in results {
            let record = Record {
                prober: prober.clone(),
                result: probed.result,
            };
            match self.ingest.submit(record) {
                Ok(()) => accepted.queued += 1,
                Err(_) => accepted.dropped += 1,
            }
        }
        accepted
    }

    /// Counts `results` on `/metrics` and keeps each configured series' newest round.
    fn observe(&self, source: Source, results: &[Probed]) {
        let config = self.config.get();
        let edges = results.iter().map(|p| &p.result);
        self.metrics.observe_results(source, edges, |host| {
            config.host(host).map(|h| h.vendor.as_str())
        });
        let fall = u32::try_from(config.engine.fall_rounds).unwrap_or(u32::MAX);
        for (key, (slot, round)) in by_series(results) {
            if is_configured(&config, &key) && self.latest.put(key, slot, round) == Some(fall) {
                self.latest.note_fall();
            }
        }
    }

    /// Takes in an agent's batch (already checked by `fleet`) exactly once: it is written whole
    /// with its key, and only once it is durable — and was not stored before — are its results
    /// counted and kept for the engine, like local ones. `Err` when the agents' share of the
    /// store queue is full or the writer stopped: the agent keeps the batch and sends it again.
    pub async fn accept_agent_batch(
        &self,
        key: BatchKey,
        prober: &Arc<str>,
        results: Vec<Probed>,
    ) -> Result<BatchStored, Busy> {
        let records = results
            .iter()
            .map(|p| Record {
                prober: prober.clone(),
                result: p.result.clone(),
            })
            .collect();
        let stored = self.ingest.submit_agent_batch(key, records)?;
        let stored = stored.await.map_err(|_| Busy)?;
        if stored == BatchStored::New {
            self.observe(Source::Agent, &results);
        }
        Ok(stored)
    }

    /// Takes in one check of `region`'s control targets, made at `at`.
    pub fn accept_control(&self, region: &str, at: DateTime<Utc>, ok: bool) {
        self.latest.put_control(region, at, ok);
    }
}

/// The results grouped by series, each group the probe of its series with the latest slot in the
/// batch, with that slot.
fn by_series(results: &[Probed]) -> HashMap<SeriesKey, (DateTime<Utc>, Vec<EdgeResult>)> {
    let mut out: HashMap<SeriesKey, (DateTime<Utc>, Vec<EdgeResult>)> = HashMap::new();
    for Probed { slot, result: r } in results {
        let (newest, round) = out
            .entry(SeriesKey::of(r))
            .or_insert_with(|| (*slot, Vec::new()));
        // A batch may hold several probes of one series: keep only the newest one's edges.
        if slot < newest {
            continue;
        }
        if slot > newest {
            *newest = *slot;
            round.clear();
        }
        round.push(r.clone());
    }
    out
}

/// Whether the config in force probes `key`'s series (a host's, or a merged prefix's original
/// domain's: [`Config::origin_hosts`]).
pub(crate) fn is_configured(config: &Config, key: &SeriesKey) -> bool {
    let original = |prefix: &str| {
        let paths = config.hosts.iter().flat_map(|h| &h.paths);
        paths
            .filter_map(|p| crate::config::original_path(&p.path, prefix))
            .any(|bare| bare == key.path)
    };
    let path_ok = config
        .host(&key.host)
        .is_some_and(|h| h.paths.iter().any(|p| p.path == key.path))
        || config
            .merged_hosts
            .iter()
            .any(|m| m.host == key.host && original(&m.path_prefix));
    let resolver_ok = config
        .regions
        .iter()
        .find(|r| r.name == key.region)
        .is_some_and(|r| r.resolvers.iter().any(|x| x.name == key.resolver));
    path_ok && resolver_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(host: &str, region: &str, at: DateTime<Utc>, edge: u8) -> EdgeResult {
        EdgeResult {
            at,
            host: host.into(),
            path: "/p".into(),
            region: region.into(),
            resolver: "isp".into(),
            edge_ip: Some(std::net::IpAddr::from([127, 0, 0, edge])),
            dns_ms: None,
            connect_ms: None,
            tls_ms: None,
            first_byte_ms: None,
            transfer_ms: None,
            total_ms: None,
            status: Some(200),
            body_bytes: 0,
            cert: None,
            failure: None,
        }
    }

    fn key() -> SeriesKey {
        SeriesKey {
            host: "a".into(),
            path: "/p".into(),
            region: "east".into(),
            resolver: "isp".into(),
        }
    }

    #[test]
    fn a_batch_keeps_only_the_newest_probe_of_each_series() {
        let t = Utc::now();
        let older = t - chrono::Duration::seconds(10);
        let batch = Probed::probe(
            vec![
                result("a", "east", older, 1),
                result("a", "east", t, 2),
                result("a", "east", t, 3),
                result("a", "east", older, 4),
                result("a", "west", older, 5),
            ],
            Duration::ZERO,
        );
        let groups = by_series(&batch);
        assert_eq!(groups.len(), 2);
        let (slot, east) = &groups[&key()];
        assert_eq!(*slot, t);
        let edges: Vec<_> = east.iter().map(|r| r.edge_ip).collect();
        assert_eq!(
            edges,
            vec![batch[1].result.edge_ip, batch[2].result.edge_ip]
        );
    }

    #[test]
    fn a_late_round_never_replaces_a_newer_one() {
        let latest = LatestResults::default();
        let t = Utc::now();
        latest.put(key(), t, vec![result("a", "east", t, 1)]);
        let earlier = t - chrono::Duration::seconds(5);
        latest.put(key(), earlier, vec![result("a", "east", earlier, 2)]);
        let fresh = latest.fresh_by_region(t, Duration::from_secs(60));
        assert_eq!(fresh["east"][0].0.edge_ip, Some([127, 0, 0, 1].into()));
        let later = t + chrono::Duration::seconds(5);
        latest.put(key(), later, vec![result("a", "east", later, 3)]);
        let fresh = latest.fresh_by_region(t, Duration::from_secs(600));
        assert_eq!(fresh["east"][0].0.edge_ip, Some([127, 0, 0, 3].into()));
    }

    /// A probe planned three intervals ago that only started now (a starved prober or agent) is
    /// of that old round: it does not vote in this one, nor does it displace a probe of a later
    /// slot that started before it.
    #[test]
    fn results_are_aligned_to_their_slot_not_their_start() {
        let latest = LatestResults::default();
        let now = Utc::now();
        let interval = chrono::Duration::seconds(10);
        let stale = now - interval * 3;
        latest.put(key(), stale, vec![result("a", "east", now, 1)]);
        let window = Duration::from_secs(20);
        assert!(
            latest.fresh_by_region(now, window).is_empty(),
            "an old slot does not vote"
        );
        let slot = now - interval;
        latest.put(key(), slot, vec![result("a", "east", slot, 2)]);
        latest.put(key(), stale, vec![result("a", "east", now, 3)]);
        let fresh = latest.fresh_by_region(now, window);
        assert_eq!(fresh["east"][0].0.edge_ip, Some([127, 0, 0, 2].into()));
    }
}
