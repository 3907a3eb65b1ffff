//! The decision loop: once per interval it gathers the latest round (every series' newest results,
//! plus each region's latest control-target verdict), runs the engine, and hands the outcome to the
//! publisher. Between intervals it is woken when a series' confirmations complete a fall, and lets
//! the engine take the confirmations into its newest round.
//!
//! It owns the engine's state; the engine itself stays pure. It probes nothing: results and control
//! verdicts arrive through [`crate::results`] (the scheduler checks the control targets); its only
//! I/O is reading overrides from the store, keeping the engine's memory there (so a restart does
//! not forget a running hold), publishing, and re-signing the served document when it is due —
//! every tick, whatever the engine says (in stepped mode the tick follows the service's clock).
//! Each round's diagnoses and events also go to the incidents (`incidents`), kept in the store.

mod incidents;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, LiveConfig};
use crate::engine::policy::span;
use crate::engine::{
    Engine, Evaluation, HostInfo, Memory, MergeInfo, Observation, Override, Reason, RegionRound,
    Round,
};
use crate::incident::Board;
use crate::notify::dispatch::Outbox;
use crate::publish::{Content, PublishError, PublishReason, Published, Publisher};
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
    let merges = config
        .merged_hosts
        .iter()
        .map(|m| MergeInfo {
            host: m.host.clone(),
            prefix: m.path_prefix.clone(),
        })
        .collect();
    Engine::new(config.engine.clone(), hosts, now).with_merges(merges)
}

/// A kept engine memory is fresh — its rounds still count as "the last rounds" — when it was saved
/// at most this many intervals before now; an older one keeps only its holds and counts
/// ([`Engine::recall`]). The memory is saved at least every `MEMORY_FRESH_ROUNDS - 1` intervals so
/// a running service's memory is always fresh.
const MEMORY_FRESH_ROUNDS: u32 = 3;

/// The engine's way of taking a round: a new round, or confirmations amending the newest.
type Evaluate = fn(&mut Engine, &Round, &[Override], DateTime<Utc>) -> Evaluation;

/// Where a tick reads from.
#[derive(Clone, Copy)]
struct Sources<'a> {
    latest: &'a LatestResults,
    store: &'a Store,
}

/// The decision loop's state between ticks.
pub struct DecisionLoop {
    engine: Engine,
    hosts: Vec<String>,
    overrides: Vec<Override>,
    /// Whether the kept memory was read (at the first tick: reading needs the store).
    recalled: bool,
    /// The memory last saved, and when.
    kept: Option<(Memory, DateTime<Utc>)>,
    incidents: incidents::Incidents,
}

impl DecisionLoop {
    /// A loop whose engine starts from the currently published document (or all enabled); the
    /// memory and the incidents kept in the store are taken back at the first tick, and the open
    /// incidents shown on `board`.
    pub fn new(
        config: &Config,
        publisher: &Publisher,
        board: Arc<Board>,
        now: DateTime<Utc>,
    ) -> DecisionLoop {
        let mut engine = engine_for(config, now);
        if let Some(cur) = publisher.current() {
            restore_from(&mut engine, config, &cur);
        }
        DecisionLoop {
            engine,
            hosts: config.hosts.iter().map(|h| h.domain.clone()).collect(),
            overrides: Vec::new(),
            recalled: false,
            kept: None,
            incidents: incidents::Incidents::new(board),
        }
    }

    /// One tick: gather the round, evaluate, publish, keep the engine's memory, re-sign when due.
    /// Errors are logged; the next tick tries again.
    pub async fn tick(
        &mut self,
        config: &Config,
        latest: &LatestResults,
        store: &Store,
        publisher: &Publisher,
        now: DateTime<Utc>,
    ) -> Option<Evaluation> {
        let on = Sources { latest, store };
        self.decide(config, on, publisher, now, (Engine::evaluate, true))
            .await
    }

    /// Rings `outbox` whenever the incidents record notices (the channels' senders wait on it).
    pub fn with_outbox(mut self, outbox: Arc<Outbox>) -> DecisionLoop {
        self.incidents.wake(outbox);
        self
    }

