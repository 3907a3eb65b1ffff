//! The decision loop: once per interval it gathers the latest round (every series' newest results,
//! plus each region's latest control-target verdict), runs the engine, and hands the outcome to the
//! publisher.
//!
//! It owns the engine's state; the engine itself stays pure. It probes nothing: results and control
//! verdicts arrive through [`crate::results`] (the scheduler checks the control targets); its only
//! I/O is reading overrides from the store and publishing.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, LiveConfig};
use crate::engine::{
    Engine, Evaluation, HostInfo, Observation, Override, Reason, RegionRound, Round,
};
use crate::publish::{Content, PublishReason, Published, Publisher};
use crate::results::LatestResults;
use crate::store::Store;

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

/// The decision loop's state between ticks.
pub struct DecisionLoop {
    engine: Engine,
    hosts: Vec<String>,
    overrides: Vec<Override>,
}

impl DecisionLoop {
    /// A loop whose engine starts from the currently published document (or all enabled).
    pub fn new(config: &Config, publisher: &Publisher, now: DateTime<Utc>) -> DecisionLoop {
        let mut engine = engine_for(config, now);
        if let Some(cur) = publisher.current() {
            engine.restore(&enabled_in(&cur));
        }
        DecisionLoop {
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
            *self = DecisionLoop::new(config, publisher, now);
        }
        match store.active_overrides(now.timestamp_millis()).await {
            Ok(rows) => self.overrides = rows.into_iter().map(|r| r.rule).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading overrides failed; using the last known ones")
            }
        }
        let round = gather(config, latest, now);
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

/// The round at `now`: each region's fresh results and whether its control targets answered in a
/// fresh check (a region with no fresh check has no valid evidence).
pub fn gather(config: &Config, latest: &LatestResults, now: DateTime<Utc>) -> Round {
    let max_age = config.probe.interval() * 2;
    let by_region = latest.fresh_by_region(now, max_age);
    let regions = config
        .regions
        .iter()
        .map(|r| RegionRound {
            region: r.name.clone(),
            control_ok: latest
                .fresh_control_ok(&r.name, now, max_age)
                .unwrap_or(false),
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

/// Publishes the first version (every host enabled) when nothing was ever published, so clients
/// have a document from their first poll.
pub async fn publish_cold_start(config: &Config, publisher: &Publisher, now: DateTime<Utc>) {
    if publisher.current().is_none() {
        let content = Content::new(config, |_| false);
        if let Err(e) = publisher
            .publish(&content, PublishReason::ColdStart, &[], now)
            .await
        {
            tracing::error!(error = %e, "publishing the first version failed");
        }
    }
}

/// The service loop: a tick every interval until cancelled, deciding at `clock`'s time.
pub async fn run(
    config: LiveConfig,
    latest: Arc<LatestResults>,
    store: Store,
    publisher: Arc<Publisher>,
    clock: Clock,
    token: CancellationToken,
) {
    let first = config.get();
    let mut decisions = DecisionLoop::new(&first, &publisher, clock.now());
    publish_cold_start(&first, &publisher, clock.now()).await;
    let interval = first.probe.interval();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = ticker.tick() => {
                let cfg = config.get();
                decisions.tick(&cfg, &latest, &store, &publisher, clock.now()).await;
            }
        }
    }
}
