//! The state every HTTP handler sees: cheap handles to the parts of the running service.
//!
//! It lives beside the router, not in the start-up code: handlers depend on this struct, and the
//! start-up module depends on `web` to build it, never the other way round.

use std::sync::Arc;

use crate::auth::Tokens;
use crate::clock::Clock;
use crate::config::LiveConfig;
use crate::incident::Board;
use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::results::{LatestResults, Results};
use crate::scheduler::SchedulerStats;
use crate::store::Store;
use crate::store::writer::Ingest;

/// The handles the handlers use; cloning it clones a few `Arc`s.
#[derive(Clone)]
pub struct AppState {
    /// The database (reads for the pages and the API).
    pub store: Store,
    /// The store's write queue (its depth and counters; results enter through `results`).
    pub ingest: Ingest,
    /// The one way in for results (ingest from agents).
    pub results: Results,
    /// The scheduler's counters.
    pub scheduler: Arc<SchedulerStats>,
    /// The config in force.
    pub config: LiveConfig,
    /// The service's clock: what the pages call "now" (the system's, or a test's stepped one).
    pub clock: Clock,
    /// Digests of the admin and agent tokens.
    pub tokens: Arc<Tokens>,
    /// The host-list versions and the one being served.
    pub publisher: Arc<Publisher>,
    /// Everything `/metrics` exports.
    pub metrics: Metrics,
    /// Token attempt limits, body-read permits and brief caches of public reads.
    pub guards: Arc<super::Guards>,
    /// The open incidents, as the decision loop last left them.
    pub incidents: Arc<Board>,
    /// The notifications' outbox: each channel's delivery.
    pub outbox: Arc<crate::notify::dispatch::Outbox>,
    /// The regional agents: their tokens, assignments, heartbeats and checks.
    pub fleet: Arc<crate::fleet::Fleet>,
}

impl AppState {
    /// Every series' newest round and every region's control verdict.
    pub fn latest(&self) -> &Arc<LatestResults> {
        self.results.latest()
    }
}

impl axum::extract::FromRef<AppState> for Arc<Publisher> {
    fn from_ref(state: &AppState) -> Arc<Publisher> {
        state.publisher.clone()
    }
}
