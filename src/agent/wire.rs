//! What an agent and the service say to each other, as typed JSON: the assignment the agent
//! pulls, the batches it uploads and their answers, its heartbeats and theirs. Both sides use
//! these structs, so the two can never disagree on a field.
//!
//! Routes (on the internal listener, each with the agent's own bearer token):
//! - `GET /api/v1/agents/{id}/assignment`: the [`Assignment`]; with `If-None-Match` a long poll
//!   that answers 304 after [`ASSIGNMENT_WAIT`] when nothing changed.
//! - `POST /api/v1/agents/{id}/results`: a gzip-compressed [`Batch`], answered with a
//!   [`BatchAnswer`] once it is durable.
//! - `POST /api/v1/agents/{id}/heartbeat`: a [`Heartbeat`], answered with a [`HeartbeatAnswer`].

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How long the service holds an assignment long poll before answering 304.
pub const ASSIGNMENT_WAIT: Duration = Duration::from_secs(25);
/// How often an agent sends its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// Heartbeats missed before the service counts an agent down (3 × 10 s).
pub const MISSED_HEARTBEATS: u32 = 3;
/// The header naming the assignment version an upload or heartbeat was made under.
pub const ASSIGNMENT_HEADER: &str = "x-cdnwatch-assignment";

/// What an agent is told to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The agent it is for.
    pub agent: String,
    /// A digest of everything below: the ETag, and what the agent echoes in every upload and
    /// heartbeat.
    pub assignment_version: String,
    /// The probe config in the file's own TOML form: probe settings, vendors, hosts, merged hosts,
    /// the engine's rules, and only the agent's regions (their resolvers and control targets).
    pub config: String,
    /// Each vendor's extra CA certificates, as PEM text (the agent has no files of the service's).
    pub ca_certificates: BTreeMap<String, String>,
}

/// One probe's edge result as an agent sends it: when its slot in the schedule was (agent clock),
/// and the result (whose `at` is its actual start, on the agent's clock).
pub use crate::model::Probed;

/// One check of a region's control targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlCheck {
    /// The region.
    pub region: String,
    /// When it started (agent clock).
    pub at: DateTime<Utc>,
    /// Whether any control target answered.
    pub ok: bool,
}

/// A batch of results, sealed and spooled before it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// The agent process's boot id: with `seq`, the batch's idempotency key.
    pub boot: String,
    /// The batch's number within its boot, from 0.
    pub seq: u64,
    /// The assignment its probes ran under.
    pub assignment_version: String,
    /// The edge results.
    pub results: Vec<Probed>,
    /// The control checks.
    #[serde(default)]
    pub controls: Vec<ControlCheck>,
}

/// What the service did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// Results stored now.
    pub stored: usize,
    /// The batch had been stored before (a re-send): nothing was stored twice.
    pub duplicate: bool,
    /// Results refused, by reason (never stored, never voting).
    pub refused: BTreeMap<String, usize>,
}

/// Four instants of one heartbeat exchange, NTP's t0–t3, in Unix ms: sent (agent clock),
/// received and answered (service clock), answer received (agent clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// The agent sent the heartbeat.
    pub t0: i64,
    /// The service received it.
    pub t1: i64,
    /// The service answered.
    pub t2: i64,
    /// The agent received the answer.
    pub t3: i64,
}

impl Exchange {
    /// The agent's clock minus the service's, in ms (NTP's offset, negated).
    pub fn skew_ms(&self) -> f64 {
        -(((self.t1 - self.t0) + (self.t2 - self.t3)) as f64) / 2.0
    }

    /// The round trip, without the service's own time, in ms.
    pub fn delay_ms(&self) -> i64 {
        (self.t3 - self.t0) - (self.t2 - self.t1)
    }
}

/// An agent's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// The agent process's boot id.
    pub boot: String,
    /// Its cdnwatch version.
    pub version: String,
    /// The assignment it runs, if any yet.
    pub assignment_version: Option<String>,
    /// Results spooled and not yet acknowledged.
    pub backlog_records: u64,
    /// Probes running now, and the most it runs at once.
    pub in_flight: u64,
    /// See `in_flight`.
    pub concurrency: u64,
    /// When it sent this heartbeat, Unix ms on its clock (t0).
    pub sent_ms: i64,
    /// The previous exchange, complete, so the service can measure the clock offset.
    pub previous: Option<Exchange>,
    /// Batches dropped from the spool (beyond its bounds) since the agent started.
    #[serde(default)]
    pub spool_dropped: u64,
}

/// The service's answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatAnswer {
    /// When the heartbeat arrived, Unix ms on the service's clock (t1).
    pub received_ms: i64,
    /// When this answer left, Unix ms on the service's clock (t2).
    pub answered_ms: i64,
    /// The assignment version in force: a different one makes the agent fetch it at once.
    pub assignment_version: String,
}

/// Why a result of an agent was refused: a closed set, the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// Its region is not one of the agent's.
    ForeignRegion,
    /// Its series (host, path, region, resolver) is not in the config.
    UnknownSeries,
    /// A string in it is longer than any configured name or sane detail.
    Oversized,
    /// Its time, on the service's clock, is too far in the future.
    Future,
    /// Its time is older than the longest an agent spools.
    TooOld,
    /// The agent's clock is too far off to trust its times.
    ClockSkew,
}

impl Refusal {
    /// Every reason, in label order.
    pub const ALL: [Refusal; 6] = [
        Refusal::ForeignRegion,
        Refusal::UnknownSeries,
        Refusal::Oversized,
        Refusal::Future,
        Refusal::TooOld,
        Refusal::ClockSkew,
    ];

    /// Its place in [`Refusal::ALL`] (a counter per reason is an array indexed by it).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The one spelling, as in the label and the answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ForeignRegion => "foreign_region",
            Refusal::UnknownSeries => "unknown_series",
            Refusal::Oversized => "oversized",
            Refusal::Future => "future",
            Refusal::TooOld => "too_old",
            Refusal::ClockSkew => "clock_skew",
        }
    }
}
