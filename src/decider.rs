//! The decision loop: once per interval it gathers the latest round (every series' newest results,
//! plus each region's control targets), runs the engine, and hands the outcome to the publisher.
//!
//! It owns the engine's state; the engine itself stays pure. All I/O (control probes, the store,
//! publishing) happens here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{
    Engine, Evaluation, HostInfo, Observation, Override, Reason, RegionRound, Round,
};
use crate::model::EdgeResult;
use crate::publish::{Content, PublishReason, Published, Publisher};
use crate::series::SeriesKey;
use crate::store::Store;

/// When a series' newest probe started, and its edge results.
type Newest = (DateTime<Utc>, Vec<EdgeResult>);

/// Every series' newest results, written by the scheduler's sink, read by the decider.
#[derive(Default)]
pub struct LatestResults {
    by_series: Mutex<HashMap<SeriesKey, Newest>>,
    /// Per region, whether its control targets answered in the latest round (the dashboard shows a
    /// region whose own network is down as invalid, not as failing).
    control: Mutex<BTreeMap<String, bool>>,
}

impl LatestResults {
    pub fn put(&self, key: SeriesKey, results: Vec<EdgeResult>) {
        let at = results.first().map_or_else(Utc::now, |r| r.at);
        self.by_series
            .lock()
            .expect("latest results")
            .insert(key, (at, results));
    }

    /// Whether `region`'s control targets answered in the latest round; `None` before the first.
    pub fn control_ok(&self, region: &str) -> Option<bool> {
        self.control.lock().expect("control").get(region).copied()
    }

    fn put_control(&self, region: &str, ok: bool) {
        self.control
            .lock()
            .expect("control")
            .insert(region.to_string(), ok);
    }

    /// Results not older than `max_age` at `now`, by region.
    fn fresh_by_region(
        &self,
        now: DateTime<Utc>,
        max_age: Duration,
    ) -> BTreeMap<String, Vec<EdgeResult>> {
        let max_age = chrono::Duration::from_std(max_age).unwrap_or_default();
        let mut out: BTreeMap<String, Vec<EdgeResult>> = BTreeMap::new();
        for (key, (at, results)) in self.by_series.lock().expect("latest results").iter() {
            if now - *at <= max_age {
                out.entry(key.region.clone())
                    .or_default()
                    .extend(results.iter().cloned());
            }
        }
        out
    }
}

fn engine_for(config: &Config, now: DateTime<Utc>) -> Engine {
    let hosts = config
        .hosts
        .iter()
        .map(|h| HostInfo {
            host: h.domain.clone(),
            vendor: h.vendor.clone(),
        })
        .collect();
    Engine::new(config.engine.clone(), hosts, now)
}

/// The decider's state between ticks.
pub struct Decider {
    engine: Engine,
    hosts: Vec<String>,
    overrides: Vec<Override>,
}

impl Decider {
    /// A decider whose engine starts from the currently published document (or all enabled).
    pub fn new(config: &Config, publisher: &Publisher, now: DateTime<Utc>) -> Decider {
        let mut engine = engine_for(config, now);
        if let Some(cur) = publisher.current() {
            engine.restore(&enabled_in(&cur));
        }
        Decider {
            engine,
            hosts: config.hosts.iter().map(|h| h.domain.clone()).collect(),
            overrides: Vec::new(),
        }
    }

    /// One tick: gather the round, evaluate, publish. Errors are logged; the next tick tries again.
    pub async fn tick(
        &mut self,
        config: &Config,
        latest: &LatestResults,
        store: &Store,
        publisher: &Publisher,
        now: DateTime<Utc>,
    ) -> Option<Evaluation> {
        let hosts: Vec<String> = config.hosts.iter().map(|h| h.domain.clone()).collect();
        if hosts != self.hosts {
            *self = Decider::new(config, publisher, now);
        }
        match store.active_overrides(now.timestamp_millis()).await {
            Ok(rows) => self.overrides = rows.into_iter().map(|r| r.rule).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading overrides failed; using the last known ones")
            }
        }
        let round = gather(config, latest, now).await;
        let evaluation = self.engine.evaluate(&round, &self.overrides, now);
        let result = if evaluation.publishable {
            let content = Content::new(config, |h| {
                evaluation.hosts.get(h).is_some_and(|d| !d.enabled)
            });
            let reason = evaluation
                .events
                .iter()
                .find(|e| e.new_enabled.is_some())
                .map_or(PublishReason::Config, |e| PublishReason::of(e.reason));
            publisher
                .publish(&content, reason, &evaluation.events, now)
                .await
                .map(|_| ())
        } else {
            store
                .record_events(&evaluation.events)
                .await
                .map_err(Into::into)
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "publishing the decision failed; the last version is still served");
        }
        for e in evaluation
            .events
            .iter()
            .filter(|e| e.reason != Reason::Degraded)
        {
            tracing::info!(
                host = e.host.as_deref().unwrap_or("-"),
                reason = e.reason.as_str(),
                "{}",
                e.detail
            );
        }
        Some(evaluation)
    }
}

/// The hosts' enabled flags in a version's content.
fn enabled_in(version: &Published) -> BTreeMap<String, bool> {
    version
        .hosts()
        .iter()
        .map(|h| (h.host.clone(), !h.is_disabled))
        .collect()
}

/// The round at `now`: each region's fresh results and whether its control targets answer.
pub async fn gather(config: &Config, latest: &LatestResults, now: DateTime<Utc>) -> Round {
    let interval = config.probe.interval();
    let by_region = latest.fresh_by_region(now, interval * 2);
    let timeout = config.probe.timeouts.connect();
    let controls = config.regions.iter().map(|r| {
        let addrs = r.control_addrs();
        async move { crate::control::any_reachable(&addrs, timeout).await }
    });
    let control_ok = futures_util::future::join_all(controls).await;
    let regions = config
        .regions
        .iter()
        .zip(control_ok)
        .inspect(|(r, ok)| latest.put_control(&r.name, *ok))
        .map(|(r, control_ok)| RegionRound {
            region: r.name.clone(),
            control_ok,
            observations: by_region
                .get(&r.name)
                .into_iter()
                .flatten()
                .map(|e| Observation {
                    host: e.host.clone(),
                    path: e.path.clone(),
                    resolver: e.resolver.clone(),
                    edge: e.edge_ip,
                    class: e.failure_class(),
                    status: e.status,
                })
                .collect(),
        })
        .collect();
    Round { regions }
}

/// The service loop: a tick every interval until cancelled.
pub async fn run(
    config: Arc<std::sync::RwLock<Arc<Config>>>,
    latest: Arc<LatestResults>,
    store: Store,
    publisher: Arc<Publisher>,
    token: CancellationToken,
) {
    let first = config.read().expect("config lock").clone();
    let mut decider = Decider::new(&first, &publisher, Utc::now());
    if publisher.current().is_none() {
        // Cold start: all enabled, published at once so clients have a document from the first poll.
        let content = Content::new(&first, |_| false);
        if let Err(e) = publisher
            .publish(&content, PublishReason::ColdStart, &[], Utc::now())
            .await
        {
            tracing::error!(error = %e, "publishing the first version failed");
        }
    }
    let interval = first.probe.interval();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = ticker.tick() => {
                let cfg = config.read().expect("config lock").clone();
                decider.tick(&cfg, &latest, &store, &publisher, Utc::now()).await;
            }
        }
    }
}
