//! cdnwatch: probes CDN domains from every region and resolver, and decides which ones clients may use.
//!
//! # Layout
//!
//! - `commands` — the command line: one file per command (`check-config`, `probe`, `serve`, `demo`, `lab`).
//! - `startup` — builds the running service's state, starts every task, stops them in order.
//! - `config` — the typed TOML file, loaded and validated once; `LiveConfig` is the one in force.
//! - `clock` — the wall clock the prober and the decision loop read: the system's, or a stepped one.
//! - `model` — the shared vocabulary: phases, failure classes, outcomes, rcodes, the per-edge result.
//! - `series`, `hist`, `period` — the series key, the latency histogram and the rollup periods, shared
//!   by the scheduler, the metrics and the store.
//! - `trust` — the certificate stores a probe verifies against.
//! - `probe` — one probe of one series, a file per phase; `probe::control` checks a region's own network.
//! - `scheduler` — when each series (and each region's control check) runs.
//! - `results` — the one way in for results, local and remote alike, and each series' newest round.
//! - `store` — the only place with SQL: results, rollups, events, versions, overrides; a file per kind of data.
//! - `engine` — pure decisions: (evidence, state, policy, now) → decisions; no I/O, no clock.
//! - `incident` — one fault as one incident: the engine's diagnoses grouped over rounds, pure.
//! - `decision_loop` — feeds the engine each interval, keeps the incidents, hands the verdict to
//!   `publish`.
//! - `notify` — tells on-call: incident changes as notices, routed, kept in an outbox, sent.
//! - `publish` — the versioned, signed host-list document (the article's JSON) and its publisher.
//! - `client` — the reference client that polls the host list and picks a domain.
//! - `metrics` — everything `/metrics` exports, on one private registry.
//! - `auth` — admin and agent token digests.
//! - `agent` — `cdnwatch agent`: probes a region's series where its users are, spools and uploads
//!   the results; `agent::wire` is what agent and service say to each other.
//! - `fleet` — the service's side of its agents: tokens, assignments, heartbeats and clock skew,
//!   what a batch must be, which agents are up.
//! - `web` — the router, its state and the HTTP server: API, config center, on-call pages, config page.
//! - `outbound` — one HTTP request to a peer (a notification receiver, an agent's service).
//! - `report` — the terminal output of `probe`.
//! - `lab` — the simulated two-vendor CDN on loopback: DNS, TLS edges, faults, its CA.
//!
//! Data flow: config → scheduler → probe → results → store / latest rounds → decision loop →
//! engine → incident → publish → web.
//!
//! Outside `src/`: `migrations/` (the schema), `templates/` and `static/` (pages, styles and icon,
//! embedded in the binary), `monitoring/` (alert rules and a Grafana dashboard), `tests/it/` (the one
//! integration-test crate, loopback only: a module per capability, everything started through
//! `tests/it/harness.rs`), `tests/fixtures/` (fixed input files), `examples/` (the benchmarks),
//! `scripts/` (the test command and the benchmark drivers).

pub mod agent;
pub mod auth;
pub mod client;
pub mod clock;
pub mod commands;
pub mod config;
pub mod decision_loop;
pub mod engine;
pub mod fleet;
pub mod hist;
pub mod incident;
pub mod lab;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod outbound;
pub mod period;
pub mod probe;
pub mod publish;
pub mod report;
pub mod results;
pub mod scheduler;
pub mod series;
pub mod startup;
pub mod store;
pub mod trust;
pub mod web;

#[cfg(test)]
mod import_cycles;
#[cfg(test)]
mod layout;