    /// A tick between two intervals, when confirmations completed a fall: as [`DecisionLoop::tick`],
    /// but the confirmations amend the engine's newest round instead of adding one.
    pub async fn confirm_tick(
        &mut self,
        config: &Config,
        latest: &LatestResults,
        store: &Store,
        publisher: &Publisher,
        now: DateTime<Utc>,
    ) -> Option<Evaluation> {
        let on = Sources { latest, store };
        self.decide(
            config,
            on,
            publisher,
            now,
            (Engine::evaluate_confirmations, false),
        )
        .await
    }

    async fn decide(
        &mut self,
        config: &Config,
        Sources { latest, store }: Sources<'_>,
        publisher: &Publisher,
        now: DateTime<Utc>,
        (evaluate, new_round): (Evaluate, bool),
    ) -> Option<Evaluation> {
        self.follow_config(config, store, publisher, now).await;
        match store.active_overrides(now.timestamp_millis()).await {
            Ok(rows) => self.overrides = rows.into_iter().map(|r| r.rule).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading overrides failed; using the last known ones")
            }
        }
        let round = gather(config, latest, now);
        let mut evaluation = evaluate(&mut self.engine, &round, &self.overrides, now);
        let observed = self
            .incidents
            .observe(config, (&round, new_round), &mut evaluation, store, now)
            .await;
        let published = match publish(config, &evaluation, store, publisher, now).await {
            Ok(version) => version,
            Err(e) => {
                tracing::error!(error = %e, "publishing the decision failed; the last version is still served");
                None
            }
        };
        let serving = publisher.current().map(|p| p.version);
        self.incidents
            .finish(config, (observed.as_ref(), published), serving, store, now)
            .await;
        self.keep_memory(config, store, now).await;
        resign(publisher, now).await;
        log_events(&evaluation);
        Some(evaluation)
    }

    /// Takes back the kept memory once, and keeps it across a change of the configured hosts (a
    /// new engine for the new hosts, with the old one's memory of those it still has).
    async fn follow_config(
        &mut self,
        config: &Config,
        store: &Store,
        publisher: &Publisher,
        now: DateTime<Utc>,
    ) {
        let hosts: Vec<String> = config.hosts.iter().map(|h| h.domain.clone()).collect();
        let memory = if !self.recalled {
            recall(config, store, now).await
        } else if hosts != self.hosts {
            Some((self.engine.memory(), true))
        } else {
            return;
        };
        let kept = self.kept.take();
        let placeholder = incidents::Incidents::new(Board::new());
        let incidents = std::mem::replace(&mut self.incidents, placeholder);
        *self = DecisionLoop::new(config, publisher, Board::new(), now);
        self.recalled = true;
        self.kept = kept;
        self.incidents = incidents;
        if let Some((memory, fresh)) = memory {
            self.engine.recall(memory, fresh);
            if let Some(cur) = publisher.current() {
                restore_from(&mut self.engine, config, &cur);
            }
        }
    }

    /// Saves the engine's memory when it changed (or to keep it fresh); a failed save is logged
    /// and tried again next tick.
    async fn keep_memory(&mut self, config: &Config, store: &Store, now: DateTime<Utc>) {
        let memory = self.engine.memory();
        let refresh = config.probe.interval() * (MEMORY_FRESH_ROUNDS - 1);
        let due = match &self.kept {
            Some((kept, at)) => *kept != memory || now - *at >= span(refresh),
            None => true,
        };
        if !due {
            return;
        }
        let text = serde_json::to_string(&memory).expect("the memory serializes");
        match store.save_engine_state(now.timestamp_millis(), &text).await {
            Ok(()) => self.kept = Some((memory, now)),
            Err(e) => tracing::warn!(error = %e, "saving the engine's memory failed"),
        }
    }
}

/// The memory kept in the store, and whether it is fresh at `now`. Stale state is handled so:
/// older than [`MEMORY_FRESH_ROUNDS`] intervals (or saved "in the future": the clock went back)
/// its rounds are dropped and its holds kept; hosts no longer configured are dropped by the engine;
/// unreadable text is logged and ignored (the engine starts cold from the published document).
async fn recall(config: &Config, store: &Store, now: DateTime<Utc>) -> Option<(Memory, bool)> {
    let row = match store.engine_state().await {
        Ok(row) => row?,
        Err(e) => {
            tracing::warn!(error = %e, "reading the engine's memory failed; starting from the published document");
            return None;
        }
    };
    let memory: Memory = match serde_json::from_str(&row.state) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "the kept engine memory does not read; starting from the published document");
            return None;
        }
    };
    let saved = DateTime::from_timestamp_millis(row.saved_at_ms).unwrap_or_default();
    let window = span(config.probe.interval() * MEMORY_FRESH_ROUNDS);
    let fresh = saved <= now && now - saved <= window;
    Some((memory, fresh))
}

/// Publishes what a publishable evaluation decided (the new version's number, when there is
/// one); stores the events of any other.
async fn publish(
    config: &Config,
    evaluation: &Evaluation,
    store: &Store,
    publisher: &Publisher,
    now: DateTime<Utc>,
) -> Result<Option<i64>, PublishError> {
    if !evaluation.publishable {
        store.record_events(&evaluation.events).await?;
        return Ok(None);
    }
    let content = Content::new(config, |h| {
        evaluation.hosts.get(h).is_some_and(|d| !d.enabled)
    })
    .with_rollbacks(&evaluation.rolled_back);
    let merge_event = |r: Reason| matches!(r, Reason::MergeRollback | Reason::MergeRestore);
    let reason = evaluation
        .events
        .iter()
        .find(|e| e.new_enabled.is_some() || merge_event(e.reason))
        .map_or(PublishReason::Config, |e| PublishReason::of(e.reason));
    let published = publisher
        .publish(&content, reason, &evaluation.events, now)
        .await?;
    Ok(published.map(|p| p.version))
}

/// Re-signs the served document when it is due, whatever the engine said this tick (frozen, or
/// nothing to publish): the served `expiresAt` must not lapse.
async fn resign(publisher: &Publisher, now: DateTime<Utc>) {
    if let Err(e) = publisher.resign_if_due(now).await {
        tracing::error!(error = %e, "re-signing the document failed; the next tick tries again");
    }
}

fn log_events(evaluation: &Evaluation) {
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
}

/// Starts `engine` from a published version: its hosts' flags and its rolled-back merges (the
/// document is what clients saw).
fn restore_from(engine: &mut Engine, config: &Config, version: &Published) {
    engine.restore(&enabled_in(version));
    if let Some(content) = &version.content {
        engine.restore_rollbacks(&content.rollbacks(config));
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
                .map(|(e, confirmations)| Observation {
                    host: e.host.clone(),
                    path: e.path.clone(),
                    resolver: e.resolver.clone(),
                    edge: e.edge_ip,
                    class: e.failure_class(),
                    status: e.status,
                    phase: e.failure.as_ref().map(|f| f.phase),
                    confirmations: *confirmations,
                })
                .collect(),
        })
        .collect();
    Round { regions }
}

/// Publishes the first version (every host enabled) when nothing was ever published, so clients
/// have a document from their first poll; after a long stop, re-signs the document at once.
pub async fn publish_cold_start(config: &Config, publisher: &Publisher, now: DateTime<Utc>) {
    resign(publisher, now).await;
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

/// The service loop: a tick every interval until cancelled, deciding at `clock`'s time, showing
/// the open incidents on `board`.
pub async fn run(
    config: LiveConfig,
    latest: Arc<LatestResults>,
    (store, publisher, board, outbox): (Store, Arc<Publisher>, Arc<Board>, Arc<Outbox>),
    clock: Clock,
    token: CancellationToken,
) {
    let first = config.get();
    let mut decisions =
        DecisionLoop::new(&first, &publisher, board, clock.now()).with_outbox(outbox);
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
            // Confirmations completed a fall: decide now rather than at the next interval.
            () = latest.confirmed_fall().notified() => {
                let cfg = config.get();
                decisions.confirm_tick(&cfg, &latest, &store, &publisher, clock.now()).await;
            }
        }
    }
}
